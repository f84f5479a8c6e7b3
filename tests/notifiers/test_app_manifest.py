"""The Slack app manifest in deploy/ grants what the daemon uses: a scope for every Web API method the
notifier calls, Socket Mode and interactivity on, and nothing it does not use."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = yaml.safe_load((ROOT / "deploy" / "slack-app-manifest.yaml").read_text())
SCOPES = {  # Slack's documented bot scopes per method (public and private channels)
    "auth.test": set(),
    "chat.postMessage": {"chat:write"},
    "chat.update": {"chat:write"},
    "conversations.history": {"channels:history", "groups:history"},
    "conversations.replies": {"channels:history", "groups:history"},
    "usergroups.users.list": {"usergroups:read"},
}


def test_every_method_the_notifier_calls_has_its_scope_and_no_scope_is_unused() -> None:
    source = (ROOT / "rollout" / "notifiers" / "slack.py").read_text()
    called = set(re.findall(r'_call\(\s*"([a-z]+\.[A-Za-z.]+)"', source)) | {"chat.postMessage"}
    assert called <= set(SCOPES), f"add the scopes of {sorted(called - set(SCOPES))} to this test and the manifest"
    needed = set().union(*(SCOPES[m] for m in called))
    assert set(MANIFEST["oauth_config"]["scopes"]["bot"]) == needed


def test_socket_mode_and_interactivity_are_on_without_a_request_url() -> None:
    settings = MANIFEST["settings"]
    assert settings["socket_mode_enabled"] is True
    assert settings["interactivity"] == {"is_enabled": True}
    assert MANIFEST["features"]["bot_user"]["display_name"] == "rollout"
