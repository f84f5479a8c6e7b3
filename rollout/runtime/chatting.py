"""Slack's part of the daemon, wired from settings: the notifier behind its delivery queue, the
run threads recorded in status, the click handler (Socket Mode or the HTTP Request URL) and the
answers to clicks.

Owns which pieces exist for which settings (no bot token: nothing is sent and no click is taken;
``slack.mode`` ``socket`` with an app-level token: a Socket Mode connection while ``leading()``;
``http`` with a signing secret: the ``/slack/interactions`` handler for the HTTP server) and the one
status write it makes itself: when the notifier posted a run's parent message, its ``ts`` is
written into ``status.state.thread`` at once (leadership checked, conditional on the version read,
and only if the stored state is still that run), so a restarted or failed-over daemon continues
the same thread. A crash in the milliseconds between Slack's answer and that write can leave the
thread unrecorded; the notifier then finds the parent by its metadata when the channel ID is known
(``notifiers.slack``), otherwise a second parent message is posted for that run. It decides nothing
about rollouts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from rollout.core import persisting
from rollout.core.persisting import StateError
from rollout.core.states import ChatThread, Command
from rollout.errors import KubeError, NotLeader
from rollout.notifiers.base import Notifier
from rollout.notifiers.blocks import digest
from rollout.notifiers.null import NullNotifier
from rollout.notifiers.slack import SlackNotifier
from rollout.runtime.answering import Answers
from rollout.runtime.delivering import Delivery
from rollout.runtime.interacting import SlackInteractions
from rollout.runtime.listening import SocketModeListener
from rollout.runtime.reconciling import RolloutWrites
from rollout.runtime.retrying import KUBE_WRITES
from rollout.runtime.serving import Interactions
from rollout.settings import SlackSettings

log = logging.getLogger("rollout.chatting")


class Chat:
    """The daemon's Slack side; see the module docstring.

    ``submit`` records a click's command (returns the RolloutCommand's name), ``approvers_for``
    the policy's approvers of a rollout, ``known`` the rollouts this daemon knows (to resolve a
    hashed button value), ``rollout`` a cached Rollout object, ``owns``/``guard`` the leadership of
    a rollout, ``leading`` whether this replica may hold the Socket Mode connection.
    """

    def __init__(
        self,
        settings: SlackSettings,
        *,
        rollouts: RolloutWrites,
        submit: Callable[[str, str, Command], str | None],
        approvers_for: Callable[[str], Sequence[str] | None],
        known: Callable[[], Sequence[str]],
        rollout: Callable[[str, str], Mapping[str, Any] | None],
        owns: Callable[[str], bool],
        guard: Callable[[str], object],
        leading: Callable[[], bool],
        clock: Callable[[], datetime],
        on_drop: Callable[[], None] | None = None,
    ) -> None:
        self.settings, self.rollouts, self.guard = settings, rollouts, guard
        self.slack: SlackNotifier | None = None
        notifier: Notifier = NullNotifier()
        if settings.bot_token is not None:
            self.slack = SlackNotifier.connect(
                settings.bot_token.get_secret_value(),
                base_url=settings.base_url,
                timeout=settings.timeout_seconds,
                default_channel=settings.default_channel,
                links=settings.links,
                on_thread=self.record_thread,
                response_prefix=settings.response_url_prefix,
                group_seconds=settings.group_cache_seconds,
            )
            notifier = self.slack
        self.delivery = Delivery(notifier, owns=owns, on_drop=on_drop)
        self.answers = Answers(self.delivery.respond, rollout=rollout)
        self.interactions: SlackInteractions | None = None
        self.listener: SocketModeListener | None = None
        if self.slack is None:
            return
        secret = settings.signing_secret.get_secret_value() if settings.signing_secret else None
        by_digest = _digests(known)
        self.interactions = SlackInteractions(
            secret if settings.mode == "http" else None,
            submit,
            approvers_for,
            clock,
            members=self.slack.members,
            respond=self.delivery.respond,
            expect=self.answers.expect,
            resolve=by_digest,
            response_prefix=settings.response_url_prefix,
        )
        if settings.mode == "socket" and settings.app_token is not None:
            interactions = self.interactions
            self.listener = SocketModeListener(
                settings.app_token.get_secret_value(),
                handle=interactions.handle_payload,
                leading=leading,
                base_url=settings.base_url,
                timeout=settings.timeout_seconds,
            )

    @property
    def http(self) -> Interactions | None:
        """The ``POST /slack/interactions`` handler (mode http with a signing secret), else None."""
        s = self.settings
        if self.interactions is None or s.mode != "http" or s.signing_secret is None:
            return None
        return self.interactions.handle

    def warnings(self) -> list[str]:
        """Settings that leave Slack clicks unheard (logged at start-up)."""
        s, out = self.settings, list[str]()
        if s.bot_token is None:
            return out
        if s.mode == "socket" and s.app_token is None:
            out.append("slack.mode is socket but slack.app_token is not set: clicks are not received")
        if s.mode == "socket" and s.signing_secret is not None:
            out.append("slack.signing_secret is set but slack.mode is socket: /slack/interactions is off")
        if s.mode == "http" and s.signing_secret is None:
            out.append("slack.mode is http but slack.signing_secret is not set: clicks are not received")
        return out

    def start(self) -> None:
        self.delivery.start()
        if self.listener is not None:
            self.listener.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self.listener is not None:
            self.listener.stop()
        self.delivery.stop(timeout=timeout)

    def record_thread(self, key: str, thread: ChatThread) -> None:
        """Write the run's thread into ``status.state.thread`` now (see the module docstring)."""
        namespace, _, name = key.partition("/")

        def write() -> None:
            self.guard(key)
            obj = self.rollouts.get(namespace, name)
            state = obj.state()
            if state.run_id != thread.run or state.thread == thread:
                return
            status = {**obj.status, "state": persisting.dump(replace(state, thread=thread))}
            self.guard(key)
            self.rollouts.write_status(obj, status)

        try:
            KUBE_WRITES.call(write)
        except (KubeError, NotLeader, StateError) as e:
            log.warning(
                "the run's Slack thread is not recorded",
                extra={"event": "slack.thread-unrecorded", "rollout": key, "error": str(e)},
            )
            return
        log.info("Slack thread recorded", extra={"event": "slack.thread", "rollout": key, "ts": thread.ts})


def _digests(known: Callable[[], Sequence[str]]) -> Callable[[str], str | None]:
    """Resolve a ``sha256:`` rollout reference (long names in button values) against the known rollouts."""

    def resolve(value: str) -> str | None:
        return next((key for key in known() if digest(key) == value), None)

    return resolve
