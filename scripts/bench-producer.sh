#!/usr/bin/env bash
# Producer benchmark, one broker, one run: producer-order's burst throughput for COUNT orders
# (default 500k) beside (a) confluent-kafka sending the same number of pre-serialized ~230-byte
# JSON orders and (b) a Python producer that builds its orders as ours does; then steady mode's
# achieved rate at 1k, 10k and 50k orders/s; peak RSS of each. Prints a Markdown table.
#
#   scripts/bench-producer.sh [COUNT]
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${1:-500000}"
NAME="bench-producer-$$"

scripts/broker.sh install >/dev/null
PYTHON=$(scripts/peers.sh)
cargo build --release --locked -q -p producer_order
BIN="${CARGO_TARGET_DIR:-target}/release/producer-order"
BOOTSTRAP=$(scripts/broker.sh start --name "$NAME" | sed -n 's/^BOOTSTRAP_SERVERS=//p')
trap 'scripts/broker.sh stop --name "$NAME" >/dev/null 2>&1 || true' EXIT

# Runs our binary with the given environment and prints its summary plus the child's peak RSS.
ours() {
  "$PYTHON" - "$BIN" "$@" <<'PY'
import json, os, resource, subprocess, sys
binary, assignments = sys.argv[1], sys.argv[2:]
env = {"PATH": os.environ.get("PATH", ""), "LOG_FORMAT": "json", "RUST_LOG": "warn", "CREATE_TOPICS": "1",
       "TOPIC_PARTITIONS": "6", "PROGRESS_INTERVAL_SEC": "3600"}
env.update(a.split("=", 1) for a in assignments)
out = subprocess.run([binary], env=env, capture_output=True, text=True, cwd=os.getcwd())
summary = next(json.loads(l) for l in out.stdout.splitlines() if '"summary"' in l)
summary["peak_rss_kib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps(summary))
PY
}

peer() {
  "$PYTHON" - "$BOOTSTRAP" "$1" "$COUNT" "$2" <<'PY'
import json, random, resource, sys, time, uuid
from datetime import datetime, timezone
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
bootstrap, topic, count, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
admin = AdminClient({"bootstrap.servers": bootstrap})
admin.create_topics([NewTopic(topic, 6, 1)])[topic].result()
producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "partitioner": "murmur2_random",
                     "queue.buffering.max.messages": 1000000, "acks": "all"})
headers = {"event-type": b"order.created", "schema-version": b"1"}
sample = json.dumps({"schema_version": 1, "order_id": str(uuid.uuid4()), "customer_id": "customer-01234",
                     "item_id": "item-0042", "quantity": 3, "unit_price": 12.34, "currency": "EUR",
                     "status": "created", "created_at": "2026-11-24T09:52:20.412Z"}).encode()
keys = [f"item-{i:04}".encode() for i in range(100)]
rng = random.Random(42)
started = time.monotonic()
for i in range(count):
    if mode == "preserialized":
        key, value = keys[i % 100], sample
    else:
        item = rng.randrange(100)
        order = {"schema_version": 1, "order_id": str(uuid.uuid4()), "customer_id": f"customer-{rng.randrange(10000):05}",
                 "item_id": f"item-{item:04}", "quantity": rng.randint(1, 5), "unit_price": round(1 + item * 0.79, 2),
                 "currency": "EUR", "status": "created",
                 "created_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")}
        key, value = order["item_id"].encode(), json.dumps(order).encode()
    while True:
        try:
            producer.produce(topic, key=key, value=value, headers=headers)
            break
        except BufferError:
            producer.poll(0.01)
left = producer.flush(120)
seconds = time.monotonic() - started
print(json.dumps({"acknowledged": count - left, "seconds": round(seconds, 3),
                  "acknowledged_per_sec": round((count - left) / seconds),
                  "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
PY
}

field() { "$PYTHON" -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
mib() { echo $(( $1 / 1024 )); }

burst=$(ours BOOTSTRAP_SERVERS="$BOOTSTRAP" ORDER_TOPIC="burst-$$" MODE=burst TOTAL_EVENTS="$COUNT" BURST_SIZE="$COUNT")
pre=$(peer "pre-$$" preserialized)
built=$(peer "built-$$" build)
ours_rate=$(field "$burst" acknowledged_per_sec); pre_rate=$(field "$pre" acknowledged_per_sec)

# For scripts/bench.sh: figures as `key value` lines appended to $BENCH_RESULTS when it is set.
result() { [[ -n "${BENCH_RESULTS:-}" ]] && echo "$1 $2" >> "$BENCH_RESULTS"; return 0; }
result producer_ours "$ours_rate"; result producer_peer "$pre_rate"
result producer_ours_rss_mib "$(mib "$(field "$burst" peak_rss_kib)")"; result producer_peer_rss_mib "$(mib "$(field "$pre" peak_rss_kib)")"

echo
echo "Producer: $COUNT orders, 6 partitions, memory storage, $(nproc) cores, $(date -u +%F)"
echo
echo "| producer | orders/s | seconds | peak RSS (MiB) | vs confluent pre-serialized |"
echo "|---|---|---|---|---|"
echo "| producer-order (builds JSON, burst) | $ours_rate | $(field "$burst" seconds) | $(mib "$(field "$burst" peak_rss_kib)") | $("$PYTHON" -c "print(f'{$ours_rate/$pre_rate:.0%}')") |"
echo "| confluent-kafka, pre-serialized | $pre_rate | $(field "$pre" seconds) | $(mib "$(field "$pre" peak_rss_kib)") | 100% |"
echo "| confluent-kafka, builds orders in Python | $(field "$built" acknowledged_per_sec) | $(field "$built" seconds) | $(mib "$(field "$built" peak_rss_kib)") | $("$PYTHON" -c "print(f'{$(field "$built" acknowledged_per_sec)/$pre_rate:.0%}')") |"
echo
echo "| steady target (orders/s) | achieved (orders/s) | orders | peak RSS (MiB) |"
echo "|---|---|---|---|"
for rate in 1000 10000 50000; do
  total=$(( rate * 5 ))
  run=$(ours BOOTSTRAP_SERVERS="$BOOTSTRAP" ORDER_TOPIC="steady-$rate-$$" MODE=steady RATE_PER_SEC="$rate" TOTAL_EVENTS="$total")
  echo "| $rate | $(field "$run" acknowledged_per_sec) | $(field "$run" acknowledged) | $(mib "$(field "$run" peak_rss_kib)") |"
done
