"""Slack approver lists with user groups: the engine stays pure, the runtime hands it the groups the
clicker was in (``Command.slack_groups``, resolved when the click was recorded)."""

from __future__ import annotations

from typing import Any

from rollout.core.actions import ApprovalResolved, Resolution
from rollout.core.commanding import approval_key
from rollout.core.states import CommandKind, Phase
from tests.core.factories import Driver, command, policy

STEPS: list[dict[str, Any]] = [{"setWeight": 10}, {"approval": {}}, {"setWeight": 100}]
APPROVALS: dict[str, Any] = {"slack": {"channel": "#deploys", "approvers": ["U0LEAD", "S0RELEASE"]}}


def test_a_member_of_an_approver_group_approves_and_a_member_of_another_group_is_refused() -> None:
    d = Driver(policy(steps=STEPS, approvals=APPROVALS))
    d.until(lambda d: d.state.phase is Phase.AWAITING_APPROVAL)
    ref = approval_key(d.state)
    outsider = command(CommandKind.APPROVE, d.now, 1, by="daemon", slack_user="U0OTHER", slack_groups=("S0OTHER",),
                       ref=ref)  # fmt: skip
    member = command(CommandKind.APPROVE, d.now, 2, by="daemon", slack_user="U0MEMBER", slack_groups=("S0RELEASE",),
                     ref=ref)  # fmt: skip
    decision = d.tick([outsider, member])
    refused, accepted = decision.commands
    assert not refused.accepted and "Slack user U0OTHER is not an approver" in refused.message
    assert accepted.accepted
    assert decision.state.approvals == ("step 2: U0MEMBER",)


def test_a_listed_user_needs_no_group_and_an_unlisted_one_without_groups_is_refused() -> None:
    d = Driver(policy(steps=STEPS, approvals=APPROVALS))
    d.until(lambda d: d.state.phase is Phase.AWAITING_APPROVAL)
    ref = approval_key(d.state)
    stranger = command(CommandKind.APPROVE, d.now, 1, by="daemon", slack_user="U0STRANGER", ref=ref)
    lead = command(CommandKind.APPROVE, d.now, 2, by="daemon", slack_user="U0LEAD", ref=ref)
    decision = d.tick([stranger, lead])
    assert [r.accepted for r in decision.commands] == [False, True]


def test_a_rejection_in_slack_names_who_clicked_not_the_daemon_that_recorded_it() -> None:
    d = Driver(policy(steps=STEPS, approvals=APPROVALS))
    d.until(lambda d: d.state.phase is Phase.AWAITING_APPROVAL)
    reject = command(CommandKind.ABORT, d.now, 1, by="daemon", slack_user="U0LEAD", ref=approval_key(d.state))
    decision = d.tick([reject])
    assert decision.state.aborted_by == "slack:U0LEAD"
    [resolved] = [a for a in decision.actions if isinstance(a, ApprovalResolved)]
    assert (resolved.resolution, resolved.by) == (Resolution.REJECTED, "slack:U0LEAD")
