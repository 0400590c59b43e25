#!/usr/bin/env bash
# Soak (not part of CI): the whole pipeline for MINUTES at a steady rate, started as the
# playground starts it (scripts/run.sh: a memory broker and the three services with their env
# files), with each service's RSS sampled every INTERVAL seconds. Prints the samples as a table
# and, per service, the mean RSS of the first and the last third of the run with a verdict:
# flat, or growing (the last third more than 10% and more than 1 MiB above the first). Flat is
# the pass.
#
#   scripts/soak.sh [--minutes N] [--rate N] [--interval S] [--partitions N] [--keep-seconds S]
#                                                    default: 30 min, 10000 orders/s, 10 s, 6, 10 s
#
# The broker runs on memory storage (`run.sh --memory`): run.sh's default, durable SQLite,
# held about 1.3k orders/s of the 10k asked here (2026-12-01, the inventory consumer idle at
# 1% of a core while its lag grew past a million), so a soak on it measures the broker.
# Nisshi's memory storage keeps every record, and its fetch lists every stored batch of the
# partition it reads, so over a long run the broker would grow by gigabytes and slow with the
# log (at 10k orders/s the latency rises within 20 s). The order and outcome topics are
# trimmed every INTERVAL to their last KEEP seconds of records (default 10; scripts/topic-tool.py
# trim, DeleteRecords, which removes the batches), still far more than any consumer lags when
# the pipeline keeps up; the two minutes kept before left some 25k batches per partition at
# 10k/s, and the broker, not our services, set the pace. Each sample also shows the orders
# decided per second since the last one and the lag, so a soak that did not hold its rate says
# so. The broker's RSS is shown for information, not judged. Bounded: the
# run ends after MINUTES (plus at most two minutes to start and stop), and everything it
# started is stopped, also on Ctrl+C.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

minutes=30 rate=10000 interval=10 partitions=6 keep_seconds=10
while [[ $# -gt 0 ]]; do
  case "$1" in
    --minutes) minutes=${2:?--minutes needs a value}; shift 2 ;;
    --rate) rate=${2:?--rate needs a value}; shift 2 ;;
    --interval) interval=${2:?--interval needs a value}; shift 2 ;;
    --partitions) partitions=${2:?--partitions needs a value}; shift 2 ;;
    --keep-seconds) keep_seconds=${2:?--keep-seconds needs a value}; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
    *) die_usage "unknown option '$1' (see --help)" ;;
  esac
done
need_count --minutes "$minutes" 1
need_count --rate "$rate" 1
need_count --interval "$interval" 1
need_count --partitions "$partitions" 1
need_count --keep-seconds "$keep_seconds" 1

