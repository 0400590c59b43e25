#!/usr/bin/env bash
# Analytics benchmark (issue 16), one memory broker: events/s analysed by analytics-consumer
# beside a Python confluent-kafka consumer doing the same windowed counting
# (scripts/analytics-peer.py); how much 50 dashboards, each polling /metrics once a second
# (scripts/dashboards.py), slow consumption; /metrics under wrk flat out (information) and
# whether that slowdown is our HTTP path's CPU or wrk taking the shared cores; analytics'
# peak RSS after backlogs of 1M and 4M events. Backlogs are written by scripts/seed-events.py
# from shared/schemas. Prints Markdown tables.
#
#   scripts/bench-analytics.sh [--runs N] [--rss-events LIST] [EVENTS_PER_TOPIC]
#   default: --runs 3 --rss-events 1000000,4000000 1000000
#
#   --runs N          rounds; each runs, on the same backlog and each with a fresh group:
#                       quiet       ours alone
#                       peer        analytics-peer.py
#                       dashboards  ours with 50 clients each GET /metrics once a second, from
#                                   before it starts until it has counted everything; then,
#                                   caught up and idle, wrk flat out for 5 s: our HTTP path's
#                                   CPU per request with nothing else to do
#                       wrk         ours with wrk -t2 -c50 flat out on /metrics, from when it
#                                   serves until it has counted everything
#                       pinned      quiet and wrk again, analytics and the broker on core 1 and
#                                   wrk on core 0 (taskset), so wrk cannot take their core
#                     odd rounds run quiet, dashboards, peer, wrk, pinned; even rounds the
#                     reverse, so drift on the shared machine falls on both sides and each
#                     slowdown compares neighbours. Ratios
#                     and slowdowns are per round; targets are judged on their medians.
#   --rss-events LIST comma-separated total events (half orders, half outcomes) for the RSS
#                     check, each on a fresh broker: analytics' peak RSS (VmHWM) consuming it
#                     and its resident memory by kind at the end; "none" skips it. Peaks are
#                     "the same" within 10% or 2 MiB, whichever is larger.
#
# Times run from the start of the process until /metrics shows every event counted (polled
# every 25 ms by scripts/analytics-wait.py; /metrics trails the counting by up to
# METRICS_REFRESH_MS, set to 20 ms here instead of 100 so that the drain of a few seconds is
# timed to within about 1%); CPU figures are /proc/PID/stat over that span. Bounded: every
# wait has a deadline; everything it starts is stopped on any exit.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

runs=3 rss_events=1000000,4000000
positional=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs=${2:?--runs needs a value}; shift 2 ;;
    --rss-events) rss_events=${2:?--rss-events needs a value}; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
    -*) die_usage "unknown option '$1' (see --help)" ;;
    *) positional+=("$1"); shift ;;
  esac
done
COUNT=${positional[0]:-1000000}
need_count EVENTS_PER_TOPIC "$COUNT" 1
need_count --runs "$runs" 1
RSS_SIZES=()
if [[ "$rss_events" != none ]]; then
  IFS=, read -r -a RSS_SIZES <<<"$rss_events"
  for size in "${RSS_SIZES[@]}"; do need_count --rss-events "$size" 2; done
fi
DASHBOARDS=50
# wrk on the first core, analytics and the broker on the second, for the pinned runs.
LOAD_CORE=0 SERVICE_CORE=1 ALL_CORES="0-$(( $(nproc) - 1 ))"
(( $(nproc) >= 2 )) || die "the pinned runs need two cores, this machine has $(nproc)"

if ! command -v wrk >/dev/null 2>&1; then
  [[ $(id -u) -eq 0 ]] || die "install Debian's wrk first"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
scripts/broker.sh install >/dev/null
PYTHON=$(peer_python)
release_binaries analytics_consumer
BIN="$TARGET/analytics-consumer"
HZ=$(getconf CLK_TCK)
WORK=$(mktemp -d)
stop_started_on_exit 'rm -rf "$WORK"'

# start_broker NAME EVENTS_PER_TOPIC: a fresh memory broker with that backlog; sets BROKER_PID
# and SEED_SECONDS.
start_broker() {
  local started
  broker_start "$1"
  BROKER_PID=$(broker_pid "$1")
  [[ -n "$BROKER_PID" ]] || die "no pid for the broker '$1'"
  started=$(now)
  "$PYTHON" scripts/seed-events.py "$BOOTSTRAP" "$2" --orders orders --outcomes outcomes
  SEED_SECONDS=$(elapsed_since "$started")
}

