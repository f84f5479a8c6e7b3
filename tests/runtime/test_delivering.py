"""Delivery: a rollout's messages keep their order; a stuck or absent Slack never blocks the caller
(the queue is bounded and drops with a counter); parent refreshes are coalesced and a failed one is
sent again later; a replica that no longer holds a rollout sends nothing about it; answers to
clicks go out whichever replica holds the rollout; rate limits wait what Retry-After says."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace

from rollout.core.actions import ApprovalResolved, Notify, RequestApproval, Resolution
from rollout.errors import NotifierError
from rollout.notifiers.base import RolloutSnapshot
from rollout.notifiers.slack import SlackRateLimited
from rollout.runtime.delivering import Delivery
from rollout.runtime.retrying import SLACK_CALLS
from tests.notifiers.samples import APPROVAL, BASE, EVENTS

NOTE = EVENTS["step"][1]


@dataclass
class Notes:
    """A notifier that records calls, and can be made to fail, stall or be rate-limited."""

    sent: list[str] = field(default_factory=list)
    fail: int = 0
    limited: int = 0
    gate: threading.Event = field(default_factory=threading.Event)
    entered: threading.Event = field(default_factory=threading.Event)  # a send has begun

    def __post_init__(self) -> None:
        self.gate.set()

    def _send(self, what: str) -> None:
        self.entered.set()
        self.gate.wait()
        if self.limited:
            self.limited -= 1
            raise SlackRateLimited("chat.postMessage", "#deploys", 3.0)
        if self.fail:
            self.fail -= 1
            raise NotifierError(f"slack chat.postMessage failed: connection_error ({what})")
        self.sent.append(what)

    def notify(self, snapshot: RolloutSnapshot, note: Notify) -> None:
        self._send(f"{snapshot.rollout} {note.key}")

    def request_approval(self, snapshot: RolloutSnapshot, request: RequestApproval) -> None:
        self._send(f"{snapshot.rollout} ask {request.key}")

    def approval_resolved(self, snapshot: RolloutSnapshot, resolved: ApprovalResolved) -> None:
        self._send(f"{snapshot.rollout} {resolved.resolution.value}")

    def update(self, snapshot: RolloutSnapshot) -> None:
        self._send(f"{snapshot.rollout} parent {snapshot.message}")

    def respond(self, response_url: str, text: str) -> None:
        self._send(f"answer {text}")


def _snap(rollout: str = "shop/a", message: str = "") -> RolloutSnapshot:
    return replace(BASE, rollout=rollout, message=message)


def test_messages_of_a_rollout_keep_their_order() -> None:
    notes = Notes()
    delivery = Delivery(notes, call=lambda send: send())
    delivery.start()
    for i in range(20):
        delivery.notify(_snap(), replace(NOTE, key=f"k{i}"))
        delivery.notify(_snap("shop/b"), replace(NOTE, key=f"k{i}"))
    delivery.request_approval(_snap(), APPROVAL)
    delivery.approval_resolved(_snap(), ApprovalResolved(APPROVAL.key, 4, Resolution.APPROVED, by="U1"))
    delivery.drain()
    delivery.stop()
    mine = [s for s in notes.sent if s.startswith("shop/a")]
    assert mine == [*(f"shop/a k{i}" for i in range(20)), f"shop/a ask {APPROVAL.key}", "shop/a approved"]
    assert delivery.sent == 42


def test_a_stuck_slack_never_blocks_the_caller_and_drops_are_counted() -> None:
    notes = Notes()
    notes.gate.clear()  # Slack hangs: the sender is stuck on the first message
    drops: list[int] = []
    delivery = Delivery(notes, capacity=5, call=lambda send: send(), on_drop=lambda: drops.append(1))
    delivery.start()
    delivery.notify(_snap(), replace(NOTE, key="k0"))
    assert notes.entered.wait(5)
    for i in range(1, 50):  # the sender stays stuck: a blocking put would hang here for good
        delivery.notify(_snap(), replace(NOTE, key=f"k{i}"))
    assert delivery.dropped == len(drops) == 50 - 5 - 1  # one in the sender's hands, five queued
    notes.gate.set()
    delivery.drain()
    delivery.stop()
    assert len(notes.sent) == 6


def test_parent_refreshes_are_coalesced_to_the_latest() -> None:
    notes = Notes()
    notes.gate.clear()
    delivery = Delivery(notes, call=lambda send: send())
    delivery.start()
    delivery.notify(_snap(), NOTE)  # occupies the sender
    for i in range(10):
        delivery.update(_snap(message=f"v{i}"))
    notes.gate.set()
    delivery.drain()
    delivery.stop()
    assert notes.sent == [f"shop/a {NOTE.key}", "shop/a parent v9"]


def test_a_failed_parent_refresh_is_sent_again_when_slack_is_back() -> None:
    notes = Notes(fail=1)
    delivery = Delivery(notes, call=lambda send: send(), retry_seconds=0.1)
    delivery.start()
    delivery.update(_snap(message="RolledBack"))
    deadline = time.monotonic() + 5
    while "shop/a parent RolledBack" not in notes.sent and time.monotonic() < deadline:
        time.sleep(0.05)
    delivery.stop()
    assert notes.sent == ["shop/a parent RolledBack"]
    assert (delivery.failed, delivery.stale) == (1, 0)


def test_a_replica_that_no_longer_holds_the_rollout_sends_nothing_about_it_but_answers_clicks() -> None:
    notes = Notes()
    delivery = Delivery(notes, call=lambda send: send(), owns=lambda key: key == "shop/mine")
    delivery.start()
    delivery.notify(_snap("shop/mine"), NOTE)
    delivery.notify(_snap("shop/theirs"), NOTE)
    delivery.update(_snap("shop/theirs"))
    delivery.respond("https://hooks.slack.com/actions/1", "You approved step 4.")
    delivery.drain()
    delivery.stop()
    assert notes.sent == [f"shop/mine {NOTE.key}", "answer You approved step 4."]
    assert delivery.skipped == 2


def test_a_rate_limit_waits_retry_after_on_the_sender_thread() -> None:
    notes = Notes(limited=2)
    slept: list[float] = []
    delivery = Delivery(notes, call=lambda send: SLACK_CALLS.call(send, sleep=slept.append))
    delivery.start()
    delivery.notify(_snap(), NOTE)
    delivery.drain()
    delivery.stop()
    assert slept == [3.0, 3.0]
    assert notes.sent == [f"shop/a {NOTE.key}"]


def test_a_notifier_bug_does_not_kill_the_sender() -> None:
    class Broken(Notes):
        def notify(self, snapshot: RolloutSnapshot, note: Notify) -> None:
            raise KeyError("bug")

    notes = Broken()
    delivery = Delivery(notes, call=lambda send: send())
    delivery.start()
    delivery.notify(_snap(), NOTE)
    delivery.request_approval(_snap(), APPROVAL)
    delivery.drain()
    delivery.stop()
    assert (notes.sent, delivery.failed) == ([f"shop/a ask {APPROVAL.key}"], 1)
