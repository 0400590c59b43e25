#!/usr/bin/env bash
# End-to-end latency benchmark, one broker, one run: orders produced at a steady rate, decided
# by an inventory consumer, and the time from an order's `created_at` to its outcome's
# `processed_at` (the dashboard's latency) at each rate. Ours: producer-order +
# inventory-consumer (+ analytics-consumer running, for its memory). Peer: the same work in
# Python with confluent-kafka (a paced producer, and a consumer that decides, produces the
# outcome and commits after the flush). Both are read back and measured by the same script.
# Also reports each process's peak RSS at the highest rate. Prints a Markdown table.
#
#   scripts/bench-latency.sh [SECONDS_PER_RATE] [RATE ...]     default: 20 1000 10000
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RATE="${1:-20}"
shift || true
RATES=("$@")
[[ ${#RATES[@]} -gt 0 ]] || RATES=(1000 10000)
NAME="bench-latency-$$"

scripts/broker.sh install >/dev/null
PYTHON=$(scripts/peers.sh)
cargo build --release --locked -q -p producer_order -p inventory_consumer -p analytics_consumer
TARGET="${CARGO_TARGET_DIR:-target}/release"
BOOTSTRAP=$(scripts/broker.sh start --name "$NAME" | sed -n 's/^BOOTSTRAP_SERVERS=//p')
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  scripts/broker.sh stop --name "$NAME" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# For scripts/bench.sh: figures as `key value` lines appended to $BENCH_RESULTS when it is set.
result() { [[ -n "${BENCH_RESULTS:-}" ]] && echo "$1 $2" >> "$BENCH_RESULTS"; return 0; }
peak_rss_mib() { awk '/VmHWM/ { print int($2 / 1024) }' "/proc/$1/status" 2>/dev/null || echo "?"; }

# Reads every outcome on TOPIC until COUNT are there; prints p50 and p99 of
# processed_at - order_created_at in milliseconds.
latencies() {
  "$PYTHON" - "$BOOTSTRAP" "$1" "$2" <<'PY'
import json, sys, time
from datetime import datetime
from confluent_kafka import Consumer
bootstrap, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = Consumer({"bootstrap.servers": bootstrap, "group.id": "latency-reader-" + topic,
              "auto.offset.reset": "earliest", "enable.auto.commit": False})
c.subscribe([topic])
def ms(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000
seen, values, deadline = set(), [], time.monotonic() + 600
while len(seen) < count and time.monotonic() < deadline:
    for m in c.consume(10000, 0.5):
        if m.error():
            continue
        event = json.loads(m.value())
        if event["order_id"] in seen:
            continue
        seen.add(event["order_id"])
        values.append(ms(event["processed_at"]) - ms(event["order_created_at"]))
c.close()
values.sort()
pick = lambda q: values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")
print(f"{pick(0.50):.0f} {pick(0.99):.0f} {len(values)}")
PY
}

ours() {
  local rate=$1 total=$(( $1 * SECONDS_PER_RATE )) run="ours-$1-$$"
  local env=(BOOTSTRAP_SERVERS="$BOOTSTRAP" ORDER_TOPIC="$run-orders" INVENTORY_TOPIC="$run-outcomes"
             DLQ_TOPIC="$run-dlq" STATE_TOPIC="$run-state" RUST_LOG=warn CREATE_TOPICS=1)
  env "${env[@]}" GROUP_ID="$run" FAIL_RATE=0 THROTTLE_MS=0 "$TARGET/inventory-consumer" &
  local inventory=$!; pids+=("$inventory")
  env "${env[@]}" GROUP_ID="$run-analytics" GROUP_INSTANCE_ID="$run" HTTP_HOST=127.0.0.1 HTTP_PORT=$(( 20000 + RANDOM % 20000 )) \
    "$TARGET/analytics-consumer" >/dev/null 2>&1 &
  local analytics=$!; pids+=("$analytics")
  env "${env[@]}" MODE=steady RATE_PER_SEC="$rate" TOTAL_EVENTS="$total" TOPIC_PARTITIONS=6 \
    "$TARGET/producer-order" >/dev/null &
  local producer=$!
  # The producer's peak RSS must be read before it exits: sample it while it runs.
  local producer_rss=0 sample
  while kill -0 "$producer" 2>/dev/null; do
    sample=$(awk '/VmHWM/ { print int($2 / 1024) }' "/proc/$producer/status" 2>/dev/null || echo 0)
    (( sample > producer_rss )) && producer_rss=$sample
    sleep 0.2
  done
  wait "$producer"
  local figures; figures=$(latencies "$run-outcomes" "$total")
  echo "$figures $producer_rss $(peak_rss_mib "$inventory") $(peak_rss_mib "$analytics")"
  kill "$inventory" "$analytics"; wait "$inventory" "$analytics" 2>/dev/null || true
}

peer() {
  local rate=$1 total=$(( $1 * SECONDS_PER_RATE )) run="peer-$1-$$"
  "$PYTHON" - "$BOOTSTRAP" "$run" <<'PY'
from confluent_kafka.admin import AdminClient, NewTopic
import sys
admin = AdminClient({"bootstrap.servers": sys.argv[1]})
for future in admin.create_topics([NewTopic(sys.argv[2] + "-orders", 6, 1), NewTopic(sys.argv[2] + "-outcomes", 6, 1)]).values():
    future.result()
PY
  local rss_file; rss_file=$(mktemp)
  # The same peer as bench-inventory.sh, with a short poll wait: latency, not throughput.
  "$PYTHON" scripts/inventory-peer.py "$BOOTSTRAP" "$run-orders" "$run-outcomes" "$run" "$total" 0.01 \
    | awk '{ print int($2 / 1024) }' > "$rss_file" &
  local consumer=$!; pids+=("$consumer")
  local producer_rss
  producer_rss=$("$PYTHON" - "$BOOTSTRAP" "$run" "$rate" "$total" <<'PY'
import json, random, resource, sys, time, uuid
from datetime import datetime, timezone
from confluent_kafka import Producer
bootstrap, run, rate, count = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "partitioner": "murmur2_random"})
rng = random.Random(42)
started = time.monotonic()
for n in range(count):
    # Paced like producer-order's steady mode: order n is due at n / rate seconds.
    due = started + n / rate
    delay = due - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    order = {"schema_version": 1, "order_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
             "customer_id": f"customer-{rng.randrange(10000)}", "item_id": f"item-{rng.randrange(100)}",
             "quantity": rng.randint(1, 5), "unit_price": 9.99, "currency": "EUR", "status": "created",
             "created_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")}
    while True:
        try:
            producer.produce(run + "-orders", key=order["item_id"].encode(), value=json.dumps(order).encode())
            break
        except BufferError:
            producer.poll(0.01)
    producer.poll(0)
producer.flush(60)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
PY
)
  wait "$consumer"
  local figures; figures=$(latencies "$run-outcomes" "$total")
  echo "$figures $producer_rss $(cat "$rss_file")"
  rm -f "$rss_file"
}

echo
echo "End-to-end latency (order created_at -> outcome processed_at), 6 partitions, ${SECONDS_PER_RATE} s per rate, $(nproc) cores, $(date -u +%F)"
echo
echo "| rate (orders/s) | ours p50 (ms) | ours p99 (ms) | peer p50 (ms) | peer p99 (ms) | orders measured (ours / peer) |"
echo "|---|---|---|---|---|---|"
for rate in "${RATES[@]}"; do
  read -r o50 o99 on o_prod_rss o_inv_rss o_ana_rss <<<"$(ours "$rate")"
  read -r p50 p99 pn p_prod_rss p_inv_rss <<<"$(peer "$rate")"
  echo "| $rate | $o50 | $o99 | $p50 | $p99 | $on / $pn |"
  result "latency_${rate}_ours_p50" "$o50"; result "latency_${rate}_ours_p99" "$o99"
  result "latency_${rate}_peer_p50" "$p50"; result "latency_${rate}_peer_p99" "$p99"
done
echo
echo "| peak RSS at ${RATES[-1]} orders/s (MiB) | ours | Python peer |"
echo "|---|---|---|"
echo "| producer | $o_prod_rss | $p_prod_rss |"
echo "| inventory consumer | $o_inv_rss | $p_inv_rss |"
echo "| analytics consumer | $o_ana_rss | (see the analytics table) |"
result rss_producer_ours "$o_prod_rss"; result rss_producer_peer "$p_prod_rss"
result rss_inventory_ours "$o_inv_rss"; result rss_inventory_peer "$p_inv_rss"
result rss_analytics_ours "$o_ana_rss"