serving() { curl -fs "http://127.0.0.1:$1/healthz" >/dev/null 2>&1; }
ticks() { cpu_ticks "$1" || echo 0; }
cpu_seconds() { awk -v a="$1" -v b="$2" -v hz="$HZ" 'BEGIN { printf "%.2f", (b - a) / hz }'; }
# wrk_field FILE requests|rps|p99: total requests, requests/s, p99 latency in ms.
wrk_field() {
  case "$2" in
    requests) awk '/requests in/ { print $1 }' "$1" ;;
    rps) awk '/Requests\/sec/ { printf "%d", $2 }' "$1" ;;
    p99) awk '$1 == "99%" { v = $2 + 0; if ($2 ~ /us$/) v /= 1000; else if ($2 ~ /[0-9]s$/) v *= 1000
                            else if ($2 ~ /m$/) v *= 60000; printf "%.2f", v }' "$1" ;;
  esac
}

# ours MODE PIN EVENTS: runs analytics-consumer on a fresh group until /metrics shows EVENTS
# counted. MODE: quiet, dashboards (DASHBOARDS clients polling meanwhile, then the idle wrk
# measurement) or wrk (flat out from /healthz answering until everything is counted). PIN: free, or pinned (analytics and the broker on SERVICE_CORE, wrk on LOAD_CORE).
# Sets OURS_SECONDS, OURS_RSS_KIB, OURS_SMAPS ("heap stacks binary other" KiB at the end),
# and over the span: OURS_CPU, BROKER_CPU, LOAD_CPU (seconds); LOAD_LINE (dashboards.py's
# line, or wrk's output file); with dashboards IDLE_* (see idle_http). Runs in this shell, so
# stop_started can reach what it starts.
ours() {
  local mode=$1 pin=$2 events=$3 port url started pid load_pid="" broker_before load_before=0
  local service=() loader=()
  port=$(free_port)
  url="http://127.0.0.1:$port/metrics"
  if [[ "$pin" == pinned ]]; then
    service=(taskset -c "$SERVICE_CORE") loader=(taskset -c "$LOAD_CORE")
    taskset -a -p -c "$SERVICE_CORE" "$BROKER_PID" >/dev/null
  else
    taskset -a -p -c "$ALL_CORES" "$BROKER_PID" >/dev/null
  fi
  if [[ "$mode" == dashboards ]]; then
    "$PYTHON" scripts/dashboards.py "$url" --clients "$DASHBOARDS" > "$WORK/dashboards" &
    load_pid=$!
    track_pid "$load_pid"
  fi
  broker_before=$(ticks "$BROKER_PID")
  started=$(now)
  env BOOTSTRAP_SERVERS="$BOOTSTRAP" ORDER_TOPIC=orders INVENTORY_TOPIC=outcomes GROUP_ID="bench-$port" \
    GROUP_INSTANCE_ID="" HTTP_HOST=127.0.0.1 HTTP_PORT="$port" REPORT_INTERVAL_SEC=1 METRICS_REFRESH_MS=20 RUST_LOG=warn \
    "${service[@]}" "$BIN" >>"$WORK/analytics.log" 2>&1 &
  pid=$!
  track_pid "$pid"
  if [[ "$mode" == wrk ]]; then
    WAIT_INTERVAL=0.02 wait_until 60 "analytics to serve /healthz" serving "$port"
    # Long enough to outlast any drain; stopped with SIGINT (wrk then prints its figures) once
    # everything is counted, so the load spans exactly the measured time.
    "${loader[@]}" wrk -t2 -c50 -d300s --latency "$url" > "$WORK/wrk" 2>&1 &
    load_pid=$!
    track_pid "$load_pid"
    load_before=$(ticks "$load_pid")
  fi
  "$PYTHON" scripts/analytics-wait.py "$url" "$events" 600 || die "analytics did not count $events events (its log: $(tail -n 3 "$WORK/analytics.log"))"
  OURS_SECONDS=$(elapsed_since "$started")
  OURS_CPU=$(cpu_seconds 0 "$(ticks "$pid")")
  BROKER_CPU=$(cpu_seconds "$broker_before" "$(ticks "$BROKER_PID")")
  LOAD_CPU=$([[ -n "$load_pid" ]] && cpu_seconds "$load_before" "$(ticks "$load_pid")" || echo 0)
  OURS_RSS_KIB=$(peak_rss_kib "$pid")
  OURS_SMAPS=$(smaps_kinds "$pid")
  case "$mode" in
    dashboards)
      stop_pid "$load_pid"
      LOAD_LINE=$(cat "$WORK/dashboards")
      idle_http "$pid" "$url" ;;
    wrk) kill -INT "$load_pid"; wait "$load_pid" || true; LOAD_LINE="$WORK/wrk" ;;
    *) LOAD_LINE="" ;;
  esac
  stop_pid "$pid"
}

