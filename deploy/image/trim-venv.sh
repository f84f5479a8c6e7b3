#!/bin/sh
# Remove from the image's runtime venv what the daemon never imports, keeping the official
# `kubernetes` package otherwise whole: `kubernetes/aio` is the package's asyncio copy of the whole
# client (about 69 MB of the 128 MB it installs); the daemon uses the synchronous client only.
# deploy/image/smoke.py then proves everything the daemon imports still imports and runs.
#   sh deploy/image/trim-venv.sh VENV
set -eu
venv="$1"
for site in "$venv"/lib/python3*/site-packages; do
  test -d "$site/kubernetes/client" || { echo "trim-venv: no kubernetes package in $site" >&2; exit 1; }
  rm -rf "$site/kubernetes/aio"
done
