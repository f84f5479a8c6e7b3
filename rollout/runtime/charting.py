"""SVG chart of a simulation: canary weight over time, and each judged SLO value against its limit.

Owns only string building (no plotting library, no I/O): the caller writes the returned text.
"""

from __future__ import annotations

from html import escape

from rollout.runtime.simulating import Simulation

_W, _H, _PAD = 900, 250, 50
_COLORS = {"errorRate": "#d62728", "latency": "#9467bd"}


def render_svg(sim: Simulation) -> str:
    """Two stacked panels sharing the time axis; thresholds dashed; the fault start marked."""
    end = max(sim.ended_at, 1.0)
    weight_points = [(e.seconds, float(e.canary)) for e in sim.events]
    series: dict[str, list[tuple[float, float]]] = {}
    limits: dict[str, float] = {}
    for event in sim.events:
        if event.verdict is None:
            continue
        for check in event.verdict.checks:
            if check.value is None:
                continue
            series.setdefault(check.name, []).append((event.seconds, check.value * 100))
            if check.limit is not None:
                limits[check.name] = check.limit * 100
    top = max([v for pts in series.values() for _, v in pts] + list(limits.values()) + [1.0]) * 1.15
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{2 * _H + 40}" '
        f'font-family="sans-serif" font-size="12">',
        f'<text x="{_PAD}" y="20" font-size="14">{escape(sim.policy.key)}: {sim.scenario.value} -> '
        f"{escape(sim.state.phase.value)}</text>",
    ]
    parts += _panel(30, "canary weight (%)", 100.0, end)
    parts.append(_polyline(_step_points(weight_points), 30, 100.0, end, "#1f77b4"))
    parts += _panel(30 + _H, "judged value (%), limits dashed", top, end)
    for i, (name, points) in enumerate(sorted(series.items())):
        color = _COLORS.get(name, ["#2ca02c", "#ff7f0e", "#8c564b"][i % 3])
        parts.append(_polyline(points, 30 + _H, top, end, color))
        if name in limits:
            y = _y(limits[name], 30 + _H, top)
            parts.append(
                f'<line x1="{_PAD}" x2="{_W - _PAD}" y1="{y:.1f}" y2="{y:.1f}" stroke="{color}" '
                f'stroke-dasharray="6 4"/>'
            )
        parts.append(f'<text x="{_W - _PAD + 4}" y="{50 + _H + 16 * i}" fill="{color}">{escape(name)}</text>')
    if sim.spike_at is not None:
        x = _x(sim.spike_at, end)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="30" y2="{30 + 2 * _H}" stroke="#777" stroke-dasharray="2 3"/>'
            f'<text x="{x + 3:.1f}" y="44" fill="#777">fault</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _panel(top: int, title: str, ymax: float, end: float) -> list[str]:
    bottom = top + _H - _PAD
    return [
        f'<rect x="{_PAD}" y="{top}" width="{_W - 2 * _PAD}" height="{_H - _PAD}" fill="none" stroke="#ccc"/>',
        f'<text x="{_PAD}" y="{top - 4}">{escape(title)}</text>',
        f'<text x="{_PAD - 6}" y="{top + 10}" text-anchor="end">{ymax:.3g}</text>',
        f'<text x="{_PAD - 6}" y="{bottom}" text-anchor="end">0</text>',
        f'<text x="{_W - _PAD}" y="{bottom + 16}" text-anchor="end">{end / 60:.1f} min</text>',
    ]


def _step_points(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for t, v in points:
        if out:
            out.append((t, out[-1][1]))
        out.append((t, v))
    return out


def _polyline(points: list[tuple[float, float]], top: int, ymax: float, end: float, color: str) -> str:
    coords = " ".join(f"{_x(t, end):.1f},{_y(v, top, ymax):.1f}" for t, v in points)
    return f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2"/>'


def _x(seconds: float, end: float) -> float:
    return _PAD + (_W - 2 * _PAD) * seconds / end


def _y(value: float, top: int, ymax: float) -> float:
    return top + (_H - _PAD) * (1 - min(value, ymax) / ymax)
