"""Slack notifier: one live thread per rollout run, approvals updated in place, answers to clicks (slack-sdk).

Owns where a run's messages go and how they are kept: the run's parent message (posted on the run's
first message, then updated in place with ``chat.update`` on every ``update``), events as replies
in its thread (failures also ``reply_broadcast`` to the channel), the approval request (in the
thread when approvals are asked in the notification channel, else top-level in the approvals
channel with a pointer in the thread), and its update in place once resolved. It also answers a
clicker privately (``response_url``) and lists the members of a user group (``usergroups.users.list``,
cached for ``group_seconds``). What the messages say is ``blocks``' business.

A restarted daemon keeps the thread: the thread's ``ts`` is persisted in status by the runtime
(``on_thread`` is called once per new thread), and every message carries metadata (``threads``), so
the thread's replies are found again with ``conversations.replies`` when an approval request must
be found (read once per continued thread, only then: a restart costs no read per rollout); when the
thread was posted but not recorded (a crash in between), the parent is found with
``conversations.history``, provided the channel ID is known (a channel given by ID, or learnt
earlier by this process). Channels: a run's
messages go to the policy's notification channel, else ``default_channel``, else nowhere.

It makes one attempt per call and never sleeps or retries (a rate limit raises ``SlackRateLimited``
with Slack's ``Retry-After``; ``rollout.runtime.retrying.SLACK_CALLS`` decides whether to try again);
failures become ``NotifierError`` subclasses naming the method, the channel and Slack's error code.
It must not import the runtime or kube layers, nor read settings or the environment.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.webhook import WebhookClient

from rollout.core.actions import ApprovalResolved, Notify, RequestApproval
from rollout.core.states import ChatThread
from rollout.errors import NotifierError
from rollout.notifiers import blocks
from rollout.notifiers.base import RolloutSnapshot
from rollout.notifiers.blocks import APPROVAL_BLOCK, APPROVE_ACTION, REJECT_ACTION, ApprovalRef, Rendered
from rollout.notifiers.threads import REPLY_EVENT, RUN_EVENT, Posted, Thread, Threads, metadata, ours, remember, started

__all__ = ["APPROVAL_BLOCK", "APPROVE_ACTION", "REJECT_ACTION", "ApprovalRef", "SlackError", "SlackNotifier"]
log = logging.getLogger("rollout.slack")
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,}")
_PAGES = 5  # history / replies pages read to find a run's messages (200 each)


class SlackError(NotifierError):
    """Slack answered ``ok: false`` (or could not be reached: ``code`` is ``connection_error``)."""

    def __init__(self, method: str, channel: str | None, code: str, detail: str = "") -> None:
        where = f" to {channel}" if channel else ""
        super().__init__(f"slack {method}{where} failed: {code}" + (f" ({detail})" if detail else ""))
        self.method, self.channel, self.code = method, channel, code


class SlackRateLimited(SlackError):
    """Slack answered HTTP 429 ``ratelimited``; nothing was posted, so trying again is safe."""

    def __init__(self, method: str, channel: str | None, retry_after: float) -> None:
        super().__init__(method, channel, "ratelimited", f"retry after {retry_after:g}s")
        self.retry_after = retry_after


class SlackNotifier:
    """Keeps each run's thread in Slack through ``client`` (one attempt per call); see the module docstring.

    ``links`` maps a label to a URL template with ``{namespace}``, ``{name}`` and ``{rollout}``
    (a dashboard, the runbook), shown under the parent message. ``response_prefix``: the only URLs
    ``respond`` posts to (Slack's ``https://hooks.slack.com/``).
    """

    def __init__(
        self,
        client: WebClient,
        *,
        default_channel: str | None = None,
        links: Mapping[str, str] | None = None,
        on_thread: Callable[[str, ChatThread], None] | None = None,
        response_prefix: str = "https://hooks.slack.com/",
        group_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.default_channel = default_channel
        self.links = dict(links or {})
        self.on_thread = on_thread
        self.response_prefix = response_prefix
        self.group_seconds = group_seconds
        self.threads = Threads()
        self._clock = clock
        self._ids: dict[str, str] = {}  # channel name (without #) -> ID, learnt from Slack's answers
        self._loose: dict[str, Posted] = {}  # approval requests posted outside any thread, by key
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    @classmethod
    def connect(
        cls,
        token: str,
        *,
        base_url: str = WebClient.BASE_URL,
        timeout: float = 10.0,
        **kwargs: Any,
    ) -> SlackNotifier:
        """A notifier over a fresh ``WebClient`` whose own retry handlers are disabled."""
        client = WebClient(token=token, base_url=base_url, timeout=int(timeout), retry_handlers=[])
        return cls(client, **kwargs)

    def check(self) -> str:
        """``auth.test``: the token works; returns the bot's user id."""
        answer = self._call("auth.test", None, self.client.auth_test)
        return str(answer.get("user_id", ""))

    # --- the Notifier protocol ---------------------------------------------------------------

    def notify(self, snapshot: RolloutSnapshot, note: Notify) -> None:
        thread = self._thread(snapshot)
        if thread is None:
            channel = snapshot.channel or self.default_channel
            if channel is not None:
                self._post(channel, blocks.top_level(snapshot, note))
            return
        key = f"event:{note.key}"
        if key in thread.posted:
            return  # posted before a restart (found in the thread)
        rendered = blocks.event(snapshot, note)
        answer = self._post(
            thread.channel,
            rendered,
            thread_ts=thread.ts,
            reply_broadcast=blocks.broadcast(note),
            metadata=metadata(REPLY_EVENT, snapshot.rollout, snapshot.run, key),
        )
        thread.posted[key] = Posted(thread.channel, str(answer["ts"]))

    def request_approval(self, snapshot: RolloutSnapshot, request: RequestApproval) -> None:
        channel = request.channel
        if channel is None:
            return  # the policy asks for CLI approvals only
        key = f"approval:{request.key}"
        thread = self._thread(snapshot)
        if thread is not None:
            self._read_replies(thread)
        if thread is not None and key in thread.posted:
            return
        rendered = blocks.approval(snapshot, request)
        meta = metadata(REPLY_EVENT, snapshot.rollout, snapshot.run, key, question=request.message[:200])
        if thread is not None and self._same(channel, thread.channel):
            answer = self._post(thread.channel, rendered, thread_ts=thread.ts, metadata=meta)
            thread.posted[key] = Posted(thread.channel, str(answer["ts"]), request.message)
            return
        answer = self._post(channel, rendered, metadata=meta)
        where = Posted(str(answer["channel"]), str(answer["ts"]), request.message)
        if thread is None:
            with self._lock:
                self._loose[f"{snapshot.rollout}:{request.key}"] = where
                while len(self._loose) > 10_000:
                    self._loose.pop(next(iter(self._loose)))
            return
        pointer = Rendered(
            f"Approval of step {request.number} asked in <#{where.channel}>",
            [blocks.section(f":raised_hand: Approval of step {request.number} asked in <#{where.channel}>")],
        )
        self._post(
            thread.channel,
            pointer,
            thread_ts=thread.ts,
            metadata=metadata(
                REPLY_EVENT,
                snapshot.rollout,
                snapshot.run,
                key,
                channel=where.channel,
                ts=where.ts,
                question=request.message[:200],
            ),
        )
        thread.posted[key] = where

    def approval_resolved(self, snapshot: RolloutSnapshot, resolved: ApprovalResolved) -> None:
        """Update the approval request in place (no buttons, who and when); say it anew if it is not found."""
        thread = self._thread(snapshot)
        if thread is not None:
            self._read_replies(thread)
        key = f"approval:{resolved.key}"
        with self._lock:
            where = (
                thread.posted.get(key)
                if thread is not None
                else self._loose.pop(f"{snapshot.rollout}:{resolved.key}", None)
            )
        if where is not None:
            rendered = blocks.resolved(snapshot, resolved, where.question)
            self._call(
                "chat.update",
                where.channel,
                lambda: self.client.chat_update(
                    channel=where.channel, ts=where.ts, text=rendered.text, blocks=rendered.blocks
                ),
            )
            return
        rendered = blocks.resolved(snapshot, resolved)
        if thread is not None:
            self._post(thread.channel, rendered, thread_ts=thread.ts)
        elif snapshot.approval_channel is not None:
            self._post(snapshot.approval_channel, rendered)

    def update(self, snapshot: RolloutSnapshot) -> None:
        """Refresh the run's parent message (``chat.update``; nothing when it already shows this)."""
        thread = self._thread(snapshot)
        if thread is None:
            return
        rendered = self._parent(snapshot, thread.channel)
        shown = json.dumps(rendered.blocks, sort_keys=True)
        if shown == thread.parent:
            return
        self._call(
            "chat.update",
            thread.channel,
            lambda: self.client.chat_update(
                channel=thread.channel, ts=thread.ts, text=rendered.text, blocks=rendered.blocks
            ),
        )
        thread.parent = shown

    def respond(self, response_url: str, text: str) -> None:
        """An ephemeral answer to the person who clicked, through the click's ``response_url``."""
        if not response_url.startswith(self.response_prefix):
            raise SlackError("response_url", None, "refused", f"not under {self.response_prefix}")
        body = {"response_type": "ephemeral", "replace_original": False, "text": text[:3000]}
        try:
            answer = WebhookClient(response_url, timeout=int(self.client.timeout), retry_handlers=[]).send_dict(body)
        except (SlackClientError, OSError) as e:
            raise SlackError("response_url", None, "connection_error", str(e) or type(e).__name__) from e
        if answer.status_code == 429:
            raise SlackRateLimited("response_url", None, _retry_after(answer.headers))
        if answer.status_code != 200:
            raise SlackError("response_url", None, f"http_{answer.status_code}", str(answer.body)[:200])

    def members(self, group: str) -> frozenset[str]:
        """The users of user group ``group`` (``usergroups.users.list``), cached for ``group_seconds``."""
        now = self._clock()
        with self._lock:
            cached = self._groups.get(group)
        if cached is not None and cached[0] > now:
            return cached[1]
        answer = self._call("usergroups.users.list", None, lambda: self.client.usergroups_users_list(usergroup=group))
        users = frozenset(str(u) for u in answer.get("users") or () if isinstance(u, str))
        with self._lock:
            self._groups[group] = (now + self.group_seconds, users)
        return users

    # --- the run's thread ----------------------------------------------------------------------

    def _thread(self, s: RolloutSnapshot) -> Thread | None:
        """The run's thread: remembered, persisted (its replies read back), found, or posted now."""
        if not s.run:
            return None
        thread = self.threads.get(s.rollout, s.run)
        if thread is not None:
            return thread
        if s.thread is not None and s.thread.run == s.run:
            thread = Thread(s.rollout, s.run, s.thread.channel, s.thread.ts, read=False)
            self.threads.put(thread)
            return thread
        channel = s.channel or self.default_channel
        if channel is None:
            return None
        thread = self._find(s, channel)
        if thread is None:
            rendered = self._parent(s, channel)
            answer = self._post(channel, rendered, metadata=metadata(RUN_EVENT, s.rollout, s.run))
            thread = Thread(s.rollout, s.run, str(answer["channel"]), str(answer["ts"]))
            thread.parent = json.dumps(rendered.blocks, sort_keys=True)
        self.threads.put(thread)
        if self.on_thread is not None:
            self.on_thread(s.rollout, ChatThread(thread.channel, thread.ts, s.run))
        return thread

    def _find(self, s: RolloutSnapshot, channel: str) -> Thread | None:
        """The run's parent already in the channel (posted before a crash that kept it from being recorded)."""
        cid = self._id(channel)
        since = started(s.run)
        if cid is None or since is None:
            return None
        cursor: str | None = None
        try:
            for _ in range(_PAGES):
                page = self._call(
                    "conversations.history",
                    cid,
                    partial(
                        self.client.conversations_history,
                        channel=cid,
                        oldest=f"{since.timestamp() - 60:.6f}",
                        limit=200,
                        include_all_metadata=True,
                        cursor=cursor,
                    ),
                )
                for message in page.get("messages") or ():
                    if isinstance(message, dict) and ours(message, RUN_EVENT, s.rollout, s.run) is not None:
                        return Thread(s.rollout, s.run, cid, str(message.get("ts")), read=False)
                cursor = str((page.get("response_metadata") or {}).get("next_cursor") or "") or None
                if cursor is None:
                    break
        except SlackError as e:
            log.warning("cannot look for the run's thread", extra={"event": "slack.lookup-failed", "error": str(e)})
        return None

    def _read_replies(self, thread: Thread) -> None:
        """What a continued thread holds already, read once (best effort: without it, a resolution is
        posted anew instead of updating the request)."""
        if thread.read:
            return
        thread.read = True
        cursor: str | None = None
        try:
            for _ in range(_PAGES):
                page = self._call(
                    "conversations.replies",
                    thread.channel,
                    partial(
                        self.client.conversations_replies,
                        channel=thread.channel,
                        ts=thread.ts,
                        limit=200,
                        include_all_metadata=True,
                        cursor=cursor,
                    ),
                )
                remember(thread, [m for m in page.get("messages") or () if isinstance(m, dict)])
                cursor = str((page.get("response_metadata") or {}).get("next_cursor") or "") or None
                if cursor is None:
                    break
        except SlackError as e:
            log.warning("cannot read the run's thread", extra={"event": "slack.lookup-failed", "error": str(e)})

    def _parent(self, s: RolloutSnapshot, channel: str) -> Rendered:
        buttons = s.approval_channel is not None and self._same(s.approval_channel, channel)
        return blocks.parent(s, links=self.links, buttons=buttons)

    def _same(self, channel: str, other: str) -> bool:
        """Whether two channel references (``#name`` or ID) name the same channel, as far as known."""
        if channel == other:
            return True
        known = self._id(channel)
        return known is not None and known == self._id(other)

    def _id(self, channel: str) -> str | None:
        if _CHANNEL_ID.fullmatch(channel):
            return channel
        with self._lock:
            return self._ids.get(channel.removeprefix("#"))

    def _post(self, channel: str, rendered: Rendered, **extra: Any) -> Mapping[str, Any]:
        answer = self._call(
            "chat.postMessage",
            channel,
            lambda: self.client.chat_postMessage(
                channel=channel, text=rendered.text, blocks=blocks.fits(rendered.blocks), unfurl_links=False, **extra
            ),
        )
        cid = str(answer.get("channel", ""))
        if cid and not _CHANNEL_ID.fullmatch(channel):
            with self._lock:
                self._ids[channel.removeprefix("#")] = cid
        return answer

    def _call(self, method: str, channel: str | None, send: Callable[[], Any]) -> Mapping[str, Any]:
        try:
            response = send()
        except SlackApiError as e:
            status = getattr(e.response, "status_code", 0)
            if status == 429:
                raise SlackRateLimited(method, channel, _retry_after(e.response.headers)) from e
            code = str(e.response.get("error", f"http_{status}"))
            detail = "; ".join(str(m) for m in e.response.get("errors", ()) or ())
            raise SlackError(method, channel, code, detail) from e
        except (SlackClientError, OSError) as e:
            raise SlackError(method, channel, "connection_error", str(e) or type(e).__name__) from e
        data: Mapping[str, Any] = response.data if isinstance(response.data, dict) else {}
        return data


def _retry_after(headers: Mapping[str, Any]) -> float:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) else value
            try:
                return max(0.0, float(raw))
            except (TypeError, ValueError):
                break
    return 1.0
