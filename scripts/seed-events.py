"""Writes a backlog for a benchmark: COUNT orders, and optionally one outcome per order.

Events come from peer_events (shared/schemas). Orders have distinct ids (UUIDs from their
number, so two runs write the same backlog), 100 items, one fixed created_at; each outcome is
the reservation of its order at that order's position. Topics are created first with
--partitions partitions. With --round-robin, records go to partition n % partitions with
no key (the group benchmark's even spread); otherwise the item id is the key and a record
goes where the Java client (and our producers) put it, murmur2(key) % partitions, named
explicitly so that the seed knows each order's position.

Each outcome goes to the partition of its order, as inventory-consumer writes them (it keeps
the order's key), so outcome partition p answers order partition p in order. That matters to
analytics' deduplication, which follows holes per order partition: outcomes that named an
order position they do not answer (as this seed wrote before, n % partitions beside a key
partitioned by librdkafka's CRC32) leave a hole per record, and past analytics' hole cap
real outcomes are taken for repeats.

    seed-events.py BOOTSTRAP COUNT --orders TOPIC [--outcomes TOPIC] [--partitions 6] [--round-robin]
"""
import argparse
import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

import peer_events

CREATED_AT = "2026-11-24T10:00:00.000Z"
PROCESSED_AT = "2026-11-24T10:00:00.020Z"


def murmur2(data):
    """Kafka's murmur2 (the Java client's Utils.murmur2) as a signed 32-bit int; checked
    against the Java client's test vectors ("21" -> -973932308, "foobar" -> -790332482)."""
    m, length = 0x5bd1e995, len(data)
    h = (0x9747b28c ^ length) & 0xffffffff
    for i in range(0, length - length % 4, 4):
        k = (int.from_bytes(data[i:i + 4], "little") * m) & 0xffffffff
        k = ((k ^ (k >> 24)) * m) & 0xffffffff
        h = ((h * m) & 0xffffffff) ^ k
    rest = data[length - length % 4:]
    if len(rest) == 3:
        h ^= rest[2] << 16
    if len(rest) >= 2:
        h ^= rest[1] << 8
    if rest:
        h = ((h ^ rest[0]) * m) & 0xffffffff
    h = ((h ^ (h >> 13)) * m) & 0xffffffff
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def java_partition(key, partitions):
    return (murmur2(key.encode()) & 0x7fffffff) % partitions


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
    # Idempotent, so a retried batch can neither repeat nor reorder records: each outcome names
    # its order's offset by counting. linger.ms 100 makes batches of thousands of records:
    # Nisshi's memory engine lists every stored batch of a partition on each fetch, and with
    # the batches of 5 ms a 4M-event backlog drained at 17k events/s (the broker's listing, not
    # the consumer), against 850k with these.
    producer = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 100, "batch.num.messages": 10000,
                         "queue.buffering.max.messages": 1000000, "enable.idempotence": True})

    item_partitions = [java_partition(f"item-{i:04}", args.partitions) for i in range(100)]

    def send(topic, partition, key, value):
        target = {"partition": partition} if args.round_robin else {"partition": partition, "key": key}
        while True:
            try:
                producer.produce(topic, value=value, **target)
                return
            except BufferError:
                producer.poll(0.01)

    per_partition = [0] * args.partitions
    for n in range(args.count):
        item = f"item-{n % 100:04}"
        partition = n % args.partitions if args.round_robin else item_partitions[n % 100]
        order = peer_events.order(str(uuid.UUID(int=n + 1)), "customer-00042", item, 1, 2.5, CREATED_AT)
        send(args.orders, partition, item, peer_events.encode(order))
        if args.outcomes:
            outcome = peer_events.outcome_for(order, "reserved", None, 5, partition,
                                              per_partition[partition], PROCESSED_AT)
            send(args.outcomes, partition, item, peer_events.encode(outcome))
        per_partition[partition] += 1
    left = producer.flush(120)
    if left:
        raise SystemExit(f"seed-events.py: {left} records not acknowledged within 120 s")


if __name__ == "__main__":
    main()
