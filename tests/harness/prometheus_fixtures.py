"""Pytest fixtures over ``tests.harness.prometheus`` and ``tests.harness.exporter``.

Owns fixture scopes and clean-up: a module-wide synthetic exporter scraped by a module-wide real
Prometheus (tests use their own backend names, so they do not see each other's traffic), and a
factory for tests that need a server of their own (outages). A missing binary fails the test
loudly with the install command; it never skips. Tests using these fixtures are marked
``@pytest.mark.prometheus``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence

import pytest

from tests.harness.exporter import TrafficExporter
from tests.harness.prometheus import PrometheusServer, find_binary

_names = itertools.count()


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    try:
        return find_binary()
    except FileNotFoundError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="module")
def traffic_exporter() -> Iterator[TrafficExporter]:
    """A running synthetic Envoy exporter on a free loopback port (seed 7)."""
    exporter = TrafficExporter(seed=7).start()
    try:
        yield exporter
    finally:
        exporter.stop()


@pytest.fixture(scope="module")
def prometheus_server(prometheus_binary: str, traffic_exporter: TrafficExporter) -> Iterator[PrometheusServer]:
    """A real Prometheus scraping ``traffic_exporter`` every second."""
    server = PrometheusServer([traffic_exporter.address], binary=prometheus_binary)
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def prometheus_factory(prometheus_binary: str) -> Iterator[Callable[[Sequence[str]], PrometheusServer]]:
    """Start extra servers (scraping the given targets); all are stopped and deleted afterwards."""
    servers: list[PrometheusServer] = []

    def make(targets: Sequence[str]) -> PrometheusServer:
        server = PrometheusServer(targets, binary=prometheus_binary)
        servers.append(server)
        return server.start()

    try:
        yield make
    finally:
        for server in servers:
            server.close()


@pytest.fixture
def backend_names() -> Callable[[str], str]:
    """Unique backend names, so tests sharing the module exporter never see each other's series."""
    return lambda stem: f"{stem}-{next(_names)}"
