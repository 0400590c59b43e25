#!/usr/bin/env bash
# Development broker for streaming-kafka: installs and runs Nisshi (formerly Tansu), a
# Kafka-compatible broker written in Rust, from crates.io.
#
#   scripts/broker.sh install                 build the broker once per machine into the cache
#   scripts/broker.sh start [--port P] [--durable DIR] [--sqlite-options QUERY] [--name NAME]
#                           [--advertise-port A]
#                                             start on 127.0.0.1, wait until it answers Metadata,
#                                             print BOOTSTRAP_SERVERS=127.0.0.1:P
#
# --sqlite-options QUERY is appended to the durable storage URL (sqlite://...?QUERY); Nisshi
# 0.8.1 accepts busy_timeout, mode (semaphore|direct|mpsc), compaction (multi|single) and
# vacuum_into, and rejects any other name. --advertise-port makes the broker name another port
# in its metadata (a proxy in front of it, scripts/request-counter.py).
#   scripts/broker.sh stop [--name NAME]      stop only the broker this script started
#   scripts/broker.sh status [--name NAME]    say whether it runs and where
#   scripts/broker.sh path                    print the broker binary's path (installs if needed)
#
# The binary is cached outside the clone (STREAMING_KAFKA_CACHE, default ~/.cache/streaming-kafka)
# because a build from scratch takes about 20 minutes on two cores.
set -euo pipefail

NISSHI_VERSION=0.8.1
NISSHI_TOOLCHAIN=1.96.0
TANSU_VERSION=0.6.0
CACHE_DIR="${STREAMING_KAFKA_CACHE:-$HOME/.cache/streaming-kafka}"
BIN_DIR="$CACHE_DIR/bin"
RUN_DIR="$CACHE_DIR/run"

# log, die and free_port; found beside this file, so the script runs from any directory.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

installed_binary() {
  if [[ -x "$BIN_DIR/nisshi" ]]; then echo "$BIN_DIR/nisshi"; return 0; fi
  if [[ -x "$BIN_DIR/tansu" ]]; then echo "$BIN_DIR/tansu"; return 0; fi
  return 1
}

install_broker() {
  if bin=$(installed_binary); then
    log "already installed: $bin"
    return 0
  fi
  mkdir -p "$CACHE_DIR"
  # A persistent target dir lets an interrupted build resume instead of starting over.
  export CARGO_TARGET_DIR="$CACHE_DIR/build"
  if ! command -v rustup >/dev/null 2>&1; then
    die "rustup is required to install the broker toolchain"
  fi
  if rustup run "$NISSHI_TOOLCHAIN" rustc --version >/dev/null 2>&1 \
     || rustup toolchain install "$NISSHI_TOOLCHAIN" --profile minimal; then
    log "building nisshi $NISSHI_VERSION with rustc $NISSHI_TOOLCHAIN (about 20 minutes on 2 cores, once per machine)"
    if cargo "+$NISSHI_TOOLCHAIN" install nisshi --version "$NISSHI_VERSION" --locked --root "$CACHE_DIR"; then
      rm -rf "$CARGO_TARGET_DIR"
      log "installed $BIN_DIR/nisshi"
      return 0
    fi
    log "nisshi $NISSHI_VERSION failed to build; falling back to tansu $TANSU_VERSION"
  else
    log "rustc $NISSHI_TOOLCHAIN cannot be installed; falling back to tansu $TANSU_VERSION on the default toolchain"
  fi
  cargo install tansu --version "$TANSU_VERSION" --features dynostore,libsql --locked --root "$CACHE_DIR"
  rm -rf "$CARGO_TARGET_DIR"
  log "installed $BIN_DIR/tansu (fallback: Tansu $TANSU_VERSION, not Nisshi $NISSHI_VERSION)"
}


