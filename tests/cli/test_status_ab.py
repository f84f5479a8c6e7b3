"""``rollout status`` says when an A/B step's managed route sends matching requests to the canary."""

from __future__ import annotations

from rollout.cli.viewing import _render_one


def test_status_shows_the_managed_route_of_an_a_b_step() -> None:
    raw = {
        "metadata": {"namespace": "shop", "name": "checkout-ab"},
        "status": {"phase": "Progressing", "step": 1, "steps": 3, "canaryWeight": 0, "match": "X-Experiment-ID=beta"},
    }
    shown = _render_one(raw, None, verbose=False)
    assert "A/B        requests with X-Experiment-ID=beta also go to the canary" in shown
    raw["status"]["match"] = ""  # type: ignore[index]
    assert "A/B" not in _render_one(raw, None, verbose=False)
