#!/usr/bin/env bash
# Benchmark of the group member's read path: one member reads COUNT (default 1M) records of
# about 200 bytes from a 6-partition topic, beside a confluent-kafka consumer reading the same
# topic in the same run. Prints a Markdown table with the ratio and peak RSS.
#
#   scripts/bench-group.sh [COUNT]
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${1:-1000000}"
NAME="bench-group-$$"

scripts/broker.sh install >/dev/null
PYTHON=$(scripts/peers.sh)
cargo build --release --locked -q -p integration-tests --bin bench_group_consume
BOOTSTRAP=$(scripts/broker.sh start --name "$NAME" | sed -n 's/^BOOTSTRAP_SERVERS=//p')
trap 'scripts/broker.sh stop --name "$NAME" >/dev/null 2>&1 || true' EXIT
TOPIC="bench-$$"

"$PYTHON" - "$BOOTSTRAP" "$TOPIC" "$COUNT" <<'PY'
import sys, json, uuid
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
bootstrap, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
admin = AdminClient({"bootstrap.servers": bootstrap})
admin.create_topics([NewTopic(topic, 6, 1)])[topic].result()
producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "batch.num.messages": 10000, "queue.buffering.max.messages": 1000000})
value = json.dumps({"order_id": str(uuid.uuid4()), "customer_id": "customer-00042", "item_id": "item-0007",
                    "quantity": 3, "unit_price": 19.99, "currency": "EUR", "status": "created",
                    "created_at": "2026-11-24T09:00:00.000Z", "schema_version": 1}).encode()
for i in range(count):
    while True:
        try:
            producer.produce(topic, value=value, partition=i % 6)
            break
        except BufferError:
            producer.poll(0.05)
producer.flush(120)
PY

ours=$("${CARGO_TARGET_DIR:-target}/release/bench_group_consume" "$BOOTSTRAP" "$TOPIC" "ours-$$" "$COUNT")
peer=$("$PYTHON" - "$BOOTSTRAP" "$TOPIC" "peer-$$" "$COUNT" <<'PY'
import sys, time, json, resource
from confluent_kafka import Consumer
bootstrap, topic, group, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                     "enable.auto.commit": False, "partition.assignment.strategy": "range"})
started = time.monotonic()  # join included, as ours is
consumer.subscribe([topic])
consumed = 0
while consumed < count:
    messages = consumer.consume(10000, 1.0)
    for m in messages:
        if m.error():
            continue
        consumed += 1
elapsed = time.monotonic() - started
consumer.close()
print(json.dumps({"records": consumed, "seconds": round(elapsed, 3), "records_per_sec": round(consumed / elapsed),
                  "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
PY
)

field() { "$PYTHON" -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
ours_rate=$(field "$ours" records_per_sec); peer_rate=$(field "$peer" records_per_sec)
ratio=$("$PYTHON" -c "print(f'{$ours_rate / $peer_rate:.2f}')")
echo
echo "Group member read path: $COUNT records (~200 B), 6 partitions, one member, $(nproc) cores, $(date -u +%F)"
echo
echo "| consumer | records/s | seconds | peak RSS (MiB) |"
echo "|---|---|---|---|"
echo "| streaming-kafka GroupConsumer | $ours_rate | $(field "$ours" seconds) | $(( $(field "$ours" peak_rss_kib) / 1024 )) |"
echo "| confluent-kafka (librdkafka) | $peer_rate | $(field "$peer" seconds) | $(( $(field "$peer" peak_rss_kib) / 1024 )) |"
echo "| ratio ours / librdkafka | $ratio | | |"