# idle_http PID URL: analytics caught up, nothing flowing: wrk -t2 -c50 flat out for 5 s on
# /metrics. Sets IDLE_RPS, IDLE_P99, IDLE_US (analytics CPU microseconds per request),
# IDLE_CORES (analytics' share of cores) and IDLE_WRK_CORES (wrk's, from bash's time).
idle_http() {
  local pid=$1 url=$2 before after requests wrk_cpu TIMEFORMAT='%U %S'
  sleep 1
  before=$(ticks "$pid")
  { time wrk -t2 -c50 -d5s --latency "$url" > "$WORK/wrk-idle" 2>&1; } 2> "$WORK/wrk-idle-time"
  after=$(ticks "$pid")
  requests=$(wrk_field "$WORK/wrk-idle" requests)
  IDLE_RPS=$(wrk_field "$WORK/wrk-idle" rps) IDLE_P99=$(wrk_field "$WORK/wrk-idle" p99)
  IDLE_US=$(awk -v a="$before" -v b="$after" -v hz="$HZ" -v n="$requests" 'BEGIN { printf "%.1f", 1e6 * (b - a) / hz / n }')
  IDLE_CORES=$(awk -v a="$before" -v b="$after" -v hz="$HZ" 'BEGIN { printf "%.2f", (b - a) / hz / 5 }')
  wrk_cpu=$(awk '{ print $1 + $2 }' "$WORK/wrk-idle-time")
  IDLE_WRK_CORES=$(awk -v c="$wrk_cpu" 'BEGIN { printf "%.2f", c / 5 }')
}

rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%d", n / s }'; }
ratio() { awk -v p="$1" -v o="$2" 'BEGIN { printf "%.2f", p / o }'; }
slowdown() { awk -v q="$1" -v l="$2" 'BEGIN { printf "%.1f", 100 * (1 - q / l) }'; }
cores() { awk -v c="$1" -v s="$2" 'BEGIN { printf "%.2f", c / s }'; }

# --- the rounds ---------------------------------------------------------------------------

EVENTS=$(( COUNT * 2 ))
start_broker "bench-analytics-$$" "$COUNT"
main_seed=$SEED_SECONDS
loads=()
# Per "KIND,ROUND"; read through median_of's nameref, which shellcheck cannot follow (SC2034).
declare -A seconds cpu broker_cpu load_cpu
quiet_rss=() peer_rss_all=() dash_lines=() idle=() wrk_rps=() wrk_p99=() pinned_rps=() pinned_p99=()

