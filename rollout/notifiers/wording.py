"""How a verdict's numbers are said to people in chat, so they can be read in five seconds.

Owns the words and number formats of every chat message: a rate is a share of requests written
as a percentage with two significant digits (``0.071`` is "7.1%", ``0.001`` is "0.10%"; never a
percentage of a percentage), an SLO as written ("1%"), counts as whole numbers, a check as one
line ("canary 7.1% errors vs stable 0.10%, SLO 1%"), and a verdict as its decision sentence first
with the statistics (ratio, always-valid interval, evidence, counts) kept for a details line.
Pure functions over ``Verdict``/``Check``; no I/O, no Block Kit (``blocks`` builds the messages).
"""

from __future__ import annotations

import math
from datetime import datetime

from rollout.core.actions import Level
from rollout.core.verdicts import Check, Verdict, VerdictKind

MARK = {
    VerdictKind.PASS: ":large_green_circle:",
    VerdictKind.FAIL: ":red_circle:",
    VerdictKind.HOLD: ":white_circle:",
}
LEVEL = {
    Level.INFO: ":information_source:",
    Level.SUCCESS: ":white_check_mark:",
    Level.WARNING: ":warning:",
    Level.FAILURE: ":rotating_light:",
}
_EVENTS = {"errorRate": "errors", "latency": "slow"}  # what a rate check counts, in one word


def pct(rate: float | None) -> str:
    """A share of requests as a percentage, two significant digits: 0.071 -> 7.1%, 0.001 -> 0.10%."""
    if rate is None or not math.isfinite(rate):
        return "n/a"
    p = rate * 100
    if p == 0:
        return "0%"
    if abs(p) >= 10:
        return f"{p:.0f}%"
    digits = max(0, 1 - math.floor(math.log10(abs(p))))
    return f"{p:.{digits}f}%"


def bound(rate: float | None) -> str:
    """An SLO as people wrote it: 0.01 -> 1%, 0.005 -> 0.5%."""
    if rate is None or not math.isfinite(rate):
        return "n/a"
    return f"{rate * 100:.4g}%"


def count(n: float) -> str:
    """A count of requests: a whole number with thousands separators (rates of counters are fractional)."""
    return f"{round(n):,}"


def number(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4g}"


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: only &, < and > are control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def headline(verdict: Verdict) -> str:
    """The verdict's decision sentence, without the per-check details that follow it."""
    head = verdict.summary.split(" | ", 1)[0].strip()
    return head or f"judge says {verdict.kind.value}"


def check_line(check: Check) -> str:
    """One check in one line, rates as shares of requests: "canary 7.1% errors vs stable 0.10%, SLO 1%"."""
    what = _EVENTS.get(check.name)
    if what is not None and check.canary_rate is None:
        return f"{check.name}: no data yet"
    if what is not None:
        line = f"canary {pct(check.canary_rate)} {what}"
        if check.stable_rate is not None:
            line += f" vs stable {pct(check.stable_rate)}"
        if check.slo is not None:
            line += f", SLO {bound(check.slo)}" + (" slow" if what == "slow" else "")
        return line
    if check.value is None:
        return f"{check.name}: no value"
    return f"{check.name} {number(check.value)} (limit {number(check.limit)})"


def check_details(check: Check) -> str:
    """The statistics behind a check, for a details line: ratio, always-valid interval, evidence."""
    parts: list[str] = []
    if check.ratio is not None:
        ratio = f"ratio {check.ratio:.3g}"
        low, high = check.ratio_low, check.ratio_high
        if low and high is not None:
            ratio += f" (always-valid interval {low:.3g}–{high:.3g})"
        elif low:
            ratio += f" (always-valid interval: at least {low:.3g})"
        elif high is not None:
            ratio += f" (always-valid interval: at most {high:.3g})"
        parts.append(ratio)
    if check.evidence is not None and check.threshold is not None:
        parts.append(f"evidence {check.evidence:.3g} (decides at {check.threshold:.3g})")
    return f"{check.name}: {', '.join(parts)}" if parts else ""


def counts_line(verdict: Verdict) -> str:
    """Requests and errors of each arm that served any ("canary 1,465 requests, 2 errors")."""
    arms = [
        f"{label} {count(arm.requests)} requests, {count(arm.errors)} {'error' if round(arm.errors) == 1 else 'errors'}"
        for label, arm in (("canary", verdict.canary), ("stable", verdict.stable))
        if arm is not None and round(arm.requests) > 0
    ]
    return " · ".join(arms)


def details_line(verdict: Verdict) -> str:
    """Counts and statistics of a verdict in one line (empty when there are none)."""
    parts = [counts_line(verdict), *(check_details(c) for c in verdict.checks)]
    line = " · ".join(p for p in parts if p)
    return line if verdict.enough_data else (f"{line} · not enough data to decide" if line else "not enough data")


def readable(message: str, verdict: Verdict | None) -> str:
    """``message`` with ``verdict``'s long summary (every number) cut to its decision sentence."""
    if verdict is not None and verdict.summary and verdict.summary in message:
        return message.replace(verdict.summary, headline(verdict))
    return message


def when(at: datetime) -> str:
    """A time every reader sees in their own time zone (Slack's date formatting), UTC as the fallback."""
    return f"<!date^{int(at.timestamp())}^{{time}}|{at:%H:%M} UTC>"


def person(who: str) -> str:
    """Who did something: a Slack user as a mention, anyone else (a Kubernetes user) as code."""
    who = who.removeprefix("slack:")
    if who[:1] in ("U", "W") and who.isalnum() and who.isupper():
        return f"<@{who}>"
    return f"`{escape(who)}`" if who else "someone"


def approver(entry: str) -> str:
    """An approver list entry: a user (U…/W…) as a mention, a user group (S…) as a group mention."""
    return f"<!subteam^{entry}>" if entry.startswith("S") else f"<@{entry}>"
