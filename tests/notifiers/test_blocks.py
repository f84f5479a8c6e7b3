"""What people see in Slack: golden Block Kit JSON for every message of a run (``golden/``, rewritten by
``python -m tests.notifiers.samples``; review the diff), Slack's limits on every message whatever
goes in, the words and numbers of a verdict, and the approval button's value."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollout.core.actions import ApprovalResolved, Level, Notify, RequestApproval, Resolution
from rollout.core.verdicts import Check, Verdict, VerdictKind
from rollout.notifiers import blocks
from rollout.notifiers.base import RolloutSnapshot
from rollout.notifiers.blocks import MAX_BLOCKS, MAX_TEXT, MAX_VALUE, ApprovalRef, digest
from rollout.notifiers.wording import bound, check_line, count, pct
from tests.harness.slack_blocks import validate_blocks
from tests.notifiers.samples import BASE, EVENTS, GOLDEN, as_json, rendered

REWRITE = "python -m tests.notifiers.samples rewrites tests/notifiers/golden/ (review the diff)"


@pytest.mark.parametrize("name", sorted(rendered()))
def test_golden_block_kit(name: str) -> None:
    path = GOLDEN / f"{name}.json"
    assert path.exists(), f"no golden file {path.name}: {REWRITE}"
    assert as_json(rendered()[name]) == path.read_text(), f"{name} changed: {REWRITE}"


def test_every_golden_file_is_still_rendered_and_every_event_type_has_one() -> None:
    assert {p.stem for p in GOLDEN.glob("*.json")} == set(rendered())
    events = {note.event for _, note in EVENTS.values()}
    engine = {"rollout.started", "rollout.step", "rollout.step-passed", "rollout.check-failed", "rollout.deadline",
              "rollout.drift", "rollout.route-error", "rollout.approval-timeout", "rollout.superseded",
              "rollout.promoted", "rollout.rolled-back", "rollout.aborted"}  # fmt: skip
    assert events == engine


def _texts(value: Any) -> list[str]:
    if isinstance(value, dict):
        own = [value["text"]] if isinstance(value.get("text"), str) else []
        return own + [t for k, v in value.items() if k != "text" for t in _texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    return []


def _values(blocks_: list[dict[str, Any]]) -> list[str]:
    return [str(e["value"]) for b in blocks_ if b["type"] == "actions" for e in b["elements"]]


def within_limits(message: blocks.Rendered) -> None:
    assert validate_blocks(message.blocks) == [], message.blocks  # Slack's own documented limits
    assert len(blocks.fits(message.blocks)) <= MAX_BLOCKS
    assert all(len(t) <= MAX_TEXT for t in _texts(message.blocks))
    assert all(len(v) <= MAX_VALUE for v in _values(message.blocks))


@pytest.mark.parametrize("name", sorted(rendered()))
def test_golden_messages_are_within_slacks_limits(name: str) -> None:
    within_limits(rendered()[name])


_names = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True)
_long_names = st.from_regex(r"[a-z0-9][-a-z0-9.]{0,240}[a-z0-9]", fullmatch=True)
_checks = st.lists(
    st.builds(
        Check,
        name=st.text(min_size=1, max_size=300),
        verdict=st.sampled_from(list(VerdictKind)),
        value=st.none() | st.floats(allow_nan=False, allow_infinity=False),
        limit=st.none() | st.floats(allow_nan=False, allow_infinity=False),
        detail=st.text(max_size=2000),
        canary_rate=st.none() | st.floats(0, 1),
        stable_rate=st.none() | st.floats(0, 1),
        slo=st.none() | st.floats(0, 1),
        ratio=st.none() | st.floats(0, 1e6),
        evidence=st.none() | st.floats(-1e6, 1e6),
        threshold=st.none() | st.floats(0, 100),
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(
    namespace=_names,
    name=_long_names,
    message=st.text(max_size=6000),
    checks=_checks,
    summary=st.text(max_size=4000),
    approvers=st.lists(st.from_regex(r"[UWS][A-Z0-9]{2,30}", fullmatch=True), max_size=100),
)
def test_every_message_stays_within_slacks_limits(  # noqa: PLR0917 (hypothesis passes them by name)
    namespace: str, name: str, message: str, checks: list[Check], summary: str, approvers: list[str]
) -> None:
    verdict = Verdict(VerdictKind.FAIL, tuple(checks), enough_data=False, summary=summary)
    snapshot = RolloutSnapshot(
        **{**BASE.__dict__, "rollout": f"{namespace}/{name}", "message": message, "verdict": verdict, "approval": "k"}
    )
    request = RequestApproval("approval-a10e06a5a254-3", 4, message, tuple(approvers), "#deploys")
    within_limits(blocks.parent(snapshot, links={"x": "https://x/" + "y" * 500}, buttons=True))
    within_limits(blocks.event(snapshot, Notify("k", "rollout.check-failed", Level.FAILURE, message, verdict)))
    within_limits(blocks.approval(snapshot, request))
    within_limits(blocks.resolved(snapshot, ApprovalResolved("k", 4, Resolution.CLOSED, detail=message), message))


# --- words and numbers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "shown"),
    [(0.071, "7.1%"), (0.001, "0.10%"), (0.0123, "1.2%"), (0.00012, "0.012%"), (0.124, "12%"), (0.0, "0%"),
     (1.0, "100%"), (None, "n/a"), (float("nan"), "n/a")],
)  # fmt: skip
def test_a_rate_is_a_share_of_requests_with_two_significant_digits(rate: float | None, shown: str) -> None:
    assert pct(rate) == shown


def test_a_ratio_check_reads_as_rates_never_as_a_percentage_of_a_percentage() -> None:
    check = Check("errorRate", VerdictKind.FAIL, 71.0, 2.0, canary_rate=0.071, stable_rate=0.001, slo=0.01, ratio=71.0)
    assert check_line(check) == "canary 7.1% errors vs stable 0.10%, SLO 1%"
    absolute = Check("latency", VerdictKind.PASS, 0.004, 0.01, canary_rate=0.004, slo=0.01, test="absolute")
    assert check_line(absolute) == "canary 0.40% slow, SLO 1% slow"
    assert check_line(Check("errorRate", VerdictKind.HOLD, None, 2.0)) == "errorRate: no data yet"
    assert check_line(Check("queue_depth", VerdictKind.PASS, 12.5, 30.0, test="gauge")) == "queue_depth 12.5 (limit 30)"
    assert (bound(0.005), count(1464.6), count(19000.2)) == ("0.5%", "1,465", "19,000")


def test_the_decision_sentence_comes_first_and_the_statistics_only_in_a_details_line() -> None:
    snapshot, note = EVENTS["step-passed"]
    message = blocks.event(snapshot, note)
    head = message.blocks[0]["text"]["text"]
    assert head.startswith(":information_source: step 1/6 passed at 5%: pass:")
    assert "interval" not in head and "evidence" not in head and "|" not in head
    [details] = [b for b in message.blocks if b["type"] == "context"]
    assert "always-valid interval" in details["elements"][0]["text"]
    assert "evidence 5.43 (decides at 3)" in details["elements"][0]["text"]


def test_times_are_shown_in_each_readers_time_zone() -> None:
    at = datetime(2025, 3, 4, 12, 4, tzinfo=UTC)
    message = blocks.resolved(
        RolloutSnapshot(**{**BASE.__dict__, "at": at}), ApprovalResolved("k", 3, Resolution.APPROVED, by="U012AB3CD")
    )
    assert f"*Approved* by <@U012AB3CD> at <!date^{int(at.timestamp())}^{{time}}|12:04 UTC>" in json.dumps(
        message.blocks
    ).replace("\\u2192", "→")


# --- the approval button ---------------------------------------------------------------------------


def test_the_button_value_carries_the_rollout_the_request_and_the_step() -> None:
    ref = ApprovalRef("shop", "recommendations", "approval-a10e06a5a254-3", 4)
    assert ApprovalRef.decode(ref.encode()) == ref
    assert len(ref.encode()) <= MAX_VALUE


def test_a_name_too_long_for_a_button_is_carried_as_a_digest_and_resolved_back() -> None:
    ref = ApprovalRef("shop", "r" * 253, "approval-a10e06a5a254-3", 4)
    value = ref.encode()
    assert len(value) <= MAX_VALUE
    assert digest(ref.rollout) in value
    assert ApprovalRef.decode(value, {digest(ref.rollout): ref.rollout}.get) == ref
    with pytest.raises(ValueError, match="does not know"):
        ApprovalRef.decode(value)


@pytest.mark.parametrize(
    "value", ["", "{", "[]", '{"v":2}', '{"v":1,"rollout":"no-slash","key":"k","step":1}', '{"v":1,"rollout":"a/b"}']
)
def test_values_that_are_not_ours_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="button value"):
        ApprovalRef.decode(value)
