#!/usr/bin/env bash
# Install the real Prometheus server used by the tests and `make demo`, if it is not on PATH.
# Debian/Ubuntu: the `prometheus` package. Elsewhere: put a `prometheus` binary (2.x or 3.x) on
# PATH or point PROMETHEUS_BIN at one.
set -euo pipefail
if [[ -n "${PROMETHEUS_BIN:-}" && -x "$PROMETHEUS_BIN" ]] || command -v prometheus >/dev/null; then
  exit 0
fi
if command -v apt-get >/dev/null; then
  echo "prometheus: installing Debian's prometheus package..."
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  # The package may start a system service on :9090; the tests run their own instance.
  (command -v systemctl >/dev/null && $SUDO systemctl disable --now prometheus 2>/dev/null) || true
  pkill -x prometheus 2>/dev/null || true
else
  echo "prometheus: not found; install Prometheus 2.x/3.x and put it on PATH (or set PROMETHEUS_BIN)" >&2
  exit 1
fi
