"""Shared pytest configuration: registers the harness fixtures (real kube-apiserver, Prometheus)."""

pytest_plugins = [
    "tests.harness.kube_fixtures",
    "tests.harness.prometheus_fixtures",
    "tests.harness.slack_fixtures",
]
