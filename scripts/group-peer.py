"""The confluent-kafka counterpart of bench_group_consume: one group member reading COUNT records.

Range assignment, no auto-commit, the join included in the time (as ours). Prints one JSON
line: records, seconds, records_per_sec, peak_rss_kib.

    group-peer.py BOOTSTRAP TOPIC GROUP COUNT
"""
import json
import resource
import sys
import time

from confluent_kafka import Consumer


def main():
    bootstrap, topic, group = sys.argv[1:4]
    count = int(sys.argv[4])
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, "partition.assignment.strategy": "range"})
    started = time.monotonic()
    consumer.subscribe([topic])
    consumed = 0
    while consumed < count:
        for message in consumer.consume(10000, 1.0):
            if not message.error():
                consumed += 1
    elapsed = time.monotonic() - started
    consumer.close()
    print(json.dumps({"records": consumed, "seconds": round(elapsed, 3),
                      "records_per_sec": round(consumed / elapsed),
                      "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


if __name__ == "__main__":
    main()
