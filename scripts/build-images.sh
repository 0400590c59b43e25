#!/usr/bin/env bash
# Container images of the three services, FROM scratch, one tag per architecture.
#
#   scripts/build-images.sh [amd64|arm64|all]    (default: every architecture staged)
#
# The prebuilt path (compose/offline.yml); `docker compose -f compose/stack.yml build` compiles
# inside Docker instead (compose/Dockerfile). Builds compose/Dockerfile.service from
# dist/image-context/ (staged by scripts/build-static.sh; no compiler runs inside Docker and
# nothing is pulled) into
#   streaming-kafka/<binary>:<version>-<arch>     for each architecture
#   streaming-kafka/<binary>:<version>            the host's architecture (what compose runs)
# (<version>: STACK_VERSION, default the workspace version)
# then prints each image's size and fails if one is over the 15 MB budget (15,000,000 bytes,
# uncompressed as `docker image inspect` reports it).
#
# One Dockerfile, one tag per architecture (there is no registry here to push a manifest list
# to). The Dockerfile only copies files, so building the arm64 image never runs arm64 code:
#   - with buildx (BuildKit): `docker build --platform linux/<arch>`;
#   - without it (our machines: Docker Engine 20.10, no buildx plugin) the classic builder
#     cannot build FROM scratch for a foreign platform (it fails at the second step), so the
#     image is built for the host and scripts/image-arch.py rewrites its config's architecture.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

CONTEXT=dist/image-context
REPOSITORY=${IMAGE_REPOSITORY:-streaming-kafka}
MAX_BYTES=15000000
BINARIES=(producer-order inventory-consumer analytics-consumer)

description() {
  case "$1" in
    producer-order) echo "Generates orders and produces them to Kafka with Java-compatible partitioning." ;;
    inventory-consumer) echo "Reserves stock for each order and writes one outcome per order." ;;
    analytics-consumer) echo "Rolling metrics over orders and outcomes, served over HTTP with a dashboard." ;;
  esac
}

host_arch() {
  case "$(uname -m)" in
    x86_64) echo amd64 ;;
    aarch64 | arm64) echo arm64 ;;
    *) die "no Docker architecture known for $(uname -m)" ;;
  esac
}

arches=()
case "${1:-all}" in
  amd64 | arm64) arches=("$1") ;;
  all)
    for arch in amd64 arm64; do [[ -d "$CONTEXT/$arch" ]] && arches+=("$arch"); done
    [[ ${#arches[@]} -gt 0 ]] || die "nothing staged in $CONTEXT: run scripts/build-static.sh first"
    ;;
  -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
  *) die_usage "usage: build-images.sh [amd64|arm64|all]" ;;
esac

docker info >/dev/null 2>&1 || die "no Docker engine answers (docker info failed)"
[[ -f "$CONTEXT/rootfs/etc/passwd" ]] || die "$CONTEXT/rootfs is missing: run scripts/build-static.sh first"
for arch in "${arches[@]}"; do
  [[ -d "$CONTEXT/$arch" ]] || die "no $arch binaries in $CONTEXT: run scripts/build-static.sh ${arch/amd64/x86_64}" \
    "(arm64 comes from aarch64)"
done

workspace_version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
[[ -n "$workspace_version" ]] || die "no workspace version found in Cargo.toml"
# The tag follows the stack's STACK_VERSION (so a second checkout can keep its images apart);
# the version label is always the workspace's.
version=${STACK_VERSION:-$workspace_version}
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
native=$(host_arch)

# The classic builder is what a Docker Engine without the buildx plugin has; saying so keeps
# the CLI's deprecation notice from reading like an error in CI logs.
buildkit=1
if ! docker buildx version >/dev/null 2>&1; then
  buildkit=0
  export DOCKER_BUILDKIT=0
  log "docker buildx is not installed: classic builder; foreign architectures via scripts/image-arch.py"
fi

for arch in "${arches[@]}"; do
  for binary in "${BINARIES[@]}"; do
    tag="$REPOSITORY/$binary:$version-$arch"
    log "building $tag"
    platform=()
    build_tag=$tag
    if [[ $buildkit -eq 1 ]]; then
      platform=(--platform "linux/$arch")
    elif [[ "$arch" != "$native" ]]; then
      build_tag="$tag-host-platform"
    fi
    # Output only on failure: the classic builder's deprecation notice would repeat six times.
    if ! output=$(docker build --quiet "${platform[@]}" \
      --file compose/Dockerfile.service \
      --build-arg "BINARY=$binary" \
      --build-arg "TARGETARCH=$arch" \
      --build-arg "VERSION=$workspace_version" \
      --build-arg "REVISION=$revision" \
      --build-arg "DESCRIPTION=$(description "$binary")" \
      --tag "$build_tag" \
      "$CONTEXT" 2>&1); then
      printf '%s\n' "$output" >&2
      die "docker build of $tag failed"
    fi
    if [[ "$build_tag" != "$tag" ]]; then
      scripts/image-arch.py "$build_tag" "$arch" "$tag" || die "could not mark $tag as $arch"
      docker rmi "$build_tag" >/dev/null
    fi
    if [[ "$arch" == "$native" ]]; then
      docker tag "$tag" "$REPOSITORY/$binary:$version"
    fi
  done
done

printf '\n%-48s %-6s %12s %9s\n' IMAGE ARCH BYTES MB
over=()
for arch in "${arches[@]}"; do
  for binary in "${BINARIES[@]}"; do
    tag="$REPOSITORY/$binary:$version-$arch"
    read -r size image_arch < <(docker image inspect --format '{{.Size}} {{.Architecture}}' "$tag")
    [[ "$image_arch" == "$arch" ]] || die "$tag says architecture $image_arch, expected $arch"
    printf '%-48s %-6s %12s %9s\n' "$tag" "$image_arch" "$size" "$(awk -v b="$size" 'BEGIN { printf "%.2f", b / 1e6 }')"
    (( size <= MAX_BYTES )) || over+=("$tag ($size bytes)")
  done
done
if [[ ${#over[@]} -gt 0 ]]; then
  die "over the $MAX_BYTES-byte image budget: ${over[*]}"
fi
echo "every image is within $MAX_BYTES bytes (15 MB)"
