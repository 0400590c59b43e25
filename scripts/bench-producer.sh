#!/usr/bin/env bash
# Producer benchmark, one broker, one run: producer-order's burst throughput for COUNT orders
# (default 500k) beside (a) confluent-kafka sending the same number of pre-serialized orders
# and (b) a Python producer that builds its orders as ours does (both scripts/order-peer.py,
# events from shared/schemas); then steady mode's achieved rate at 1k, 10k and 50k orders/s;
# peak RSS of each, ours against the issue-16 targets. Then idempotence (issue 15): ours with
# it on (the default) and with ENABLE_IDEMPOTENCE=false beside confluent-kafka with
# enable.idempotence=true, IDEMPOTENCE_RUNS rounds (default 3) interleaved, the order of the
# three reversed every other round so drift on a shared machine falls on each alike; medians
# and the two ratios the issue sets targets for. Prints Markdown tables.
#
#   scripts/bench-producer.sh [COUNT]     (IDEMPOTENCE_RUNS=N for more rounds, at least 3)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
COUNT="${1:-500000}"
need_count COUNT "$COUNT" 1
IDEMPOTENCE_RUNS="${IDEMPOTENCE_RUNS:-3}"
need_count IDEMPOTENCE_RUNS "$IDEMPOTENCE_RUNS" 3

scripts/broker.sh install >/dev/null
PYTHON=$(peer_python)
release_binaries producer_order
WORK=$(mktemp -d)
stop_started_on_exit 'rm -rf "$WORK"'
broker_start "bench-producer-$$"

