"""The one place where rollout retries (tenacity): finite attempts, exponential backoff with jitter,
and a wall-clock deadline. Adapters make one attempt and raise typed errors; the runtime decides
here which of those are worth another try. An error that says how long to wait (a ``retry_after``
attribute, e.g. ``SlackRateLimited`` carrying Slack's ``Retry-After``) is waited for exactly that
long; a wait that would end past the deadline is not started (the last error is raised instead).
Nothing else in the package imports tenacity. The one other loop that tries again is not a call:
an informer's watch connection that drops reconnects with its own bounded, jittered backoff
(``kube/informers.py``), because a cache must be kept for as long as the daemon runs.

``SLACK_CALLS`` is built on first use: it names slack-sdk's rate-limit error, and ``rollout
simulate`` imports this module (through the shell it runs) without ever talking to Slack.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    stop_before_delay,
    wait_exponential_jitter,
)

from rollout.errors import KubeConflict, MetricsUnavailable, RouteConflict

T = TypeVar("T")
log = logging.getLogger("rollout.retrying")


@dataclass(frozen=True)
class RetryPolicy:
    """Which errors to retry, how often, and for how long at most."""

    name: str
    retry_on: tuple[type[BaseException], ...]
    attempts: int = 5
    deadline_seconds: float = 10.0
    initial_delay: float = 0.05
    max_delay: float = 2.0

    def call(self, fn: Callable[[], T], *, sleep: Callable[[float], None] = time.sleep) -> T:
        """Run ``fn`` until it succeeds, raises a non-retryable error, or the budget runs out
        (then the last error is raised as it was). ``sleep`` waits between attempts (tests pass a recorder)."""
        backoff = wait_exponential_jitter(multiplier=self.initial_delay, max=self.max_delay, jitter=self.initial_delay)

        def _wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            hinted = getattr(exc, "retry_after", None)
            if isinstance(hinted, int | float) and not isinstance(hinted, bool) and hinted > 0:
                return float(hinted)  # the server said how long; backing off shorter only earns another refusal
            return float(backoff(state))

        def _log(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "retrying",
                extra={
                    "event": "retry",
                    "policy": self.name,
                    "attempt": state.attempt_number,
                    "error": str(exc),
                },
            )

        retrying = Retrying(
            sleep=sleep,
            retry=retry_if_exception_type(self.retry_on),
            stop=stop_after_attempt(self.attempts)
            | stop_after_delay(self.deadline_seconds)
            | stop_before_delay(self.deadline_seconds),
            wait=_wait,
            before_sleep=_log,
            reraise=True,
        )
        return retrying(fn)


ROUTE_WRITES = RetryPolicy("route-write", (RouteConflict,), attempts=5, deadline_seconds=15.0)
"""A conditional route write lost a race: re-read, recompute, write again."""

KUBE_WRITES = RetryPolicy("kube-write", (KubeConflict,), attempts=5, deadline_seconds=15.0)
"""A conditional status/object write lost a race."""

METRICS_READS = RetryPolicy("metrics-read", (MetricsUnavailable,), attempts=3, deadline_seconds=8.0, initial_delay=0.2)
"""Prometheus was unreachable or answered 5xx: worth a short retry, never a long one."""

if TYPE_CHECKING:
    SLACK_CALLS: RetryPolicy
    """Slack answered 429 ``ratelimited`` (nothing was posted): wait what its ``Retry-After`` says and
    try again, for up to a minute (the notification sender's time, never a reconcile's). Other Slack
    errors are not retried."""


def __getattr__(name: str) -> RetryPolicy:
    """``SLACK_CALLS``, built on first use (see the module docstring)."""
    if name != "SLACK_CALLS":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from rollout.notifiers.slack import SlackRateLimited  # noqa: PLC0415 - see the module docstring

    policy = RetryPolicy(
        "slack-call", (SlackRateLimited,), attempts=4, deadline_seconds=60.0, initial_delay=1.0, max_delay=8.0
    )
    globals()["SLACK_CALLS"] = policy
    return policy
