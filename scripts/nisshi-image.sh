#!/usr/bin/env bash
# The offline broker image: Nisshi (our development broker) on `scratch`, for compose/offline.yml.
#
#   scripts/nisshi-image.sh          stage dist/nisshi-context/ and build streaming-kafka/nisshi:<version>
#   scripts/nisshi-image.sh --stage  stage only (what `docker compose ... up --build` then builds)
#
# Our machines have a Docker Engine but no image registry, so apache/kafka cannot be pulled;
# this image stands in for it (and for kafka-init). The binary is the one scripts/broker.sh
# installs (cached; about 20 minutes to build the first time). It is linked against glibc, so
# the context carries the shared libraries and the dynamic loader `ldd` names, at their paths,
# and a static busybox (Debian's busybox-static, extracted from the .deb rather than installed,
# cached under $CACHE/debs) for kafka-init's shell script.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

CACHE_DIR="${STREAMING_KAFKA_CACHE:-$HOME/.cache/streaming-kafka}"
CONTEXT=dist/nisshi-context
REPOSITORY=${IMAGE_REPOSITORY:-streaming-kafka}
APP_UID=10001
# The applets kafka-init's script and a debugging `docker exec` use.
APPLETS=(sh echo cat grep sleep true false printf ls env)

stage_only=0
case "${1:-}" in
  "") ;;
  --stage) stage_only=1 ;;
  -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
  *) die "usage: nisshi-image.sh [--stage]" ;;
esac

# Debian's busybox-static, unpacked into the cache (installing it would replace a host busybox).
static_busybox() {
  local dir="$CACHE_DIR/debs/busybox-static"
  if [[ ! -x "$dir/bin/busybox" ]]; then
    mkdir -p "$CACHE_DIR/debs"
    (
      cd "$CACHE_DIR/debs"
      rm -f busybox-static_*.deb
      if ! apt-get download busybox-static >/dev/null 2>&1; then
        log "apt-get download busybox-static failed; refreshing the package lists"
        apt-get update -qq || die "apt-get update failed"
        apt-get download busybox-static >/dev/null || die "apt-get download busybox-static failed"
      fi
      rm -rf busybox-static && dpkg-deb -x busybox-static_*.deb busybox-static
    )
  fi
  file -b "$dir/bin/busybox" | grep -q 'statically linked' || die "$dir/bin/busybox is not static"
  echo "$dir/bin/busybox"
}

stage() {
  local nisshi busybox
  nisshi=$(scripts/broker.sh path 2>/dev/null) \
    || die "no broker installed: run scripts/broker.sh install (about 20 minutes, once per machine)"
  [[ "$(basename "$nisshi")" == nisshi ]] || die "the installed broker is $nisshi, not nisshi"
  busybox=$(static_busybox)

  rm -rf "$CONTEXT"
  local root="$CONTEXT/rootfs"
  mkdir -p "$root/usr/local/bin" "$root/bin" "$root/etc" "$root/tmp" "$root/data"
  # COPY hands every file to root, so the unprivileged broker gets writable dirs by mode.
  chmod 1777 "$root/tmp" "$root/data"
  cp -f "$nisshi" "$root/usr/local/bin/nisshi"

  # Every library ldd resolves ("name => /path (addr)") plus the loader ("/lib64/ld-... (addr)"),
  # copied with their full paths; a missing one ("not found") is an error, not a broken image.
  if ldd "$nisshi" | grep -q 'not found'; then
    die "ldd cannot resolve every library of $nisshi: $(ldd "$nisshi" | grep 'not found' | tr '\n' ' ')"
  fi
  local library
  while read -r library; do
    mkdir -p "$root$(dirname "$library")"
    cp -fL "$library" "$root$library"
  done < <(ldd "$nisshi" | awk '/=> \// { print $3 } /^[ \t]*\// { print $1 }' | sort -u)
  # Without its ELF interpreter the binary fails with a bare "no such file or directory".
  local interpreter
  interpreter=$(file -b "$nisshi" | sed -n 's/.*interpreter \([^,]*\),.*/\1/p')
  [[ -n "$interpreter" && -f "$root$interpreter" ]] \
    || die "the dynamic loader ${interpreter:-(none found by file)} is not in $root"

  cp -f "$busybox" "$root/bin/busybox"
  local applet
  for applet in "${APPLETS[@]}"; do ln -sf busybox "$root/bin/$applet"; done

  printf 'root:x:0:0:root:/:/bin/sh\nnisshi:x:%s:%s:nisshi broker:/data:/bin/sh\n' "$APP_UID" "$APP_UID" > "$root/etc/passwd"
  printf 'root:x:0:\nnisshi:x:%s:\n' "$APP_UID" > "$root/etc/group"
  # glibc resolves `broker` through Docker's DNS; say so rather than rely on its built-in default.
  printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"
  log "staged $CONTEXT: nisshi, $(ldd "$nisshi" | wc -l) ldd entries, busybox"
}

stage
[[ $stage_only -eq 1 ]] && exit 0

docker info >/dev/null 2>&1 || die "no Docker engine answers (docker info failed)"
docker buildx version >/dev/null 2>&1 || export DOCKER_BUILDKIT=0
version=$("$CONTEXT/rootfs/usr/local/bin/nisshi" --version | awk '{ print $NF }')
[[ -n "$version" ]] || die "nisshi --version printed nothing"
tag="$REPOSITORY/nisshi:$version"
if ! output=$(docker build --quiet --file compose/Dockerfile.nisshi \
  --build-arg "NISSHI_VERSION=$version" \
  --build-arg "REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
  --tag "$tag" "$CONTEXT" 2>&1); then
  printf '%s\n' "$output" >&2
  die "docker build of $tag failed"
fi
log "built $tag ($(docker image inspect --format '{{.Size}}' "$tag") bytes)"
echo "$tag"
