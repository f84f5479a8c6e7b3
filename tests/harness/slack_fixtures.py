"""Pytest fixtures over ``tests.harness.slack``: a running Slack Web API stand-in per test.

Owns the stand-in's lifecycle (started on a free loopback port, stopped afterwards) and the
matching slack-sdk client settings. A test that needs other channels or tokens builds its own
``SlackStandIn`` in a ``with`` block.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.slack import DEFAULT_TOKEN, SlackStandIn

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@pytest.fixture
def slack_api() -> Iterator[SlackStandIn]:
    """The Slack Web API stand-in with channels #deploys (C0DEPLOYS) and #general (C0GENERAL),
    the bot a member of both, accepting the token ``slack_token``."""
    with SlackStandIn(tokens=[DEFAULT_TOKEN]) as stand_in:
        yield stand_in


@pytest.fixture
def slack_token() -> str:
    return DEFAULT_TOKEN


@pytest.fixture
def slack_signing_secret() -> str:
    return SIGNING_SECRET
