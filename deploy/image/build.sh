#!/usr/bin/env bash
# Build the daemon's image with whichever of docker, podman or buildah works here (`make image`).
#   IMAGE   name:tag to build (default rollout:<version in pyproject.toml>)
#   BASE    another base image for the Dockerfile's ARG BASE (default: the digest it pins)
#   IMAGE_FLAGS  extra flags for the builder, e.g. behind a TLS-intercepting proxy with podman/buildah:
#           IMAGE_FLAGS='-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro'
set -euo pipefail
cd "$(dirname "$0")/../.."
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -1)"
IMAGE="${IMAGE:-rollout:$version}"
args=(-t "$IMAGE" -f Dockerfile)
[[ -n "${BASE:-}" ]] && args+=(--build-arg "BASE=$BASE")
# shellcheck disable=SC2206  # IMAGE_FLAGS is a list of flags, split on purpose
[[ -n "${IMAGE_FLAGS:-}" ]] && args+=(${IMAGE_FLAGS})

if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  tool=(docker build)
elif command -v podman >/dev/null; then
  tool=(podman build --layers)
elif command -v buildah >/dev/null; then
  tool=(buildah bud --layers)
else
  echo "image: no working docker, podman or buildah; install one (Debian: apt-get install buildah)" >&2
  exit 1
fi
echo "image: ${tool[*]} ${args[*]} ."
start=$SECONDS
"${tool[@]}" "${args[@]}" .
echo "image: built $IMAGE in $((SECONDS - start))s"
"${tool[0]}" images "$IMAGE"