PYTHON=$(peer_python)
WORK=$(mktemp -d)
broker_port=$(free_port) http_port=$(free_port)
run_pid="" trimmer_pid=""
finish() {
  local status=$?
  trap - EXIT
  # run.sh stops its services and its broker on SIGINT, as on a terminal's Ctrl+C.
  if [[ -n "$run_pid" ]] && alive "$run_pid"; then
    kill -INT "$run_pid" 2>/dev/null || true
    local deadline=$(( SECONDS + 60 ))
    while alive "$run_pid" && (( SECONDS < deadline )); do sleep 0.2; done
    stop_pid "$run_pid"
  fi
  [[ -n "$trimmer_pid" ]] && stop_pid "$trimmer_pid"
  rm -rf "$WORK"
  exit "$status"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "starting the pipeline (scripts/run.sh, memory storage) at $rate orders/s for $minutes min"
scripts/run.sh --no-follow --memory --rate "$rate" --partitions "$partitions" --broker-port "$broker_port" \
  --http-port "$http_port" --data "$WORK/data" RUST_LOG=warn > "$WORK/run.out" 2> "$WORK/run.err" &
run_pid=$!
dashboard_up() {
  alive "$run_pid" || { cat "$WORK/run.err" >&2; die "scripts/run.sh exited during start-up (its log is above)"; }
  grep -q '^DASHBOARD=' "$WORK/run.out"
}
# The first start builds the release binaries; later ones are up in seconds.
WAIT_INTERVAL=0.5 wait_until 1800 "scripts/run.sh to report the dashboard" dashboard_up

# run.sh names each service's pid: "started inventory (pid N, log ...)".
service_pid() { sed -n "s/.*started $1 (pid \([0-9]*\),.*/\1/p" "$WORK/run.err" | tail -n 1; }
services=(producer inventory analytics)
declare -A pid_of
for service in "${services[@]}"; do
  pid_of[$service]=$(service_pid "$service")
  [[ -n "${pid_of[$service]}" ]] || die "run.sh did not report the $service pid"
done
broker=$(broker_pid "pipeline-$broker_port")
[[ -n "$broker" ]] || die "the pipeline broker's pid is unknown"

keep=$(( rate * keep_seconds / partitions + 1000 ))
"$PYTHON" scripts/topic-tool.py trim "127.0.0.1:$broker_port" "$keep" "$interval" order-events inventory-events \
  2> "$WORK/trim.err" &
trimmer_pid=$!

# decided_and_lag: "decided lag" from the dashboard's /metrics ("? ?" if it does not answer).
decided_and_lag() {
  curl -fs --max-time 2 "http://127.0.0.1:$http_port/metrics" 2>/dev/null \
    | python3 -c 'import json, sys; m = json.load(sys.stdin); print(m["processed_order_count"], m["lag_total"])' 2>/dev/null \
    || echo "? ?"
}

rows=()
declare -A samples_of
read -r last_decided _ < <(decided_and_lag)
started=$SECONDS
end=$(( started + minutes * 60 ))
next=$(( started + interval ))
while (( SECONDS < end )); do
  while (( SECONDS < next )); do sleep 0.5; done
  next=$(( next + interval ))
  alive "$run_pid" || { tail -n 20 "$WORK/run.err" >&2; die "the pipeline stopped during the soak (run.sh's log above)"; }
  row="| $(( SECONDS - started ))"
  for service in "${services[@]}"; do
    kib=$(rss_kib "${pid_of[$service]}")
    [[ -n "$kib" ]] || die "the $service service (pid ${pid_of[$service]}) is gone"
    samples_of[$service]+="$kib "
    row+=" | $(mib "$kib")"
  done
  read -r decided lag < <(decided_and_lag)
  rate_now="?"
  if [[ "$decided" =~ ^[0-9]+$ && "$last_decided" =~ ^[0-9]+$ ]]; then
    rate_now=$(( (decided - last_decided) / interval ))
  fi
  last_decided=$decided
  row+=" | $(mib "$(rss_kib "$broker")") | $rate_now | $lag |"
  rows+=("$row")
  log "sample ${#rows[@]}: ${row//|/ }"
done

metrics=$(curl -fs --max-time 5 "http://127.0.0.1:$http_port/metrics" || true)
progress=$(python3 -c 'import json, sys; m = json.loads(sys.argv[1]); l = m["latency_seconds"]
print(m["orders"]["total"], m["processed_order_count"], m["lag_total"], round(l["p50"] * 1000), round(l["p99"] * 1000))' "$metrics" 2>/dev/null || echo "? ? ? ? ?")
read -r orders decided lag p50 p99 <<<"$progress"

echo
echo "Soak: $minutes min at $rate orders/s through scripts/run.sh (memory broker, topics trimmed to their last"
echo "$keep_seconds s), RSS sampled every $interval s, $(nproc) cores, $(date -u +%F)"
echo
echo "| seconds | producer (MiB) | inventory (MiB) | analytics (MiB) | broker (MiB, not judged) | decided orders/s | lag |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "| service | first third (MiB) | last third (MiB) | growth | verdict |"
echo "|---|---|---|---|---|"
for service in "${services[@]}"; do
  # shellcheck disable=SC2086
  read -r first last verdict < <(printf '%s\n' ${samples_of[$service]} | awk '
    { v[NR] = $1 }
    END {
      third = int(NR / 3); if (third < 1) third = 1
      for (i = 1; i <= third; i++) a += v[i]
      for (i = NR - third + 1; i <= NR; i++) b += v[i]
      a /= third; b /= third
      growing = (b - a > 1024 && b > a * 1.10)
      printf "%.1f %.1f %s\n", a / 1024, b / 1024, growing ? "growing" : "flat" }')
  echo "| $service | $first | $last | $(awk -v a="$first" -v b="$last" 'BEGIN { printf "%+.1f%%", (a > 0) ? 100 * (b - a) / a : 0 }') | $verdict |"
  result "soak_${service}_verdict" "$verdict"
done
echo
echo "At the end, from /metrics: $orders orders, $decided decided, lag $lag, latency p50 ${p50} ms, p99 ${p99} ms over the dashboard's window."