# shellcheck disable=SC2034
run_quiet() { ours quiet free "$EVENTS"; seconds[quiet,$1]=$OURS_SECONDS; cpu[quiet,$1]=$OURS_CPU; broker_cpu[quiet,$1]=$BROKER_CPU; quiet_rss+=("$OURS_RSS_KIB"); }
run_peer() {
  local peer_s peer_rss
  read -r peer_s peer_rss < <("$PYTHON" scripts/analytics-peer.py "$BOOTSTRAP" orders outcomes "$COUNT")
  seconds[peer,$1]=$peer_s; peer_rss_all+=("$peer_rss")
}
# shellcheck disable=SC2034
run_dashboards() {
  ours dashboards free "$EVENTS"
  seconds[dashboards,$1]=$OURS_SECONDS; cpu[dashboards,$1]=$OURS_CPU; broker_cpu[dashboards,$1]=$BROKER_CPU
  load_cpu[dashboards,$1]=$LOAD_CPU
  dash_lines+=("$LOAD_LINE"); idle+=("$IDLE_RPS $IDLE_P99 $IDLE_US $IDLE_CORES $IDLE_WRK_CORES")
}
# shellcheck disable=SC2034
run_wrk() {
  local pin=$1 key=$2 round=$3
  ours wrk "$pin" "$EVENTS"
  seconds[$key,$round]=$OURS_SECONDS; cpu[$key,$round]=$OURS_CPU; broker_cpu[$key,$round]=$BROKER_CPU
  load_cpu[$key,$round]=$LOAD_CPU
  if [[ "$pin" == free ]]; then
    wrk_rps+=("$(wrk_field "$LOAD_LINE" rps)"); wrk_p99+=("$(wrk_field "$LOAD_LINE" p99)")
  else
    pinned_rps+=("$(wrk_field "$LOAD_LINE" rps)"); pinned_p99+=("$(wrk_field "$LOAD_LINE" p99)")
  fi
}
# shellcheck disable=SC2034
run_pinned_quiet() {
  ours quiet pinned "$EVENTS"
  seconds[pinned_quiet,$1]=$OURS_SECONDS; cpu[pinned_quiet,$1]=$OURS_CPU; broker_cpu[pinned_quiet,$1]=$BROKER_CPU
}

for (( round = 1; round <= runs; round++ )); do
  log "round $round of $runs (load average $(cut -d' ' -f1 /proc/loadavg))"
  loads+=("$(cut -d' ' -f1 /proc/loadavg)")
  # Quiet and dashboards back to back (the peer's exit or a pinned run just before the polled
  # one made its slowdown swing from -40% to +43% between rounds).
  if (( round % 2 )); then
    run_quiet "$round"; run_dashboards "$round"; run_peer "$round"
    run_wrk free wrk "$round"; run_pinned_quiet "$round"; run_wrk pinned pinned_wrk "$round"
  else
    run_wrk pinned pinned_wrk "$round"; run_pinned_quiet "$round"; run_wrk free wrk "$round"
    run_peer "$round"; run_dashboards "$round"; run_quiet "$round"
  fi
done
loads+=("$(cut -d' ' -f1 /proc/loadavg)")
broker_stop "bench-analytics-$$"

# median_of ARRAY KEY: the median over the rounds of an array indexed "KEY,ROUND".
median_of() {
  local -n values=$1
  local round picked=()
  for (( round = 1; round <= runs; round++ )); do picked+=("${values[$2,$round]:-}"); done
  median "${picked[@]}"
}
ours_rates=() peer_rates=() ratios=() dash_rates=() dash_slow=() wrk_rates=() wrk_slow=() pq_rates=() pw_rates=() pw_slow=()
for (( round = 1; round <= runs; round++ )); do
  ours_rates+=("$(rate "$EVENTS" "${seconds[quiet,$round]}")")
  peer_rates+=("$(rate "$EVENTS" "${seconds[peer,$round]}")")
  ratios+=("$(ratio "${seconds[peer,$round]}" "${seconds[quiet,$round]}")")
  dash_rates+=("$(rate "$EVENTS" "${seconds[dashboards,$round]}")")
  dash_slow+=("$(slowdown "${seconds[quiet,$round]}" "${seconds[dashboards,$round]}")")
  wrk_rates+=("$(rate "$EVENTS" "${seconds[wrk,$round]}")")
  wrk_slow+=("$(slowdown "${seconds[quiet,$round]}" "${seconds[wrk,$round]}")")
  pq_rates+=("$(rate "$EVENTS" "${seconds[pinned_quiet,$round]}")")
  pw_rates+=("$(rate "$EVENTS" "${seconds[pinned_wrk,$round]}")")
  pw_slow+=("$(slowdown "${seconds[pinned_quiet,$round]}" "${seconds[pinned_wrk,$round]}")")
done
ratio_median=$(median "${ratios[@]}")
dash_slow_median=$(median "${dash_slow[@]}")

# --- RSS after backlogs of different sizes --------------------------------------------------

