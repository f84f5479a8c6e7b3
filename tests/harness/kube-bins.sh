#!/usr/bin/env bash
# Build the real kube-apiserver, etcd and kubectl used by the tests and `make demo`, once, from the
# Go module proxy, into a version-named cache directory outside the repository.
#
#   KUBE_VERSION (default v1.37.2), ETCD_VERSION (default v3.7.3), ROLLOUT_CACHE (default ~/.cache/rollout)
#   KUBEBUILDER_ASSETS set and holding both binaries: nothing is built.
#
# k8s.io/kubernetes points its staging modules at ./staging in its go.mod, which is why a plain
# `go install k8s.io/kubernetes/cmd/kube-apiserver@vX` fails; a throwaway wrapper module requires
# it and replaces every k8s.io staging module with its published v0.Y.Z twin.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.7.3}"
CACHE="${ROLLOUT_CACHE:-$HOME/.cache/rollout}"

if [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "$KUBEBUILDER_ASSETS/kube-apiserver" && -x "$KUBEBUILDER_ASSETS/etcd" && -x "$KUBEBUILDER_ASSETS/kubectl" ]]; then
  echo "kube-bins: using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
  exit 0
fi

OUT="$CACHE/kube-$KUBE_VERSION"
mkdir -p "$OUT"
staging_version="v0.${KUBE_VERSION#v1.}"
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--buildvcs=false}"

build() { # name module version package
  local name=$1 module=$2 version=$3 package=$4
  if [[ -x "$OUT/$name" ]]; then echo "kube-bins: $OUT/$name (cached)"; return; fi
  local work; work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  echo "kube-bins: building $name $version (a cold build takes several minutes)..."
  local start=$SECONDS
  (
    cd "$work"
    go mod init rollout.dev/kube-bins-$name >/dev/null 2>&1
    if [[ "$module" == "k8s.io/kubernetes" ]]; then
      local mods
      mods="$(curl -fsS "$(go env GOPROXY | cut -d, -f1)/k8s.io/kubernetes/@v/$version.mod" \
        | sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p')"
      for m in $mods; do go mod edit -replace "$m=$m@$staging_version"; done
    fi
    printf 'package tools\n\nimport _ "%s"\n' "$package" > tools.go
    go get "$module@$version" >/dev/null
    go mod tidy >/dev/null 2>&1 || true
    go build -trimpath -ldflags='-s -w' -o "$OUT/$name.tmp" "$package"
  )
  mv "$OUT/$name.tmp" "$OUT/$name"
  echo "kube-bins: built $OUT/$name in $((SECONDS - start))s"
}

build etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION" go.etcd.io/etcd/server/v3
build kube-apiserver k8s.io/kubernetes "$KUBE_VERSION" k8s.io/kubernetes/cmd/kube-apiserver
build kubectl k8s.io/kubernetes "$KUBE_VERSION" k8s.io/kubernetes/cmd/kubectl
echo "kube-bins: ready in $OUT"
