"""Writes a backlog for a benchmark: COUNT orders, and optionally one outcome per order.

Events come from peer_events (shared/schemas). Orders have distinct ids (UUIDs from their
number, so two runs write the same backlog), 100 items, one fixed created_at; each outcome is
the reservation of its order at that order's position. Topics are created first with
--partitions partitions. With --round-robin, records go to partition n % partitions with
no key (the group benchmark's even spread); otherwise the item id is the key.

    seed-events.py BOOTSTRAP COUNT --orders TOPIC [--outcomes TOPIC] [--partitions 6] [--round-robin]
"""
import argparse
import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

import peer_events

CREATED_AT = "2026-11-24T10:00:00.000Z"
PROCESSED_AT = "2026-11-24T10:00:00.020Z"


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bootstrap")
    parser.add_argument("count", type=int)
    parser.add_argument("--orders", required=True)
    parser.add_argument("--outcomes")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--round-robin", action="store_true")
    return parser.parse_args()


def main():
    args = arguments()
    topics = [t for t in (args.orders, args.outcomes) if t]
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    for future in admin.create_topics([NewTopic(t, args.partitions, 1) for t in topics]).values():
        future.result()
    producer = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 5, "batch.num.messages": 10000,
                         "queue.buffering.max.messages": 1000000})

    def send(topic, n, key, value):
        target = {"partition": n % args.partitions} if args.round_robin else {"key": key}
        while True:
            try:
                producer.produce(topic, value=value, **target)
                return
            except BufferError:
                producer.poll(0.01)

    per_partition = [0] * args.partitions
    for n in range(args.count):
        item = f"item-{n % 100:04}"
        order = peer_events.order(str(uuid.UUID(int=n + 1)), "customer-00042", item, 1, 2.5, CREATED_AT)
        send(args.orders, n, item, peer_events.encode(order))
        if args.outcomes:
            partition = n % args.partitions
            outcome = peer_events.outcome_for(order, "reserved", None, 5, partition,
                                              per_partition[partition], PROCESSED_AT)
            per_partition[partition] += 1
            send(args.outcomes, n, item, peer_events.encode(outcome))
    left = producer.flush(120)
    if left:
        raise SystemExit(f"seed-events.py: {left} records not acknowledged within 120 s")


if __name__ == "__main__":
    main()
