"""The Python peer of inventory-consumer for the benchmarks: the same work with confluent-kafka.

Reads orders, decides reserve/reject against in-memory stock, produces the same outcome event
our service writes (built by peer_events from shared/schemas: deterministic event id, every
field), and commits only after the outcomes of the batch are flushed. Prints
"<seconds> <peak RSS KiB>" when COUNT orders are done.

    inventory-peer.py BOOTSTRAP ORDER_TOPIC OUTCOME_TOPIC GROUP COUNT [POLL_WAIT_SECONDS]
                      [--fetch-wait-ms N]

POLL_WAIT_SECONDS (default 1.0) is how long one consume call may wait for a full batch: long
for throughput, short (0.01) when latency is measured, so the peer is not penalised at low
rates. --fetch-wait-ms (default: $FETCH_MAX_WAIT_MS, else librdkafka's 500) is librdkafka's
fetch.wait.max.ms, the broker-side wait our consumers read from FETCH_MAX_WAIT_MS: the
latency benchmark gives both the same value.
"""
import argparse
import json
import os
import resource
import sys
import time

from confluent_kafka import Consumer, Producer

import peer_events


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("bootstrap", "order_topic", "outcome_topic", "group"):
        parser.add_argument(name)
    parser.add_argument("count", type=int)
    parser.add_argument("poll_wait", type=float, nargs="?", default=1.0)
    parser.add_argument("--fetch-wait-ms", type=int, default=int(os.environ.get("FETCH_MAX_WAIT_MS", "500")))
    return parser.parse_args()


def main():
    args = arguments()
    started = time.monotonic()
    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": args.group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "fetch.wait.max.ms": args.fetch_wait_ms})
    producer = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 5,
                         "partitioner": "murmur2_random"})
    consumer.subscribe([args.order_topic])
    stock, done = {}, 0
    while done < args.count:
        batch = consumer.consume(1000, args.poll_wait)
        if not batch:
            continue
        for message in batch:
            if message.error():
                continue
            order = json.loads(message.value())
            left = stock.get(order["item_id"], 1000000000)
            if left >= order["quantity"]:
                left -= order["quantity"]
                stock[order["item_id"]] = left
                outcome, reason = "reserved", None
            else:
                outcome, reason = "rejected", "insufficient_stock"
            event = peer_events.outcome_for(order, outcome, reason, left,
                                            message.partition(), message.offset())
            producer.produce(args.outcome_topic, key=order["item_id"], value=peer_events.encode(event),
                             headers=peer_events.OUTCOME_HEADERS)
            done += 1
        producer.flush(30)
        consumer.commit(asynchronous=False)
    seconds = time.monotonic() - started
    consumer.close()
    print(round(seconds, 3), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