rss_rows=() rss_peaks=()
for size in "${RSS_SIZES[@]}"; do
  start_broker "bench-analytics-rss-$$-$size" $(( size / 2 ))
  ours quiet free $(( size / 2 * 2 ))
  read -r heap stacks binary other <<<"$OURS_SMAPS"
  rss_peaks+=("$OURS_RSS_KIB")
  rss_rows+=("| $size | $(( size / 2 )) + $(( size / 2 )) | $SEED_SECONDS | $(rate $(( size / 2 * 2 )) "$SEED_SECONDS") | $(rate $(( size / 2 * 2 )) "$OURS_SECONDS") | $(mib "$OURS_RSS_KIB") | $(mib "$heap") | $(mib "$stacks") | $(mib "$binary") | $(mib "$other") | $(verdict "$(mib "$OURS_RSS_KIB")" "<=" "$RSS_TARGET_FULL_SPEED_MIB") |")
  broker_stop "bench-analytics-rss-$$-$size"
done
# Peaks are the same when the largest and smallest differ by at most 10% or 2 MiB.
rss_same="?"
if (( ${#rss_peaks[@]} >= 2 )); then
  rss_same=$(printf '%s\n' "${rss_peaks[@]}" | sort -n | awk '{ v[NR] = $1 } END {
    spread = v[NR] - v[1]; allowed = (0.1 * v[1] > 2048) ? 0.1 * v[1] : 2048
    printf "%s (spread %.1f MiB, allowed %.1f)", (spread <= allowed) ? "yes" : "no", spread / 1024, allowed / 1024 }')
fi

# --- tables ---------------------------------------------------------------------------------

ours_median=$(median "${ours_rates[@]}") peer_median=$(median "${peer_rates[@]}")
result analytics_ours "$ours_median"; result analytics_peer "$peer_median"
result analytics_ratio "$ratio_median"; result analytics_dashboards_slowdown_pct "$dash_slow_median"
result analytics_ours_rss_mib "$(mib "$(maximum "${quiet_rss[@]}")")"
result analytics_peer_rss_mib "$(mib "$(maximum "${peer_rss_all[@]}")")"

echo
echo "Analytics: $COUNT orders + $COUNT outcomes, 6 partitions each, $runs rounds, $(nproc) cores, $(date -u +%F), load average at each round's start ${loads[*]} (the last at the end); seeded in ${main_seed} s"
echo
echo "| round | analytics-consumer events/s | Python + confluent-kafka events/s | ratio | peak RSS ours / peer (MiB) |"
echo "|---|---|---|---|---|"
for (( i = 0; i < runs; i++ )); do
  echo "| $(( i + 1 )) | ${ours_rates[$i]} | ${peer_rates[$i]} | ${ratios[$i]}x | $(mib "${quiet_rss[$i]}") / $(mib "${peer_rss_all[$i]}") |"
done
echo "| **median** | **$ours_median** | **$peer_median** | **${ratio_median}x** | |"
echo
echo "$DASHBOARDS dashboards, each GET /metrics once a second, from before analytics starts until it has counted everything (slowdown against the same round's quiet run):"
echo
echo "| round | events/s quiet | events/s polled | slowed by | requests/s made | p50 / p99 latency (ms) | failed polls |"
echo "|---|---|---|---|---|---|---|"
dash_rps=() dash_p99=()
for (( i = 0; i < runs; i++ )); do
  read -r _ made p50 p99 failed <<<"${dash_lines[$i]}"
  dash_rps+=("$made"); dash_p99+=("$p99")
  echo "| $(( i + 1 )) | ${ours_rates[$i]} | ${dash_rates[$i]} | ${dash_slow[$i]}% | $made | $p50 / $p99 | $failed |"
done
echo "| **median** | $ours_median | $(median "${dash_rates[@]}") | **${dash_slow_median}%** | $(median "${dash_rps[@]}") | p99 $(median "${dash_p99[@]}") | |"
echo
echo "Information: wrk -t2 -c50 flat out on /metrics while consuming; unpinned, and pinned (analytics and broker on core $SERVICE_CORE, wrk on core $LOAD_CORE; slowdown against the pinned quiet run of the same round):"
echo
echo "| round | events/s quiet | under wrk | slowed by | wrk requests/s, p99 ms | pinned: events/s quiet | under wrk | slowed by | wrk requests/s, p99 ms |"
echo "|---|---|---|---|---|---|---|---|---|"
for (( i = 0; i < runs; i++ )); do
  echo "| $(( i + 1 )) | ${ours_rates[$i]} | ${wrk_rates[$i]} | ${wrk_slow[$i]}% | ${wrk_rps[$i]}, ${wrk_p99[$i]} | ${pq_rates[$i]} | ${pw_rates[$i]} | ${pw_slow[$i]}% | ${pinned_rps[$i]}, ${pinned_p99[$i]} |"
done
echo "| **median** | $ours_median | $(median "${wrk_rates[@]}") | **$(median "${wrk_slow[@]}")%** | $(median "${wrk_rps[@]}") | $(median "${pq_rates[@]}") | $(median "${pw_rates[@]}") | **$(median "${pw_slow[@]}")%** | $(median "${pinned_rps[@]}") |"
echo
echo "Where the time goes: CPU seconds over each run's span (start to everything counted), medians of the rounds:"
echo
echo "| run | seconds | analytics CPU s | broker CPU s | load generator CPU s | cores busy (ours + broker + load) |"
echo "|---|---|---|---|---|---|"
for key in quiet dashboards wrk pinned_quiet pinned_wrk; do
  s=$(median_of seconds "$key") a=$(median_of cpu "$key") b=$(median_of broker_cpu "$key") l=0
  [[ "$key" == *quiet ]] || l=$(median_of load_cpu "$key")
  echo "| $key | $s | $a | $b | $l | $(awk -v a="$a" -v b="$b" -v l="$l" -v s="$s" 'BEGIN { printf "%.2f", (a + b + l) / s }') |"
done
idle_rps=() idle_p99=() idle_us=() idle_cores=() idle_wrk=()
for line in "${idle[@]}"; do
  read -r r p u c w <<<"$line"; idle_rps+=("$r"); idle_p99+=("$p"); idle_us+=("$u"); idle_cores+=("$c"); idle_wrk+=("$w")
done
us=$(median "${idle_us[@]}") loaded_rps=$(median "${wrk_rps[@]}")
echo
echo "Our HTTP path alone: analytics caught up and idle, wrk -t2 -c50 flat out for 5 s (medians of $runs):"
echo
echo "| requests/s | p99 ms | analytics CPU per request (µs) | analytics cores | wrk cores |"
echo "|---|---|---|---|---|"
echo "| $(median "${idle_rps[@]}") | $(median "${idle_p99[@]}") | $us | $(median "${idle_cores[@]}") | $(median "${idle_wrk[@]}") |"
echo
echo "Cost per request × rate: $us µs × $loaded_rps requests/s (wrk, unpinned, while consuming) = $(awk -v u="$us" -v r="$loaded_rps" 'BEGIN { printf "%.2f", u * r / 1e6 }') cores of analytics' HTTP path; wrk itself used $(cores "$(median_of load_cpu wrk)" "$(median_of seconds wrk)") cores; $DASHBOARDS dashboards: $us µs × $(median "${dash_rps[@]}") requests/s = $(awk -v u="$us" -v r="$(median "${dash_rps[@]}")" 'BEGIN { printf "%.4f", u * r / 1e6 }') cores."
echo
if (( ${#RSS_SIZES[@]} )); then
  echo "Analytics' RSS after a backlog, each on a fresh broker (resident memory by kind from smaps when it has counted everything):"
  echo
  echo "| events | orders + outcomes | seed seconds | seeded events/s | consumed events/s | peak RSS (MiB) | heap + anonymous | thread stacks | binary | other | <= $RSS_TARGET_FULL_SPEED_MIB MiB |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rss_rows[@]}"
  echo
  echo "Peak RSS the same across sizes (within 10% or 2 MiB): $rss_same"
  echo
fi
echo "| target | ours | target | met |"
echo "|---|---|---|---|"
target_row "analytics-consumer peak RSS at full speed, largest of the quiet runs (MiB)" "$(mib "$(maximum "${quiet_rss[@]}")")" "<=" "$RSS_TARGET_FULL_SPEED_MIB"
for (( i = 0; i < ${#RSS_SIZES[@]}; i++ )); do
  target_row "peak RSS after ${RSS_SIZES[$i]} events (MiB)" "$(mib "${rss_peaks[$i]}")" "<=" "$RSS_TARGET_FULL_SPEED_MIB"
done
target_row "events/s vs the Python peer, median of $runs rounds (x)" "$ratio_median" ">=" 5
echo "| consumption slowed by $DASHBOARDS dashboards, median of $runs rounds (%) | $dash_slow_median | < 10 | $(awk -v s="$dash_slow_median" 'BEGIN { print (s < 10) ? "yes" : "no" }') |"
