"""The container image's recipe: the Dockerfile is multi-stage, pins its base by digest, runs as a
numeric non-root user, exposes only the port the daemon listens on and passes hadolint; and the
runtime venv it builds, trimmed by deploy/image/trim-venv.sh, passes deploy/image/smoke.py (every
module the daemon imports still imports, the CLI runs) when built here with uv from uv.lock."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rollout.settings import Settings
from tests.harness.kube import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
IMAGE = REPO_ROOT / "deploy" / "image"


def instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in (raw.strip() for raw in joined.splitlines())
        if line and not line.startswith("#")
    ]


def test_hadolint_passes() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    done = subprocess.run([hadolint, DOCKERFILE], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_multi_stage_pinned_non_root_and_only_the_daemons_port() -> None:
    steps = instructions()
    base = next(v for k, v in steps if k == "ARG" and v.startswith("BASE="))
    assert re.fullmatch(r"BASE=[\w./:-]+@sha256:[0-9a-f]{64}", base), base
    stages = [v for k, v in steps if k == "FROM"]
    assert stages == ["${BASE} AS build", "${BASE} AS runtime"]
    runtime = steps[steps.index(("FROM", stages[1])) :]
    assert ("COPY", "--from=build /app/.venv /app/.venv") in runtime
    assert [v for k, v in runtime if k == "RUN"] == [], "the runtime stage adds nothing but the venv"
    assert [v for k, v in steps if k == "USER"] == ["65532:65532"]
    assert [v for k, v in steps if k == "EXPOSE"] == [str(Settings.model_fields["port"].default)]
    assert any("UV_COMPILE_BYTECODE=1" in v for k, v in steps if k == "ENV")
    assert any("trim-venv.sh" in v and "smoke.py" in v for k, v in steps if k == "RUN")


def test_the_build_context_holds_what_the_dockerfile_copies() -> None:
    copied = {src for k, v in instructions() if k == "COPY" and not v.startswith("--from") for src in v.split()[:-1]}
    assert copied == {
        "pyproject.toml",
        "uv.lock",
        "README.md",
        "rollout",
        "deploy/image/trim-venv.sh",
        "deploy/image/smoke.py",
        "policies/recommendations-canary.yaml",
    }
    allowed = {line[1:] for line in (REPO_ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")}
    assert all(any(src == a or src.startswith(a + "/") for a in allowed) for src in copied), allowed


@pytest.mark.slow
def test_the_trimmed_runtime_venv_passes_the_smoke(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    assert uv is not None, "uv is on PATH wherever `make test` runs (make sync installs it)"
    venv = tmp_path / "venv"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_COMPILE_BYTECODE": "0"}
    env.pop("VIRTUAL_ENV", None)
    subprocess.run(
        [uv, "sync", "--frozen", "--no-dev", "--no-editable", "--quiet"],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        timeout=300,
    )
    site = next(venv.glob("lib/python3*/site-packages"))
    assert (site / "kubernetes" / "aio").is_dir()
    subprocess.run(["sh", IMAGE / "trim-venv.sh", venv], check=True, timeout=60)
    assert not (site / "kubernetes" / "aio").exists()
    assert (site / "kubernetes" / "client").is_dir()
    policy = REPO_ROOT / "policies" / "recommendations-canary.yaml"
    done = subprocess.run(
        [venv / "bin" / "python", "-I", IMAGE / "smoke.py", policy],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "smoke: " in done.stdout
