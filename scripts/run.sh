#!/usr/bin/env bash
# The whole pipeline on this machine, no Docker: the broker, the topics, and the three services
# with their env files, pointed at that broker. Prints the dashboard URL and follows every log;
# Ctrl+C stops everything this script started.
#
# Storage is durable (SQLite under ./data) by default: topics, offsets and stock are kept across
# runs, and the broker's cost per fetch stays flat as the log grows. --memory keeps everything in
# memory: lighter at first, but Nisshi's memory engine lists every stored batch of a partition
# on each fetch that finds data, so after a few minutes at 1000 orders/s it falls behind (see
# the README).
#
#   scripts/run.sh [options] [VAR=VALUE ...]
#
#   --rate N           orders per second (steady mode; default 1000)
#   --total N          orders in total, 0 = until stopped (default 0)
#   --mode M           burst | steady | ramp | spike (default steady)
#   --fail-rate F      inventory's simulated failure probability per attempt, 0-1 (default 0)
#   --throttle-ms N    inventory's delay per order (default 0)
#   --partitions N     partitions of the topics when first created (default 6)
#   --broker-port P    the broker's port on 127.0.0.1 (default 9092)
#   --http-port P      the dashboard's port (default 8080)
#   --durable [DIR]    durable (SQLite) storage in DIR (default ./data), kept between runs (the default)
#   --memory           memory storage: every run starts empty; fine for runs of a minute or two
#   --fresh            with durable storage: delete the data folder first (everything starts over)
#   --data DIR         the folder for the logs (and for --durable's storage; default ./data)
#   --debug            use debug binaries (faster to build, slower to run)
#   --no-build         use the binaries already built (tests run it this way)
#   --no-follow        do not follow the logs; wait quietly until stopped (for tests)
#   VAR=VALUE          any other service setting, e.g. SKEW=1.2 MAX_RETRIES=5
#
# Settings come from each service's env file (services/*/*.env), then the environment, then the
# options above; the bootstrap address is always the local broker's.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

rate=1000 total=0 mode=steady fail_rate=0 throttle_ms=0 partitions=6
broker_port=9092 http_port=8080 data_dir=data durable=1 fresh=0 profile=release follow=1 build=1
extra_settings=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rate) rate="${2:?--rate needs a value}"; shift 2 ;;
    --total) total="${2:?--total needs a value}"; need_count --total "$total"; shift 2 ;;
    --mode) mode="${2:?--mode needs a value}"; shift 2 ;;
    --fail-rate) fail_rate="${2:?--fail-rate needs a value}"; shift 2 ;;
    --throttle-ms) throttle_ms="${2:?--throttle-ms needs a value}"; need_count --throttle-ms "$throttle_ms"; shift 2 ;;
    --partitions) partitions="${2:?--partitions needs a value}"; need_count --partitions "$partitions" 1; shift 2 ;;
    --broker-port) broker_port="${2:?--broker-port needs a value}"; need_count --broker-port "$broker_port"; shift 2 ;;
    --http-port) http_port="${2:?--http-port needs a value}"; need_count --http-port "$http_port"; shift 2 ;;
    --data) data_dir="${2:?--data needs a directory}"; shift 2 ;;
    # The folder is optional: a following word that is neither an option nor VAR=VALUE names it.
    --durable)
      durable=1
      if [[ $# -gt 1 && "$2" != -* && ! "$2" =~ ^[A-Z][A-Z0-9_]*= ]]; then data_dir=$2; shift; fi
      shift ;;
    --memory) durable=0; shift ;;
    --fresh) fresh=1; shift ;;
    --debug) profile=debug; shift ;;
    --no-build) build=0; shift ;;
    --no-follow) follow=0; shift ;;
    -h|--help) usage ;;
    [A-Z]*=*) extra_settings+=("$1"); shift ;;
    *) log "error: unknown option '$1'"; usage ;;
  esac
done
# The services validate every value themselves (and name the variable when one is wrong);
# mode is checked here too because the default rate only makes sense for some modes.
case "$mode" in burst|steady|ramp|spike) ;; *) die_usage "--mode must be burst, steady, ramp or spike, got '$mode'" ;; esac

broker_name="pipeline-$broker_port"
if [[ "$fresh" == 1 && "$durable" == 0 ]]; then
  log "--fresh has no effect with memory storage: every run starts empty (it matters with durable storage)"
elif [[ "$fresh" == 1 && -d "$data_dir" ]]; then
  scripts/broker.sh status --name "$broker_name" >/dev/null 2>&1 \
    && die_usage "a pipeline broker on port $broker_port is running; stop it before --fresh"
  log "deleting $data_dir (--fresh)"
  rm -rf "$data_dir"
fi
mkdir -p "$data_dir/logs"
data_dir=$(cd "$data_dir" && pwd)
if [[ "$durable" == 1 ]]; then
  storage_note="durable (SQLite in $data_dir/broker): topics, offsets and stock are kept between runs; --fresh starts over"
else
  storage_note="memory: topics, offsets and stock start empty and are gone when it stops; the broker slows as the log grows (the default, durable storage, does not)"
fi
log "storage: $storage_note"

scripts/broker.sh install

cargo_flags=(--locked -p producer_order -p inventory_consumer -p analytics_consumer)
[[ "$profile" == release ]] && cargo_flags+=(--release)
bin_dir="${CARGO_TARGET_DIR:-target}/$profile"
if [[ "$build" == 1 ]]; then
  log "building the services ($profile)"
  cargo build "${cargo_flags[@]}"
