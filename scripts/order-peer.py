"""The Python peer of producer-order for the benchmarks: orders sent with confluent-kafka.

Builds orders with peer_events (fields and constants from shared/schemas) as our producer
does: seeded item and customer, item id as the key, the same headers, murmur2 partitioning
like the Java client's. Paced (--rate: order n is due at n / rate seconds, as producer-order's
steady mode) or as fast as it can; --preserialized sends one pre-built order again and again,
the fastest confluent-kafka can go. Prints one JSON line: acknowledged, seconds,
acknowledged_per_sec, peak_rss_kib.

    order-peer.py BOOTSTRAP TOPIC COUNT [--rate N] [--preserialized] [--create-partitions N]
                  [--idempotence]
"""
import argparse
import json
import random
import resource
import time
import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

import peer_events


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bootstrap")
    parser.add_argument("topic")
    parser.add_argument("count", type=int)
    parser.add_argument("--rate", type=float, default=0, help="orders per second; 0 = flat out")
    parser.add_argument("--preserialized", action="store_true")
    parser.add_argument("--create-partitions", type=int, default=0,
                        help="create TOPIC with this many partitions first")
    parser.add_argument("--linger-ms", type=int, default=5)
    parser.add_argument("--idempotence", action="store_true",
                        help="enable.idempotence=true (librdkafka then keeps at most 5 requests in flight)")
    return parser.parse_args()


def main():
    args = arguments()
    if args.create_partitions:
        admin = AdminClient({"bootstrap.servers": args.bootstrap})
        admin.create_topics([NewTopic(args.topic, args.create_partitions, 1)])[args.topic].result()
    producer = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": args.linger_ms,
                         "partitioner": "murmur2_random", "acks": "all",
                         "queue.buffering.max.messages": 1000000,
                         "enable.idempotence": args.idempotence})
    rng = random.Random(42)
    item_keys = [f"item-{i:04}" for i in range(100)]
    sample = peer_events.encode(peer_events.order(str(uuid.uuid4()), "customer-01234", "item-0042",
                                                  3, 12.34, peer_events.timestamp()))
    started = time.monotonic()
    for n in range(args.count):
        if args.rate:
            delay = started + n / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        if args.preserialized:
            item, value = n % 100, sample
        else:
            item = rng.randrange(100)
            value = peer_events.encode(peer_events.order(
                str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                f"customer-{rng.randrange(10000):05}", item_keys[item], rng.randint(1, 5),
                round(1 + item * 0.79, 2), peer_events.timestamp()))
        while True:
            try:
                producer.produce(args.topic, key=item_keys[item], value=value,
                                 headers=peer_events.ORDER_HEADERS)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    left = producer.flush(120)
    seconds = time.monotonic() - started
    print(json.dumps({"acknowledged": args.count - left, "seconds": round(seconds, 3),
                      "acknowledged_per_sec": round((args.count - left) / seconds),
                      "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


if __name__ == "__main__":
    main()