# ours VAR=VALUE...: runs producer-order with that environment; prints its JSON summary with
# the exact peak RSS (scripts/with-peak-rss.py) added as peak_rss_kib.
ours() {
  env LOG_FORMAT=json RUST_LOG=warn CREATE_TOPICS=1 TOPIC_PARTITIONS=6 PROGRESS_INTERVAL_SEC=3600 \
    BOOTSTRAP_SERVERS="$BOOTSTRAP" "$@" python3 scripts/with-peak-rss.py "$WORK/rss" "$TARGET/producer-order" \
    > "$WORK/out" || die "producer-order failed: $(tail -n 5 "$WORK/out")"
  grep -m 1 '"summary"' "$WORK/out" | python3 -c 'import json, sys
summary = json.loads(sys.stdin.read())
summary["peak_rss_kib"] = int(open(sys.argv[1]).read())
print(json.dumps(summary))' "$WORK/rss"
}
peer() { "$PYTHON" scripts/order-peer.py "$BOOTSTRAP" "$1" "$COUNT" --create-partitions 6 "${@:2}"; }
field() { python3 -c "import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
share() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", 100 * a / b }'; }

burst=$(ours ORDER_TOPIC="burst-$$" MODE=burst TOTAL_EVENTS="$COUNT" BURST_SIZE="$COUNT")
pre=$(peer "pre-$$" --preserialized)
built=$(peer "built-$$")
ours_rate=$(field "$burst" acknowledged_per_sec); pre_rate=$(field "$pre" acknowledged_per_sec)
built_rate=$(field "$built" acknowledged_per_sec)
burst_rss=$(mib "$(field "$burst" peak_rss_kib)")

result producer_ours "$ours_rate"; result producer_peer "$pre_rate"
result producer_ours_rss_mib "$burst_rss"; result producer_peer_rss_mib "$(mib "$(field "$pre" peak_rss_kib)")"

echo
echo "Producer: $COUNT orders, 6 partitions, memory storage, $(nproc) cores, $(date -u +%F)"
echo
echo "| producer | orders/s | seconds | peak RSS (MiB) | vs confluent pre-serialized |"
echo "|---|---|---|---|---|"
echo "| producer-order (builds JSON, burst) | $ours_rate | $(field "$burst" seconds) | $burst_rss | $(share "$ours_rate" "$pre_rate") |"
echo "| confluent-kafka, pre-serialized | $pre_rate | $(field "$pre" seconds) | $(mib "$(field "$pre" peak_rss_kib)") | 100% |"
echo "| confluent-kafka, builds orders in Python | $built_rate | $(field "$built" seconds) | $(mib "$(field "$built" peak_rss_kib)") | $(share "$built_rate" "$pre_rate") |"
echo
echo "| steady target (orders/s) | achieved (orders/s) | orders | peak RSS (MiB) |"
echo "|---|---|---|---|"
steady_10k_rss=""
for rate in 1000 10000 50000; do
  total=$(( rate * 5 ))
  run=$(ours ORDER_TOPIC="steady-$rate-$$" MODE=steady RATE_PER_SEC="$rate" TOTAL_EVENTS="$total")
  rss=$(mib "$(field "$run" peak_rss_kib)")
  [[ $rate == 10000 ]] && steady_10k_rss=$rss
  echo "| $rate | $(field "$run" acknowledged_per_sec) | $(field "$run" acknowledged) | $rss |"
done
echo
echo "| target | ours | target | met |"
echo "|---|---|---|---|"
target_row "producer-order peak RSS, $COUNT-order burst (MiB)" "$burst_rss" "<=" "$RSS_TARGET_FULL_SPEED_MIB"
target_row "producer-order peak RSS at 10k orders/s (MiB)" "$steady_10k_rss" "<=" "$RSS_TARGET_STEADY_MIB"
target_row "burst rate vs confluent-kafka pre-serialized (%)" "$(awk -v a="$ours_rate" -v b="$pre_rate" 'BEGIN { printf "%.0f", 100 * a / b }')" ">=" 85

# Idempotence: three producers, interleaved rounds, medians.
declare -a idem_on idem_off idem_rdkafka
run_idempotence() {
  local round=$1 kind=$2 out
  case $kind in
    on) out=$(ours ORDER_TOPIC="idem-on-$round-$$" MODE=burst TOTAL_EVENTS="$COUNT" BURST_SIZE="$COUNT")
        idem_on+=("$(field "$out" acknowledged_per_sec)") ;;
    off) out=$(ours ORDER_TOPIC="idem-off-$round-$$" MODE=burst TOTAL_EVENTS="$COUNT" BURST_SIZE="$COUNT" \
               ENABLE_IDEMPOTENCE=false)
         idem_off+=("$(field "$out" acknowledged_per_sec)") ;;
    rdkafka) out=$(peer "idem-rdkafka-$round-$$" --preserialized --idempotence)
             idem_rdkafka+=("$(field "$out" acknowledged_per_sec)") ;;
  esac
}
for (( round = 1; round <= IDEMPOTENCE_RUNS; round++ )); do
  if (( round % 2 )); then order=(on off rdkafka); else order=(rdkafka off on); fi
  for kind in "${order[@]}"; do run_idempotence "$round" "$kind"; done
done
on_rate=$(median "${idem_on[@]}"); off_rate=$(median "${idem_off[@]}")
rdkafka_rate=$(median "${idem_rdkafka[@]}")
cost=$(awk -v on="$on_rate" -v off="$off_rate" 'BEGIN { printf "%.1f", 100 * (1 - on / off) }')
versus=$(awk -v a="$on_rate" -v b="$rdkafka_rate" 'BEGIN { printf "%.2f", a / b }')
result producer_idempotent "$on_rate"; result producer_not_idempotent "$off_rate"
result producer_peer_idempotent "$rdkafka_rate"
echo
echo "Idempotence: $COUNT orders a run, burst, $IDEMPOTENCE_RUNS interleaved rounds, medians; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| producer | median orders/s | runs (orders/s, in order) |"
echo "|---|---|---|"
echo "| producer-order, idempotent (the default) | $on_rate | ${idem_on[*]} |"
echo "| producer-order, ENABLE_IDEMPOTENCE=false | $off_rate | ${idem_off[*]} |"
echo "| confluent-kafka pre-serialized, enable.idempotence=true | $rdkafka_rate | ${idem_rdkafka[*]} |"
echo
echo "| target | ours | target | met |"
echo "|---|---|---|---|"
target_row "idempotence's cost vs our own rate without it (%)" "$cost" "<=" 5
target_row "ours idempotent vs confluent-kafka idempotent (x)" "$versus" ">=" 1.5