fi
for binary in producer-order inventory-consumer analytics-consumer; do
  [[ -x "$bin_dir/$binary" ]] || die_usage "$bin_dir/$binary is missing (run without --no-build)"
done

# Everything started below is stopped on exit, whatever the reason (Ctrl+C, an error, a
# service that failed to start). The broker is ours only if this run started it.
service_pids=()
started_broker=0
follower_pid=""
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  [[ ${#service_pids[@]} -gt 0 ]] && log "stopping the services"
  for pid in "${service_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${service_pids[@]}"; do
    # A service flushes and commits on SIGTERM; give it 15 s before insisting.
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  [[ -n "$follower_pid" ]] && { kill "$follower_pid" 2>/dev/null || true; wait "$follower_pid" 2>/dev/null || true; }
  if [[ "$started_broker" == 1 ]]; then
    scripts/broker.sh stop --name "$broker_name" || true
  fi
  if [[ "$durable" == 1 ]]; then
    log "stopped; data kept in $data_dir (scripts/run.sh --fresh starts over)"
  else
    log "stopped; memory storage: topics, offsets and stock are gone (logs in $data_dir/logs)"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if scripts/broker.sh status --name "$broker_name" >/dev/null 2>&1; then
  log "a pipeline broker already runs on port $broker_port; using it (it is left running)"
else
  storage_options=()
  [[ "$durable" == 1 ]] && storage_options=(--durable "$data_dir/broker")
  scripts/broker.sh start --name "$broker_name" --port "$broker_port" "${storage_options[@]}" >/dev/null
  started_broker=1
fi
bootstrap="127.0.0.1:$broker_port"

# start_service NAME BINARY ENV_FILE VAR=VALUE...: the env file, then this shell's environment,
# then run.sh's own settings. Topics are created by the producer (order-events) and the
# inventory consumer (the rest, with the order topic's partition count); analytics waits for them.
start_service() {
  local name=$1 binary=$2 env_file=$3
  shift 3
  # setsid: a terminal's Ctrl+C reaches only this script, which then sends each service one
  # SIGTERM (a second signal would make a service exit at once, without its final commit).
  setsid env ENV_FILE="$env_file" BOOTSTRAP_SERVERS="$bootstrap" "$@" "${extra_settings[@]}" \
    "$bin_dir/$binary" > "$data_dir/logs/$name.log" 2>&1 < /dev/null &
  service_pids+=($!)
  log "started $name (pid $!, log $data_dir/logs/$name.log)"
}

# The playground restocks (5 s, 150 units: about what 100 items see at 1000 orders/s), so the
# picture stays readable instead of turning into rejections once stock runs out; the env file
# keeps it off for the exact-replay tests. The dashboard serves on loopback only: POST
# /control changes the pipeline. Both can be overridden from the shell or as VAR=VALUE.
start_service inventory inventory-consumer services/inventory_consumer/inventory.env \
  CREATE_TOPICS=1 FAIL_RATE="$fail_rate" THROTTLE_MS="$throttle_ms" \
  RESTOCK_INTERVAL_SEC="${RESTOCK_INTERVAL_SEC:-5}" RESTOCK_AMOUNT="${RESTOCK_AMOUNT:-150}"
start_service analytics analytics-consumer services/analytics_consumer/analytics.env \
  HTTP_PORT="$http_port" HTTP_HOST="${HTTP_HOST:-127.0.0.1}"
start_service producer producer-order services/producer_order/producer.env \
  CREATE_TOPICS=1 TOPIC_PARTITIONS="$partitions" MODE="$mode" RATE_PER_SEC="$rate" \
  TOTAL_EVENTS="$total" BURST_SIZE="$(( total > 0 && total < 10000 ? total : 10000 ))"

# The dashboard is ready when /readyz answers 200: the analytics member has its partitions.
http_status() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$http_port \
    && printf 'GET $1 HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3 && head -n 1 <&3" 2>/dev/null \
    | awk '{ print $2 }'
}
dashboard="http://127.0.0.1:$http_port/"
log "waiting for the analytics consumer to be ready"
until [[ "$(http_status /readyz)" == 200 ]]; do
  for pid in "${service_pids[@]:0:2}"; do
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$data_dir"/logs/*.log >&2; die_usage "a service exited during start-up (logs above)"; }
  done
  sleep 0.2
done
printf '\n  dashboard: %s\n  metrics:   %smetrics\n  broker:    %s\n  storage:   %s\n  logs:      %s/logs\n  stop:      Ctrl+C\n\n' \
  "$dashboard" "$dashboard" "$bootstrap" "$storage_note" "$data_dir" >&2
echo "DASHBOARD=$dashboard"

if [[ "$follow" == 1 ]]; then
  # One stream, each line tagged with its service (tail names the file when it switches).
  # awk ends by itself when tail (the pid kept for clean-up) is stopped.
  tail -n +1 -F "$data_dir/logs/producer.log" "$data_dir/logs/inventory.log" "$data_dir/logs/analytics.log" 2>/dev/null \
    > >(awk '/^==> .* <==$/ { name = $2; sub(/.*\//, "", name); sub(/\.log$/, "", name); next }
             NF { printf "%-9s | %s\n", name, $0; fflush() }') &
  follower_pid=$!
fi

# The producer exits after a finite total; the consumers run until Ctrl+C. If a consumer
# dies, say so and stop the rest rather than pretend the pipeline still runs.
while true; do
  for index in 0 1; do
    pid=${service_pids[$index]}
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" && code=0 || code=$?
      die "$( [[ $index == 0 ]] && echo inventory || echo analytics ) consumer exited (status $code); see $data_dir/logs"
    fi
  done
  sleep 1 & wait $! || true
done
