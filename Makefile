# rollout: every developer and CI entry point. `make demo` and `make test` do all set-up themselves.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV ?= uv
RUN := $(UV) run --frozen
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

.PHONY: lint
lint: sync ## ruff, mypy --strict, import-linter layering contracts, hadolint
	$(RUN) ruff check rollout tests
	$(RUN) ruff format --check rollout tests
	$(RUN) mypy
	$(RUN) lint-imports
	$(RUN) hadolint Dockerfile

.PHONY: test
test: sync kube-bins prometheus lint ## everything: lint, then the whole test suite (real kube-apiserver, etcd, Prometheus)
	$(RUN) pytest -q

.PHONY: bench
bench: sync kube-bins prometheus ## benchmarks: judge comparison, Prometheus queries per tick
	$(RUN) python -m tests.bench

.PHONY: demo
demo: sync kube-bins prometheus ## the main job, live: a canary promoted, then a faulty release rolled back, on a local stack
	$(RUN) python -m tests.harness.demo

.PHONY: simulate
simulate: sync ## the seed canary on the engine's fake clock: healthy, then an error spike at step 3
	$(RUN) rollout simulate policies/recommendations-canary.yaml --scenario healthy
	$(RUN) rollout simulate policies/recommendations-canary.yaml --scenario error-spike --at-step 3

.PHONY: fmt
fmt: sync ## format and autofix
	$(RUN) ruff format rollout tests
	$(RUN) ruff check --fix rollout tests
