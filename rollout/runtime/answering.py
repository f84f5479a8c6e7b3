"""Telling a person who clicked Approve or Reject what their click did, once the daemon has acted on it.

Owns the clicks waiting for an answer (by the RolloutCommand their click became) and the words of
that answer, which come from the command's result as the daemon recorded it in its ``status``
(``Accepted`` / ``Ignored`` / ``Refused`` with a message) and the rollout as it is now: approved,
rejected, not an approver, already decided (and by whom), or an old revision's button. The answer
goes out through ``respond`` (the notifier's ``response_url`` answer, queued). Clicks are kept in
memory only (bounded, for the 30 minutes a ``response_url`` is valid): a daemon that restarts
between a click and its handling loses that ephemeral answer (the approval message and the parent
message still show the outcome). It decides nothing and writes nothing to Kubernetes.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rollout.core.states import CommandKind
from rollout.notifiers.wording import person

_LIMIT = 1000
_TTL = 1800.0  # a response_url answers for 30 minutes


@dataclass(frozen=True)
class Click:
    """A click that became a RolloutCommand and waits for its answer."""

    response_url: str
    user: str  # the Slack user ID
    kind: CommandKind  # approve or abort (Reject)
    rollout: str  # namespace/name
    step: int  # 1-based
    key: str  # the approval request it answers: approval-<revision>-<step index>


def answer_text(click: Click, phase: str, message: str, rollout: Mapping[str, Any] | None) -> str:
    """What to tell the clicker, truthfully, from the command's result and the rollout now."""
    noun = "approval" if click.kind is CommandKind.APPROVE else "rejection"
    where = f"step {click.step} of {click.rollout}"
    if phase == "Accepted":
        if click.kind is CommandKind.APPROVE:
            return f":white_check_mark: You approved {where}; the rollout goes on."
        return f":no_entry: You rejected {where}; the rollout rolls back to stable."
    if phase == "Refused":
        if "not an approver" in message:
            return f"You are not an approver of {click.rollout}; nothing changed."
        return f"Your {noun} of {where} was refused: {message}"
    status: Mapping[str, Any] = (rollout or {}).get("status") or {}
    current = str(status.get("revision") or "")
    revision = click.key.removeprefix("approval-").rpartition("-")[0]
    if "no longer pending" in message and current and revision and revision != current:
        return (
            f"That button belongs to an old revision ({revision}) of {click.rollout}; the current revision is "
            f"{current}. Nothing changed."
        )
    if "no longer pending" in message or "no approval is pending" in message:
        by = _decided_by(status, click.step)
        return f"{where[0].upper()}{where[1:]} was already decided{f' ({by})' if by else ''}; nothing changed."
    return f"Nothing changed by your {noun} of {where}: {message}"


def _decided_by(status: Mapping[str, Any], step: int) -> str:
    state = status.get("state") or {}
    approvals = state.get("approvals") if isinstance(state, Mapping) else None
    for entry in reversed(approvals if isinstance(approvals, list) else []):
        label, _, who = str(entry).partition(": ")
        if label == f"step {step}" and who:
            return f"approved by {person(who)}"
    aborted = state.get("abortedBy") if isinstance(state, Mapping) else None
    return f"rejected by {person(str(aborted))}" if aborted else ""


class Answers:
    """Clicks waiting for their command's result; ``respond(url, text)`` sends an answer."""

    def __init__(
        self,
        respond: Callable[[str, str], None],
        *,
        rollout: Callable[[str, str], Mapping[str, Any] | None] = lambda ns, name: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._respond, self._rollout, self._clock = respond, rollout, clock
        self._waiting: OrderedDict[tuple[str, str], tuple[float, Click]] = OrderedDict()
        self._early: OrderedDict[tuple[str, str], tuple[float, str, str]] = OrderedDict()  # handled before expect()
        self._lock = threading.Lock()
        self.answered = 0

    def expect(self, namespace: str, command: str, click: Click) -> None:
        """The click became RolloutCommand ``namespace/command``: answer it once that is handled."""
        now = self._clock()
        with self._lock:
            early = self._early.pop((namespace, command), None)
            if early is None:
                self._waiting[(namespace, command)] = (now, click)
                _trim(self._waiting, now)
                return
        self._answer(click, early[1], early[2])

    def handled(self, command: Mapping[str, Any]) -> None:
        """A RolloutCommand's status was written (from the command informer): answer its click, if any."""
        meta, status = command.get("metadata") or {}, command.get("status") or {}
        phase = str(status.get("phase") or "") if isinstance(status, Mapping) else ""
        if not phase or not isinstance(meta, Mapping):
            return
        where = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        message = str(status.get("message") or "")
        now = self._clock()
        spec = command.get("spec") or {}
        with self._lock:
            waiting = self._waiting.pop(where, None)
            if waiting is None:
                if isinstance(spec, Mapping) and spec.get("slackUser"):
                    self._early[where] = (now, phase, message)
                    _trim(self._early, now)
                return
        self._answer(waiting[1], phase, message)

    def _answer(self, click: Click, phase: str, message: str) -> None:
        namespace, _, name = click.rollout.partition("/")
        text = answer_text(click, phase, message, self._rollout(namespace, name))
        self._respond(click.response_url, text)
        self.answered += 1

    def __len__(self) -> int:
        with self._lock:
            return len(self._waiting)


def _trim(table: OrderedDict[tuple[str, str], Any], now: float) -> None:
    while table and (len(table) > _LIMIT or next(iter(table.values()))[0] < now - _TTL):
        table.popitem(last=False)
