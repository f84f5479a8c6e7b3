"""The ``rollout`` command line: parses arguments and hands each subcommand to its module.

Owns argument parsing, exit codes and the rule that a user's mistake is a clear message, never a
traceback (exit 1 for invalid input, 2 for usage errors). It decides nothing about rollouts.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rollout import __version__
from rollout.cli import offline, operating, viewing
from rollout.errors import RolloutError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rollout",
        description="Progressive delivery for Kubernetes: shift traffic stable -> canary step by step, "
        "judge Prometheus SLOs at every step, promote or roll back on its own.",
    )
    parser.add_argument("--version", action="version", version=f"rollout {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    offline.register(sub)
    operating.register(sub)
    viewing.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except RolloutError as e:
        print(f"rollout {args.command}: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
    return code
