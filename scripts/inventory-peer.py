"""The Python peer of inventory-consumer for the benchmarks: the same work with confluent-kafka.

Reads orders, decides reserve/reject against in-memory stock, produces the same outcome event
our service writes (deterministic event id, every field), and commits only after the outcomes
of the batch are flushed. Prints "<seconds> <peak RSS KiB>" when COUNT orders are done.

    inventory-peer.py BOOTSTRAP ORDER_TOPIC OUTCOME_TOPIC GROUP COUNT [POLL_WAIT_SECONDS]

POLL_WAIT_SECONDS (default 1.0) is how long one consume call may wait for a full batch: long
for throughput, short (0.01) when latency is measured, so the peer is not penalised at low
rates.
"""
import json
import resource
import sys
import time
import uuid
from datetime import datetime, timezone

from confluent_kafka import Consumer, Producer

NAMESPACE = uuid.UUID("6f1c2a0e-5d8b-4c71-9a43-7e2b1f0dc3a9")


def main():
    bootstrap, order_topic, outcome_topic, group = sys.argv[1:5]
    count = int(sys.argv[5])
    poll_wait = float(sys.argv[6]) if len(sys.argv) > 6 else 1.0
    started = time.monotonic()
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5,
                         "partitioner": "murmur2_random"})
    consumer.subscribe([order_topic])
    stock, done = {}, 0
    while done < count:
        batch = consumer.consume(1000, poll_wait)
        if not batch:
            continue
        for message in batch:
            if message.error():
                continue
            order = json.loads(message.value())
            left = stock.get(order["item_id"], 1000000000)
            outcome = "reserved" if left >= order["quantity"] else "rejected"
            if outcome == "reserved":
                left -= order["quantity"]
                stock[order["item_id"]] = left
            event = {"schema_version": 1,
                     "event_id": str(uuid.uuid5(NAMESPACE, order["order_id"] + ":" + outcome)),
                     "order_id": order["order_id"], "item_id": order["item_id"],
                     "quantity": order["quantity"], "outcome": outcome,
                     "reason": None if outcome == "reserved" else "insufficient_stock",
                     "stock_after": left, "attempts": 1, "order_created_at": order["created_at"],
                     "processed_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds")
                     .replace("+00:00", "Z"),
                     "source_partition": message.partition(), "source_offset": message.offset()}
            producer.produce(outcome_topic, key=order["item_id"], value=json.dumps(event).encode(),
                             headers={"event-type": b"inventory.outcome", "schema-version": b"1"})
            done += 1
        producer.flush(30)
        consumer.commit(asynchronous=False)
    seconds = time.monotonic() - started
    consumer.close()
    print(round(seconds, 3), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


if __name__ == "__main__":
    main()
