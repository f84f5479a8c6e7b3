"""Answers to clicks: what the clicker is told comes from the command's result and the rollout now
(approved, rejected, not an approver, already decided and by whom, an old revision's button), and
is sent once, whether the command's result arrives before or after the click was registered."""

from __future__ import annotations

from typing import Any

import pytest

from rollout.core.states import CommandKind
from rollout.runtime.answering import Answers, Click, answer_text

URL = "https://hooks.slack.com/actions/T0/1/abc"
APPROVE = Click(URL, "U012AB3CD", CommandKind.APPROVE, "shop/recs", 2, "approval-a10e06a5a254-1")
REJECT = Click(URL, "U012AB3CD", CommandKind.ABORT, "shop/recs", 2, "approval-a10e06a5a254-1")
NOW = {"status": {"revision": "a10e06a5a254", "state": {"approvals": ["step 2: U0OTHER"]}}}
PENDING = "it answers approval request approval-a10e06a5a254-1, which is no longer pending"


@pytest.mark.parametrize(
    ("click", "phase", "message", "rollout", "said"),
    [
        (APPROVE, "Accepted", "approve by slack", NOW, ":white_check_mark: You approved step 2 of shop/recs; the "
         "rollout goes on."),
        (REJECT, "Accepted", "abort by slack", NOW, ":no_entry: You rejected step 2 of shop/recs; the rollout rolls "
         "back to stable."),
        (APPROVE, "Refused", "refused approve: Slack user U012AB3CD is not an approver of shop/recs", NOW,
         "You are not an approver of shop/recs; nothing changed."),
        (APPROVE, "Ignored", f"ignored approve: {PENDING}", NOW, "Step 2 of shop/recs was already decided (approved "
         "by <@U0OTHER>); nothing changed."),
        (APPROVE, "Ignored", f"ignored approve: {PENDING}", {"status": {"revision": "7d0c3e5b9f21"}},
         "That button belongs to an old revision (a10e06a5a254) of shop/recs; the current revision is 7d0c3e5b9f21. "
         "Nothing changed."),
        (APPROVE, "Ignored", f"ignored approve: {PENDING}",
         {"status": {"revision": "a10e06a5a254", "state": {"abortedBy": "jane@example.com"}}},
         "Step 2 of shop/recs was already decided (rejected by `jane@example.com`); nothing changed."),
        (APPROVE, "Ignored", "ignored approve: an abort was given with it", NOW,
         "Nothing changed by your approval of step 2 of shop/recs: ignored approve: an abort was given with it"),
        (APPROVE, "Refused", "refused approve: the admission policy is not installed", None,
         "Your approval of step 2 of shop/recs was refused: refused approve: the admission policy is not installed"),
    ],
    ids=["approved", "rejected", "not-approver", "decided", "old-revision", "rejected-earlier", "other", "refused"],
)  # fmt: skip
def test_the_answer_tells_the_truth(
    click: Click, phase: str, message: str, rollout: dict[str, Any] | None, said: str
) -> None:
    assert answer_text(click, phase, message, rollout) == said


def _command(phase: str = "", slack: bool = True) -> dict[str, Any]:
    spec = {"rollout": "recs", "command": "approve", "by": "daemon", **({"slackUser": "U012AB3CD"} if slack else {})}
    out: dict[str, Any] = {"metadata": {"namespace": "shop", "name": "recs-approve-x"}, "spec": spec}
    if phase:
        out["status"] = {"phase": phase, "message": "approve by slack:U012AB3CD"}
    return out


def test_a_click_is_answered_once_its_command_is_handled() -> None:
    sent: list[tuple[str, str]] = []
    answers = Answers(lambda url, text: sent.append((url, text)), rollout=lambda ns, name: NOW)
    answers.expect("shop", "recs-approve-x", APPROVE)
    answers.handled(_command())  # no result yet
    assert sent == [] and len(answers) == 1
    answers.handled(_command("Accepted"))
    answers.handled(_command("Accepted"))  # a later informer event: already answered
    assert sent == [(URL, ":white_check_mark: You approved step 2 of shop/recs; the rollout goes on.")]
    assert len(answers) == 0


def test_a_result_that_arrives_before_the_click_is_registered_is_kept_for_it() -> None:
    sent: list[tuple[str, str]] = []
    answers = Answers(lambda url, text: sent.append((url, text)))
    answers.handled(_command("Accepted"))  # the daemon was quicker than the click handler
    answers.handled(_command("Accepted", slack=False) | {"metadata": {"namespace": "shop", "name": "cli"}})
    answers.expect("shop", "recs-approve-x", APPROVE)
    assert [text for _, text in sent] == [":white_check_mark: You approved step 2 of shop/recs; the rollout goes on."]


def test_waiting_clicks_are_bounded_and_expire_with_their_response_url() -> None:
    now = [0.0]
    sent: list[tuple[str, str]] = []
    answers = Answers(lambda url, text: sent.append((url, text)), clock=lambda: now[0])
    for i in range(1500):
        answers.expect("shop", f"c{i}", APPROVE)
    assert len(answers) == 1000
    now[0] = 1801.0
    answers.expect("shop", "late", APPROVE)
    assert len(answers) == 1
    answers.handled(_command("Accepted") | {"metadata": {"namespace": "shop", "name": "c1499"}})
    assert sent == []  # expired: its response_url no longer answers
