"""Pytest fixtures over ``tests.harness.slack``: a running Slack stand-in per test.

Owns the stand-in's lifecycle (started on free loopback ports, stopped afterwards) and the
matching slack-sdk client settings. A test that needs other channels, tokens or user groups builds
its own ``SlackStandIn`` in a ``with`` block.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.slack import APP_TOKEN, DEFAULT_TOKEN, SlackStandIn

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
APPROVERS_GROUP = "S0RELEASE"
GROUP_MEMBER = "U0GROUPIE"


@pytest.fixture
def slack_api() -> Iterator[SlackStandIn]:
    """The Slack stand-in with channels #deploys (C0DEPLOYS) and #general (C0GENERAL), the bot a
    member of both, accepting the token ``slack_token`` and the app-level token ``slack_app_token``;
    user group S0RELEASE has the member U0GROUPIE."""
    with SlackStandIn(tokens=[DEFAULT_TOKEN], groups={APPROVERS_GROUP: [GROUP_MEMBER]}) as stand_in:
        yield stand_in


@pytest.fixture
def slack_token() -> str:
    return DEFAULT_TOKEN


@pytest.fixture
def slack_app_token() -> str:
    return APP_TOKEN


@pytest.fixture
def slack_signing_secret() -> str:
    return SIGNING_SECRET
