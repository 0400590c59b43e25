#!/usr/bin/env bash
# Scale benchmark: inventory-consumer working off a backlog of ORDERS orders (default 200k) on
# topics of 6, 96 and 384 partitions, memory broker, a fresh broker per measurement. For each
# partition count: orders/s (from the consumer's start to the last outcome on the broker), its
# peak RSS, the TCP connections it holds to the broker and all the broker's client connections
# (highest seen, sampled every 0.2 s). Runs are interleaved (6, 96, 384, 6, 96, 384, ...) and
# the table shows medians; each row's rate is compared with the 6-partition rate (issue-16
# target: >= 0.8 at 384) and its RSS growth per partition beyond 6 is stated.
#
#   scripts/bench-scale.sh [--runs N] [ORDERS] [PARTITIONS ...]   default: --runs 3 200000 6 96 384
#
# Bounded: every wait has a deadline (SCALE_TIMEOUT_SEC per measurement, default 600), and the
# brokers and consumers it started are stopped on any exit.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

runs=3
positional=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs=${2:?--runs needs a value}; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
    -*) die_usage "unknown option '$1' (see --help)" ;;
    *) positional+=("$1"); shift ;;
  esac
done
ORDERS=${positional[0]:-200000}
COUNTS=("${positional[@]:1}")
[[ ${#COUNTS[@]} -gt 0 ]] || COUNTS=(6 96 384)
TIMEOUT_SEC=${SCALE_TIMEOUT_SEC:-600}
need_count ORDERS "$ORDERS" 1
need_count --runs "$runs" 1
need_count SCALE_TIMEOUT_SEC "$TIMEOUT_SEC" 1
for partitions in "${COUNTS[@]}"; do need_count PARTITIONS "$partitions" 1; done

scripts/broker.sh install >/dev/null
PYTHON=$(peer_python)
release_binaries producer_order inventory_consumer
WORK=$(mktemp -d)
stop_started_on_exit 'rm -rf "$WORK"'

# measure PARTITIONS RUN: one measurement on a fresh broker; prints
# "seconds peak_rss_kib inventory_connections broker_connections".
measure() {
  local partitions=$1 name="bench-scale-$1-$2-$$"
  broker_start "$name"
  BOOTSTRAP_SERVERS="$BOOTSTRAP" ORDER_TOPIC=orders CREATE_TOPICS=1 TOPIC_PARTITIONS="$partitions" \
    MODE=burst TOTAL_EVENTS="$ORDERS" BURST_SIZE="$ORDERS" PROGRESS_INTERVAL_SEC=3600 LOG_FORMAT=json RUST_LOG=warn \
    timeout "$TIMEOUT_SEC" "$TARGET/producer-order" >/dev/null || die "producing the backlog failed ($partitions partitions)"

  local started; started=$(now)
  BOOTSTRAP_SERVERS="$BOOTSTRAP" ORDER_TOPIC=orders INVENTORY_TOPIC=outcomes DLQ_TOPIC=dlq STATE_TOPIC=state \
    GROUP_ID=bench-scale CREATE_TOPICS=1 FAIL_RATE=0 THROTTLE_MS=0 INITIAL_STOCK=1000000000 RUST_LOG=warn \
    "$TARGET/inventory-consumer" &
  local consumer=$!; track_pid "$consumer"
  # The connection counts are sampled beside the run; the sampler ends with the consumer.
  local port=$BROKER_PORT
  (
    ours=0 all=0
    while alive "$consumer"; do
      o=$(tcp_connections "$port" "$consumer"); a=$(tcp_connections "$port")
      (( o > ours )) && ours=$o
      (( a > all )) && all=$a
      echo "$ours $all" > "$WORK/connections"
      sleep 0.2
    done
  ) &
  local sampler=$!; track_pid "$sampler"
  "$PYTHON" scripts/topic-tool.py wait-count "$BOOTSTRAP" outcomes "$ORDERS" "$TIMEOUT_SEC" >/dev/null \
    || die "inventory-consumer did not decide $ORDERS orders within ${TIMEOUT_SEC}s ($partitions partitions)"
  local seconds rss; seconds=$(elapsed_since "$started"); rss=$(peak_rss_kib "$consumer")
  stop_pid "$consumer"; stop_pid "$sampler"
  echo "$seconds $rss $(cat "$WORK/connections" 2>/dev/null || echo "? ?")"
  broker_stop "$name"
}

declare -A seconds_of rss_of inventory_connections_of broker_connections_of
for (( run = 1; run <= runs; run++ )); do
  for partitions in "${COUNTS[@]}"; do
    log "run $run of $runs: $partitions partitions, $ORDERS orders"
    measure "$partitions" "$run" > "$WORK/figures"
    read -r seconds rss ours_connections all_connections < "$WORK/figures"
    seconds_of[$partitions]+="$seconds "; rss_of[$partitions]+="$rss "
    inventory_connections_of[$partitions]+="$ours_connections "; broker_connections_of[$partitions]+="$all_connections "
  done
done

# Medians per partition count; the first count (6 by default) is the baseline.
baseline=${COUNTS[0]}
# shellcheck disable=SC2086
base_rate=$(awk -v n="$ORDERS" -v s="$(median ${seconds_of[$baseline]})" 'BEGIN { printf "%d", n / s }')
# shellcheck disable=SC2086
base_rss=$(median ${rss_of[$baseline]})

echo
echo "Scale: inventory-consumer, $ORDERS orders from a backlog, memory broker, median of $runs run(s) per row"
echo "(interleaved), FAIL_RATE=0, $(nproc) cores, $(date -u +%F)"
echo
echo "| partitions | orders/s | vs $baseline partitions | peak RSS (MiB) | RSS growth per partition beyond $baseline (KiB) | inventory's connections to the broker | broker connections, all clients |"
echo "|---|---|---|---|---|---|---|"
for partitions in "${COUNTS[@]}"; do
  # shellcheck disable=SC2086
  {
    seconds=$(median ${seconds_of[$partitions]}); rss=$(median ${rss_of[$partitions]})
    ours_connections=$(median ${inventory_connections_of[$partitions]}); all_connections=$(median ${broker_connections_of[$partitions]})
  }
  rate=$(awk -v n="$ORDERS" -v s="$seconds" 'BEGIN { printf "%d", n / s }')
  share=$(awk -v r="$rate" -v b="$base_rate" 'BEGIN { printf "%.2f", r / b }')
  growth="-"
  (( partitions != baseline )) && growth=$(awk -v r="$rss" -v b="$base_rss" -v p="$partitions" -v q="$baseline" 'BEGIN { printf "%.0f", (r - b) / (p - q) }')
  echo "| $partitions | $rate | $share | $(mib "$rss") | $growth | $ours_connections | $all_connections |"
  result "scale_${partitions}_rate" "$rate"; result "scale_${partitions}_share" "$share"
  result "scale_${partitions}_rss_mib" "$(mib "$rss")"; result "scale_${partitions}_connections" "$ours_connections"
  last_share=$share last_partitions=$partitions
done
echo
echo "| target | ours | target | met |"
echo "|---|---|---|---|"
target_row "orders/s at $last_partitions partitions vs $baseline" "$last_share" ">=" 0.8
