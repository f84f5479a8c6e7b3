"""The README stays true: its policy reference is the generated one, its commands exist."""

from __future__ import annotations

import re
from pathlib import Path

from rollout.cli import build_parser
from rollout.policy.reference import table

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_the_policy_reference_is_the_generated_one() -> None:
    match = re.search(r"<!-- policy-reference:start[^>]*-->\n(.*?)\n<!-- policy-reference:end -->", README, re.S)
    assert match is not None
    assert match.group(1) == table(), "regenerate with: python -m rollout.policy.reference"


def test_every_cli_command_is_documented() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert commands
    for name in commands:
        assert f"rollout {name}" in README or f"\\|{name}" in README or f"|{name}" in README, name


def test_every_make_target_in_the_readme_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in set(re.findall(r"`make ([a-z-]+)`", README)):
        assert re.search(rf"^{target}:", makefile, re.M), target
