"""The librdkafka side of scripts/bench-rebalance.sh, and its load.

    rebalance-peer.py member BOOTSTRAP TOPIC GROUP STRATEGY
        A plain confluent-kafka group member measuring, per partition, the longest gap between
        consecutive records it consumed; the same stdin commands and output lines as
        bench_rebalance_member (mark, report; {"assigned": [...]}, {"unmoved_gaps_ms": {...}}).
    rebalance-peer.py produce BOOTSTRAP TOPIC RATE SECONDS
        Writes RATE small records per second, spread over the partitions, for SECONDS.
"""
import json
import select
import sys
import time


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def member(bootstrap, topic, group, strategy):
    from confluent_kafka import Consumer

    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "latest",
        "enable.auto.commit": True, "auto.commit.interval.ms": 500,
        "session.timeout.ms": 10000, "heartbeat.interval.ms": 500,
        "fetch.wait.max.ms": 20, "partition.assignment.strategy": strategy,
    })
    held, unmoved, last, longest = set(), set(), {}, {}
    marked = False

    def on_assign(_consumer, partitions):
        held.update(p.partition for p in partitions)
        emit({"assigned": sorted(held)})

    def on_revoke(_consumer, partitions):
        for p in partitions:
            held.discard(p.partition)
        emit({"assigned": sorted(held)})

    consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_revoke)
    while True:
        if select.select([sys.stdin], [], [], 0)[0]:
            command = sys.stdin.readline().strip()
            if command == "mark":
                marked, longest = True, {}
                unmoved = set(held)
            elif command in ("report", ""):
                emit({"unmoved_gaps_ms": {str(p): round(longest.get(p, 0.0) * 1000, 1) for p in sorted(unmoved & held)}})
                break
        # One poll at a time, as the Rust member sees one batch at a time: a record's arrival
        # is when the application gets it.
        for message in consumer.consume(10000, 0.01):
            if message.error():
                continue
            now, partition = time.monotonic(), message.partition()
            previous = last.get(partition)
            last[partition] = now
            if marked and previous is not None:
                longest[partition] = max(longest.get(partition, 0.0), now - previous)
    consumer.close()


def produce(bootstrap, topic, rate, seconds):
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1})
    started = time.monotonic()
    sent = 0
    while time.monotonic() - started < seconds:
        due = int((time.monotonic() - started) * rate)
        while sent < due:
            producer.produce(topic, value=b"x" * 100, partition=sent % 6)
            sent += 1
        producer.poll(0)
        time.sleep(0.002)
    producer.flush(10)


def main():
    mode = sys.argv[1]
    if mode == "member":
        member(*sys.argv[2:6])
    elif mode == "produce":
        produce(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
    else:
        sys.exit(f"unknown mode {mode!r} (accepted: member, produce)")


if __name__ == "__main__":
    main()