# A Metadata v1 request (all topics), hand-framed: i32 length 23, api key 3, version 1,
# correlation id 1, client id "broker.sh", topics = null. A broker that answers with
# correlation id 1 is serving Kafka requests, not merely listening.
metadata_answers() {
  local port=$1 reply
  reply=$(timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port \
    && printf '\x00\x00\x00\x17\x00\x03\x00\x01\x00\x00\x00\x01\x00\x09broker.sh\xff\xff\xff\xff' >&3 \
    && head -c 8 <&3 | od -An -tx1" 2>/dev/null) || return 1
  [[ "$(echo $reply | cut -d' ' -f5-8)" == "00 00 00 01" ]]
}

# The pid file holds the pid; it is ours only if that process still runs our binary.
running_pid() {
  local pid_file="$RUN_DIR/$NAME.pid" pid
  [[ -f "$pid_file" ]] || return 1
  pid=$(cat "$pid_file")
  [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "--listener-url" || return 1
  echo "$pid"
}

start_broker() {
  local port="" durable="" sqlite_options="" advertise_port="" bin
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --port) port="${2:?--port needs a value}"; shift 2 ;;
      --durable) durable="${2:?--durable needs a directory}"; shift 2 ;;
      --sqlite-options) sqlite_options="${2:?--sqlite-options needs a query such as mode=direct}"; shift 2 ;;
      --advertise-port) advertise_port="${2:?--advertise-port needs a port}"; shift 2 ;;
      --name) shift 2 ;;
      *) die "start: unknown option $1" ;;
    esac
  done
  if pid=$(running_pid); then
    log "already running (pid $pid) on port $(cat "$RUN_DIR/$NAME.port")"
    echo "BOOTSTRAP_SERVERS=127.0.0.1:$(cat "$RUN_DIR/$NAME.port")"
    return 0
  fi
  bin=$(installed_binary) || die "no broker installed: run scripts/broker.sh install first"
  [[ -n "$port" ]] || port=$(free_port)
  local storage="memory://$NAME/"
  if [[ -n "$durable" ]]; then
    mkdir -p "$durable"
    # An absolute path after sqlite:// keeps its own leading slash: sqlite:////abs/path.
    storage="sqlite:///$(cd "$durable" && pwd)/broker.db${sqlite_options:+?$sqlite_options}"
  fi
  mkdir -p "$RUN_DIR"
  local extra=()
  [[ "$(basename "$bin")" == nisshi ]] && extra=(--group-initial-rebalance-delay 0s)
  # setsid: the broker outlives this script and is not hit by the caller's Ctrl+C.
  setsid "$bin" broker \
    --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:${advertise_port:-$port}" \
    --storage-engine "$storage" "${extra[@]}" \
    > "$RUN_DIR/$NAME.log" 2>&1 < /dev/null &
  local pid=$!
  echo "$pid" > "$RUN_DIR/$NAME.pid"
  echo "$port" > "$RUN_DIR/$NAME.port"
  for _ in $(seq 1 300); do
    if metadata_answers "$port"; then
      log "$(basename "$bin") running (pid $pid, storage $storage, log $RUN_DIR/$NAME.log)"
      echo "BOOTSTRAP_SERVERS=127.0.0.1:$port"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { cat "$RUN_DIR/$NAME.log" >&2; rm -f "$RUN_DIR/$NAME.pid"; die "the broker exited during start-up"; }
    sleep 0.1
  done
  stop_broker
  die "the broker did not answer a Metadata request on port $port within 30s"
}

stop_broker() {
  local pid
  if ! pid=$(running_pid); then
    rm -f "$RUN_DIR/$NAME.pid"
    log "not running"
    return 0
  fi
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "did not stop on SIGTERM within 10s; killing"
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$RUN_DIR/$NAME.pid"
  log "stopped (pid $pid)"
}

status_broker() {
  local pid
  if pid=$(running_pid); then
    echo "running pid=$pid BOOTSTRAP_SERVERS=127.0.0.1:$(cat "$RUN_DIR/$NAME.port")"
  else
    echo "not running"
    return 3
  fi
}

# --name lets several brokers (the pipeline's, a test's) run side by side.
NAME=dev
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  [[ "${args[$i]}" == "--name" ]] && NAME="${args[$((i + 1))]:-dev}"
done

command="${1:-}"
[[ $# -gt 0 ]] && shift
case "$command" in
  install) install_broker ;;
  start) start_broker "$@" ;;
  stop) stop_broker ;;
  status) status_broker ;;
  path) installed_binary || die "no broker installed: run scripts/broker.sh install" ;;
  *) die "usage: broker.sh install | start [--port P] [--durable DIR] [--sqlite-options Q] [--advertise-port A] [--name N] | stop [--name N] | status [--name N] | path" ;;
esac
