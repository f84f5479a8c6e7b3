"""Settings from the environment: names, nesting, validation errors."""

from __future__ import annotations

import pytest

from rollout.errors import SettingsError
from rollout.settings import PrometheusSettings, load_settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("URL", "BEARER_TOKEN", "USERNAME", "PASSWORD", "HEADERS", "CA_FILE", "VERIFY_TLS"):
        monkeypatch.delenv(f"ROLLOUT_PROMETHEUS__{name}", raising=False)
    prometheus = load_settings().prometheus
    assert prometheus == PrometheusSettings()
    assert prometheus.url == "http://127.0.0.1:9090"
    assert prometheus.verify_tls
    assert prometheus.timeout_seconds == 10


def test_prometheus_section_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLOUT_PROMETHEUS__URL", "https://prom.monitoring:9090")
    monkeypatch.setenv("ROLLOUT_PROMETHEUS__BEARER_TOKEN", "s3cret")
    monkeypatch.setenv("ROLLOUT_PROMETHEUS__CA_FILE", "/etc/ca.pem")
    monkeypatch.setenv("ROLLOUT_PROMETHEUS__TIMEOUT_SECONDS", "2.5")
    monkeypatch.setenv("ROLLOUT_PROMETHEUS__HEADERS", '{"X-Scope-OrgID": "team-a"}')
    monkeypatch.setenv("ROLLOUT_PROMETHEUS__LATENCY_BUCKETS_MS", "[5, 50, 500]")
    prometheus = load_settings().prometheus
    assert prometheus.url == "https://prom.monitoring:9090"
    assert prometheus.bearer_token is not None
    assert prometheus.bearer_token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(prometheus)
    assert str(prometheus.ca_file) == "/etc/ca.pem"
    assert prometheus.timeout_seconds == 2.5
    assert prometheus.headers == {"X-Scope-OrgID": "team-a"}
    assert prometheus.latency_buckets_ms == (5, 50, 500)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ROLLOUT_PROMETHEUS__URL": "prom:9090"}, "prometheus.url"),
        ({"ROLLOUT_PROMETHEUS__USERNAME": "u"}, "needs both username and password"),
        (
            {
                "ROLLOUT_PROMETHEUS__USERNAME": "u",
                "ROLLOUT_PROMETHEUS__PASSWORD": "p",
                "ROLLOUT_PROMETHEUS__BEARER_TOKEN": "t",
            },
            "not both",
        ),
        ({"ROLLOUT_PROMETHEUS__CA_FILE": "/ca.pem", "ROLLOUT_PROMETHEUS__VERIFY_TLS": "false"}, "verify_tls"),
        ({"ROLLOUT_PROMETHEUS__TIMEOUT_SECONDS": "0"}, "timeout_seconds"),
    ],
)
def test_invalid_settings_raise_settings_error(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError, match=message):
        load_settings()
