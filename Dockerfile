# rollout daemon image: multi-stage, non-root, read-only-root-filesystem friendly, bytecode compiled
# at build time. Build with `make image` (docker, podman or buildah, whichever exists).
#
# The base is pinned by digest. The default below is Docker Hub's python:3.11-slim-bookworm at the
# digest recorded in README "Install in your cluster" (it could not be resolved from the machine this
# was written on, which reaches no container registry). Refresh it with
#   docker buildx imagetools inspect python:3.11-slim-bookworm     (or: skopeo inspect docker://...)
# and override it without editing: `make image BASE=registry.example.com/python:3.11-slim@sha256:...`.
ARG BASE=python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91

FROM ${BASE} AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_SYSTEM_CERTS=1 \
    UV_PROJECT_ENVIRONMENT=/app/.venv PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install --no-cache-dir "uv==0.13.9"
WORKDIR /src
# Dependencies first (a cached layer while uv.lock is unchanged), then the project itself.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project --no-editable
COPY rollout ./rollout
COPY deploy/image/trim-venv.sh deploy/image/smoke.py policies/recommendations-canary.yaml /smoke/
# Drop what the daemon never imports (deploy/image/trim-venv.sh says what), then prove that every
# module it imports still imports and that the CLI runs, before anything is copied out.
RUN uv sync --frozen --no-dev --no-editable \
 && sh /smoke/trim-venv.sh /app/.venv \
 && /app/.venv/bin/python -I /smoke/smoke.py /smoke/recommendations-canary.yaml

FROM ${BASE} AS runtime
LABEL org.opencontainers.image.title="rollout" \
      org.opencontainers.image.description="Progressive delivery daemon for Kubernetes" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH="/app/.venv/bin:${PATH}" PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 ROLLOUT_LOG_FORMAT=json
COPY --from=build /app/.venv /app/.venv
# Numeric, so `runAsNonRoot` can verify it; the manifests run it with a read-only root filesystem.
USER 65532:65532
# /healthz, /readyz, /metrics and /slack/interactions (ROLLOUT_PORT).
EXPOSE 8080
HEALTHCHECK NONE
ENTRYPOINT ["rollout"]
CMD ["run"]
