#!/usr/bin/env bash
# Build a local stand-in for the Dockerfile's base image (python:3.11-slim-bookworm) from Debian's
# own packages, for machines that reach Debian's archive but no container registry. It is what the
# image size in the README was measured on; it is not what a release should ship (use the pinned
# base the Dockerfile names).
#
#   bash tests/harness/standin-base.sh [TAG]      (default tag: localhost/python-standin:3.11-slim-bookworm)
#   make image BASE=localhost/python-standin:3.11-slim-bookworm
#
# Needs mmdebstrap and buildah (Debian packages). Like the real slim image it has Python 3.11, pip,
# CA certificates, tzdata and netbase, and no documentation, man pages or locales. Debian marks its
# Python "externally managed"; the marker is removed so that `pip install uv` in the Dockerfile's
# build stage works as it does on the real image.
set -euo pipefail
TAG="${1:-localhost/python-standin:3.11-slim-bookworm}"
SUITE="${SUITE:-bookworm}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

mmdebstrap --variant=minbase --quiet \
  --include=python3.11,python3-pip,ca-certificates,netbase,tzdata \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --customize-hook='rm -f "$1"/usr/lib/python3.11/EXTERNALLY-MANAGED' \
  --customize-hook='ln -sf python3.11 "$1"/usr/bin/python' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
  "$SUITE" "$work/rootfs.tar" "$MIRROR"

ctr="$(buildah from scratch)"
buildah add --quiet "$ctr" "$work/rootfs.tar" /
buildah config --env LANG=C.UTF-8 --env PYTHONIOENCODING=utf-8 --cmd python3 "$ctr"
buildah commit --quiet --rm "$ctr" "$TAG"
echo "standin-base: $TAG $(buildah inspect --format '{{.FromImageDigest}}' "$TAG" 2>/dev/null || true)"
buildah images --format '{{.Name}}:{{.Tag}} {{.Size}} {{.Digest}}' "$TAG"
