#!/usr/bin/env bash
# Build (once, cached) the install tooling the deploy tests use, from the Go module proxy, into a
# version-named cache directory outside the repository:
#   helm        renders and lints deploy/helm/rollout (`helm lint`, `helm template`)
#   kustomize   renders deploy/base, the components and the overlays
#   kube-score  lints the rendered manifests (a report; see tests/deploy/test_lint.py)
# and takes the Prometheus Operator's real ServiceMonitor and PrometheusRule CRDs from the
# prometheus-operator Go module (its example/prometheus-operator-crd directory), so the optional
# objects can be applied to a real API server.
#
#   HELM_VERSION, KUSTOMIZE_VERSION, KUBE_SCORE_VERSION, PROMETHEUS_OPERATOR_VERSION (defaults below)
#   ROLLOUT_CACHE (default ~/.cache/rollout)
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v4.3.1}"
KUSTOMIZE_VERSION="${KUSTOMIZE_VERSION:-v5.8.2}"
KUBE_SCORE_VERSION="${KUBE_SCORE_VERSION:-v1.20.0}"
PROMETHEUS_OPERATOR_VERSION="${PROMETHEUS_OPERATOR_VERSION:-v0.85.0}"
CACHE="${ROLLOUT_CACHE:-$HOME/.cache/rollout}"
OUT="$CACHE/deploy-tools"
mkdir -p "$OUT"
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--buildvcs=false}"

install() { # name package version
  local name=$1 package=$2 version=$3
  local target="$OUT/$name-$version"
  if [[ -x "$target" ]]; then echo "deploy-tools: $target (cached)"; return; fi
  local bin; bin="$(mktemp -d)"
  trap 'rm -rf "$bin"' RETURN
  echo "deploy-tools: building $name $version from the Go module proxy..."
  local start=$SECONDS
  GOBIN="$bin" go install -trimpath -ldflags='-s -w' "$package@$version"
  mv "$bin/$name" "$target"
  echo "deploy-tools: built $target in $((SECONDS - start))s"
}

install helm helm.sh/helm/v4/cmd/helm "$HELM_VERSION"
install kustomize sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION"
install kube-score github.com/zegl/kube-score/cmd/kube-score "$KUBE_SCORE_VERSION"

crds="$OUT/prometheus-operator-crds-$PROMETHEUS_OPERATOR_VERSION"
if [[ -s "$crds/monitoring.coreos.com_servicemonitors.yaml" && -s "$crds/monitoring.coreos.com_prometheusrules.yaml" ]]; then
  echo "deploy-tools: $crds (cached)"
else
  dir="$(go mod download -json "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" \
    | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')"
  mkdir -p "$crds.tmp"
  for kind in servicemonitors prometheusrules; do
    cp "$dir/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml" "$crds.tmp/"
  done
  chmod -R u+w "$crds.tmp"
  rm -rf "$crds"
  mv "$crds.tmp" "$crds"
  echo "deploy-tools: Prometheus Operator CRDs $PROMETHEUS_OPERATOR_VERSION in $crds"
fi
echo "deploy-tools: ready in $OUT"
