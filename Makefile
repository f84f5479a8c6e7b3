# rollout: every developer and CI entry point. `make demo` and `make test` do all set-up themselves.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV ?= uv
RUN := $(UV) run --frozen
ROLLOUT_CACHE ?= $(HOME)/.cache/rollout
HELM_VERSION := $(shell sed -n 's/^HELM_VERSION="$${HELM_VERSION:-\(v[0-9.]*\)}"$$/\1/p' tests/harness/deploy-tools.sh)
HELM := $(ROLLOUT_CACHE)/deploy-tools/helm-$(HELM_VERSION)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

.PHONY: sync
sync: ## install the pinned Python dependencies (uv.lock) into .venv
	@command -v $(UV) >/dev/null || python3 -m pip install --quiet uv
	$(UV) sync --frozen --quiet

.PHONY: kube-bins
kube-bins: ## build (once, cached) the real kube-apiserver and etcd the tests use
	bash tests/harness/kube-bins.sh

.PHONY: prometheus
prometheus: ## install the real Prometheus server (Debian package) if missing
	bash tests/harness/prometheus-install.sh

.PHONY: deploy-tools
deploy-tools: ## build (once, cached) helm, kustomize and kube-score, and fetch the Prometheus Operator CRDs
	bash tests/harness/deploy-tools.sh

.PHONY: lint
lint: sync ## ruff, mypy --strict, import-linter layering contracts, hadolint
	$(RUN) ruff check rollout tests
	$(RUN) ruff format --check rollout tests
	$(RUN) mypy
	$(RUN) lint-imports
	$(RUN) hadolint Dockerfile

.PHONY: test
test: sync kube-bins deploy-tools prometheus lint ## everything: lint, then the whole test suite (real kube-apiserver, etcd, Prometheus)
	$(RUN) pytest -q --durations=15 --ignore=tests/e2e
	$(RUN) pytest -q --durations=15 -n 2 --dist loadfile tests/e2e

.PHONY: bench
bench: sync kube-bins prometheus ## benchmarks: judge comparison, Prometheus queries per tick, fault to stable, the daemon at scale
	$(RUN) python -m tests.bench

.PHONY: demo
demo: sync kube-bins prometheus ## the main job, live: a canary promoted, then a faulty release rolled back, on a local stack
	$(RUN) python -m tests.harness.demo

.PHONY: simulate
simulate: sync ## the seed canary on the engine's fake clock: healthy, then an error spike at step 3
	$(RUN) rollout simulate policies/recommendations-canary.yaml --scenario healthy
	$(RUN) rollout simulate policies/recommendations-canary.yaml --scenario error-spike --at-step 3

.PHONY: helm
helm: deploy-tools ## lint the Helm chart and package it into out/
	$(HELM) lint --strict deploy/helm/rollout
	$(HELM) package deploy/helm/rollout --destination out

.PHONY: image
image: ## build the container image with docker, podman or buildah (IMAGE=name:tag BASE=image@digest IMAGE_FLAGS=...)
	bash deploy/image/build.sh

.PHONY: generate
generate: sync ## rewrite every generated file: the CRDs, the admission policy, the chart's copies, README's policy reference
	$(RUN) python -m rollout.kube.crd > deploy/base/crd.yaml
	$(RUN) python -m rollout.kube.commands crd > deploy/base/crd-rolloutcommands.yaml
	$(RUN) python -m rollout.kube.commands policy > deploy/base/commands-policy.yaml
	cp deploy/base/crd.yaml deploy/base/crd-rolloutcommands.yaml deploy/base/commands-policy.yaml deploy/helm/rollout/files/
	$(RUN) python -m rollout.policy.reference --write README.md

.PHONY: fmt
fmt: sync ## format and autofix
	$(RUN) ruff format rollout tests
	$(RUN) ruff check --fix rollout tests
