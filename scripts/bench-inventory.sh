#!/usr/bin/env bash
# Inventory benchmark, one broker, one run: orders/s processed by inventory-consumer
# (FAIL_RATE=0, THROTTLE_MS=0: read, decide, produce the outcome and the stock change, commit
# after they are acknowledged) beside a Python consumer doing the same work with
# confluent-kafka (read, decide, produce outcome, commit after the producer flushed).
# Prints a Markdown table.
#
#   scripts/bench-inventory.sh [ORDERS]
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${1:-1000000}"
NAME="bench-inventory-$$"

scripts/broker.sh install >/dev/null
PYTHON=$(scripts/peers.sh)
cargo build --release --locked -q -p inventory_consumer -p producer_order
TARGET="${CARGO_TARGET_DIR:-target}/release"
BOOTSTRAP=$(scripts/broker.sh start --name "$NAME" | sed -n 's/^BOOTSTRAP_SERVERS=//p')
trap 'scripts/broker.sh stop --name "$NAME" >/dev/null 2>&1 || true' EXIT

# The same orders for both: producer-order writes them once.
BOOTSTRAP_SERVERS="$BOOTSTRAP" ORDER_TOPIC=orders CREATE_TOPICS=1 TOPIC_PARTITIONS=6 TOTAL_EVENTS="$COUNT" \
  BURST_SIZE="$COUNT" LOG_FORMAT=json RUST_LOG=warn "$TARGET/producer-order" >/dev/null

# Counts records on a topic (sum of high watermarks).
on_topic() {
  "$PYTHON" - "$BOOTSTRAP" "$1" <<'PY'
import sys
from confluent_kafka import Consumer, TopicPartition
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": "watermarks"})
md = c.list_topics(sys.argv[2], timeout=10).topics.get(sys.argv[2])
total = 0
if md and not md.error:
    for p in md.partitions:
        total += c.get_watermark_offsets(TopicPartition(sys.argv[2], p), timeout=10)[1]
c.close()
print(total)
PY
}

started=$("$PYTHON" -c 'import time; print(time.time())')
BOOTSTRAP_SERVERS="$BOOTSTRAP" ORDER_TOPIC=orders INVENTORY_TOPIC=outcomes DLQ_TOPIC=dlq STATE_TOPIC=state \
  GROUP_ID=bench CREATE_TOPICS=1 FAIL_RATE=0 THROTTLE_MS=0 INITIAL_STOCK=1000000000 RUST_LOG=warn \
  "$TARGET/inventory-consumer" &
pid=$!
until [[ $(on_topic outcomes) -ge $COUNT ]]; do sleep 0.1; done
ours_s=$("$PYTHON" -c "import time; print(round(time.time() - $started, 3))")
ours_rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
kill "$pid"; wait "$pid" 2>/dev/null || true

peer=$("$PYTHON" scripts/inventory-peer.py "$BOOTSTRAP" orders peer-outcomes peer "$COUNT")
read -r peer_s peer_rss <<<"$peer"
rate() { "$PYTHON" -c "print(round($COUNT / $1))"; }

# For scripts/bench.sh: figures as `key value` lines appended to $BENCH_RESULTS when it is set.
result() { [[ -n "${BENCH_RESULTS:-}" ]] && echo "$1 $2" >> "$BENCH_RESULTS"; return 0; }
result inventory_ours "$(rate "$ours_s")"; result inventory_peer "$(rate "$peer_s")"
result inventory_ours_rss_mib "$(( ours_rss / 1024 ))"; result inventory_peer_rss_mib "$(( peer_rss / 1024 ))"

echo
echo "Inventory: $COUNT orders, 6 partitions, FAIL_RATE=0, THROTTLE_MS=0, $(nproc) cores, $(date -u +%F)"
echo
echo "| consumer | orders/s | seconds | peak RSS (MiB) |"
echo "|---|---|---|---|"
echo "| inventory-consumer | $(rate "$ours_s") | $ours_s | $(( ours_rss / 1024 )) |"
echo "| Python + confluent-kafka, same work | $(rate "$peer_s") | $peer_s | $(( peer_rss / 1024 )) |"
echo "| ratio | $("$PYTHON" -c "print(f'{$peer_s / $ours_s:.1f}x')") | | |"
