"""The Python peer of analytics-consumer for the benchmarks: the same counting with confluent-kafka.

Consumes the order and outcome topics in one fresh group, counts events per second per topic
and outcomes by kind, and counts an outcome once per event_id (as the dashboard does). The
first event of each topic is checked against its schema (peer_events), so a seed that drifts
from shared/schemas fails here rather than measuring something else. Prints
"<seconds> <peak RSS KiB>" once it has counted COUNT events of each topic.

    analytics-peer.py BOOTSTRAP ORDER_TOPIC OUTCOME_TOPIC COUNT [--fetch-wait-ms N] [--fetch-min-bytes N]

--fetch-wait-ms and --fetch-min-bytes (default: librdkafka's 500 and 1) are librdkafka's
fetch.wait.max.ms and fetch.min.bytes, what our analytics-consumer reads from FETCH_MAX_WAIT_MS
and FETCH_MIN_BYTES: the latency benchmark runs this peer beside the Python pipeline with our
analytics consumer's values, so both pipelines put the same readers on the broker.
"""
import argparse
import json
import resource
import time
from collections import defaultdict

from confluent_kafka import Consumer

import peer_events


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("bootstrap", "order_topic", "outcome_topic"):
        parser.add_argument(name)
    parser.add_argument("count", type=int)
    parser.add_argument("--fetch-wait-ms", type=int, default=500)
    parser.add_argument("--fetch-min-bytes", type=int, default=1)
    return parser.parse_args()


def main():
    args = arguments()
    order_topic, outcome_topic, count = args.order_topic, args.outcome_topic, args.count
    started = time.monotonic()
    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": f"analytics-peer-{time.time()}",
                         "auto.offset.reset": "earliest", "fetch.wait.max.ms": args.fetch_wait_ms,
                         "fetch.min.bytes": args.fetch_min_bytes})
    consumer.subscribe([order_topic, outcome_topic])
    window, seen, totals = defaultdict(lambda: defaultdict(int)), set(), defaultdict(int)
    schemas = {order_topic: peer_events.ORDERS.schema, outcome_topic: peer_events.OUTCOMES.schema}
    consumed = 0
    while consumed < 2 * count:
        for message in consumer.consume(10000, 1.0):
            if message.error():
                continue
            topic = message.topic()
            event = json.loads(message.value())
            if topic in schemas:
                peer_events.check(schemas.pop(topic), event)
            second = int(time.time())
            if topic == outcome_topic:
                if event["event_id"] in seen:
                    continue
                seen.add(event["event_id"])
                totals[event["outcome"]] += 1
            window[second][topic] += 1
            consumed += 1
    seconds = time.monotonic() - started
    consumer.close()
    print(round(seconds, 3), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


if __name__ == "__main__":
    main()
