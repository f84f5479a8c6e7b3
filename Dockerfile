# syntax=docker/dockerfile:1.7
# rollout daemon image: a small, non-root, read-only-friendly Python image.
# Build: docker build -t rollout:0.1.0 .   (the lock file pins every dependency)

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never PIP_NO_CACHE_DIR=1
RUN pip install --no-cache-dir "uv==0.13.9"
WORKDIR /app
# Dependencies first (cached layer), then the project itself.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY rollout ./rollout
RUN uv sync --frozen --no-dev --no-editable

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="rollout" \
      org.opencontainers.image.description="Progressive delivery daemon for Kubernetes" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH="/app/.venv/bin:${PATH}" PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    ROLLOUT_LOG_FORMAT=json
RUN groupadd --system --gid 65532 rollout \
 && useradd --system --uid 65532 --gid rollout --home-dir /nonexistent --shell /usr/sbin/nologin rollout
COPY --from=build --chown=root:root /app/.venv /app/.venv
USER 65532:65532
EXPOSE 8080 9102
HEALTHCHECK NONE
ENTRYPOINT ["rollout"]
CMD ["run"]
