"""Reads outcomes back and prints end-to-end latency: "<p50 ms> <p99 ms> <outcomes measured>".

Latency is an outcome's processed_at minus its order_created_at (the dashboard's measure),
counted once per order id, until COUNT orders have an outcome or TIMEOUT seconds pass. The
first outcome is checked against shared/schemas' inventory-event (peer_events), so ours and the
peer's are measured only if they write the same event.

    latency-reader.py BOOTSTRAP TOPIC COUNT [TIMEOUT_SECONDS]
"""
import json
import sys
import time

from confluent_kafka import Consumer

import peer_events


def main():
    bootstrap, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 600
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "latency-reader-" + topic,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    seen, values, checked = set(), [], False
    deadline = time.monotonic() + timeout
    while len(seen) < count and time.monotonic() < deadline:
        for message in consumer.consume(10000, 0.5):
            if message.error():
                continue
            event = json.loads(message.value())
            if not checked:
                peer_events.check(peer_events.OUTCOMES.schema, event)
                checked = True
            if event["order_id"] in seen:
                continue
            seen.add(event["order_id"])
            values.append(peer_events.millis(event["processed_at"]) - peer_events.millis(event["order_created_at"]))
    consumer.close()
    values.sort()

    def pick(quantile):
        return values[min(len(values) - 1, int(quantile * len(values)))] if values else float("nan")

    print(f"{pick(0.50):.0f} {pick(0.99):.0f} {len(values)}")


if __name__ == "__main__":
    main()
