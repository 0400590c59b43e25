#!/usr/bin/env bash
# Makes the virtualenv of real peer clients the interop tests use: confluent-kafka (bundles
# librdkafka) and kafka-python, pinned, from PyPI. Idempotent: an up-to-date venv is kept.
#
#   scripts/peers.sh            create or update; prints the venv's python
#
# The venv lives outside the clone (STREAMING_KAFKA_CACHE, default ~/.cache/streaming-kafka).
set -euo pipefail

CACHE_DIR="${STREAMING_KAFKA_CACHE:-$HOME/.cache/streaming-kafka}"
VENV="$CACHE_DIR/venv"
REQUIREMENTS="confluent-kafka==2.16.1 kafka-python==3.0.12"
STAMP="$VENV/.streaming-kafka-requirements"

log() { printf 'peers.sh: %s\n' "$*" >&2; }

if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$REQUIREMENTS" ]] \
   && "$VENV/bin/python" -c 'import confluent_kafka, kafka' 2>/dev/null; then
  log "up to date: $VENV ($REQUIREMENTS)"
  echo "$VENV/bin/python"
  exit 0
fi

PYTHON="${PYTHON:-$(command -v python3 || true)}"
[[ -n "$PYTHON" ]] || { log "error: python3 is required"; exit 1; }
if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
  log "python3 lacks venv/ensurepip; installing Debian's python3-venv"
  if command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    PYTHON=/usr/bin/python3
  else
    log "error: cannot install python3-venv on this system"; exit 1
  fi
fi

mkdir -p "$CACHE_DIR"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
# shellcheck disable=SC2086
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $REQUIREMENTS
echo "$REQUIREMENTS" > "$STAMP"
"$VENV/bin/python" -c 'import confluent_kafka, kafka; print("confluent-kafka", confluent_kafka.version(), "librdkafka", confluent_kafka.libversion()[0], "kafka-python", kafka.__version__)' >&2
echo "$VENV/bin/python"
