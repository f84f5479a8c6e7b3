"""One corpus of Rollout documents for ``rollout validate`` and the API server alike.

``INVALID`` and ``VALID`` are spec mutations of ``BASE`` (a valid policy with every optional part
set), named for what they exercise: the hostile and careless inputs of issue 10 (items 6 and 7) and
the edges right next to them that must stay legal. ``corpus_documents()`` adds every single-document
file of ``tests/policy/invalid/`` and every example in ``policies/``. Each entry says what both
judges must conclude; ``test_agreement.py`` fails when validate or the API server says otherwise.
The one known gap (``SERVER_CANNOT_SEE``: a ratio's range) is asserted as a gap, so closing it shows.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.harness.kube import REPO_ROOT

INVALID_DIR = Path(__file__).parent / "invalid"
BASE: dict[str, Any] = {
    "router": {"httpRoute": {"name": "web", "namespace": "edge", "ruleName": "main"}},
    "stable": "web-v1",
    "canary": "web-v2",
    "steps": [{"setWeight": 1}, {"pause": {"duration": "90s"}}, {"approval": {"message": "go?"}}, {"setWeight": 100}],
    "analysis": {
        "interval": "15s",
        "window": "1m",
        "stepDuration": "2m",
        "slos": {"errorRate": {"max": "1%"}, "latency": {"percentile": 99, "max": "250ms"}},
        "metrics": [{"name": "saturation", "query": 'max(cpu{{app="{backend}"}}[{window}])', "min": 0, "max": 0.8}],
        "metricLabels": {"backend": "service", "backendValue": "{backend}-svc"},
        "prometheus": {"address": "https://prom.example:9090", "headers": {"X-Scope-OrgID": "team-a"}},
        "sequential": {"alpha": 0.02, "regression": 3, "tolerance": 1.5},
    },
    "approvals": {"slack": {"channel": "C012AB3CD", "approvers": ["U012AB3CD"]}, "timeout": "45m"},
    "progressDeadline": "1h",
}
DELETE = object()


def mutate(path: str, value: Any, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """``spec`` (default ``BASE``) with the dotted ``path`` set to ``value`` (or deleted)."""
    out = copy.deepcopy(BASE if spec is None else spec)
    *parents, last = path.split(".")
    node: Any = out
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    if value is DELETE:
        del node[int(last) if isinstance(node, list) else last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return out


def _address(url: str) -> dict[str, Any]:
    return mutate("analysis.prometheus.address", url)


_AB = {"headers": [{"name": "X-Experiment-ID", "exact": "beta"}]}
INVALID: dict[str, dict[str, Any]] = {
    "A/B weight below the plan's": mutate("steps.2", {"match": {**_AB, "weight": 0}}),
    "A/B weight 100": mutate("steps.1", {"match": {**_AB, "weight": 100}}),
    "A/B header present false": mutate("steps.1", {"match": {"headers": [{"name": "x-beta", "present": False}]}}),
    "A/B header with no condition": mutate("steps.1", {"match": {"headers": [{"name": "x-beta"}]}}),
    "A/B header name with a space": mutate("steps.1", {"match": {"headers": [{"name": "x beta", "exact": "1"}]}}),
    "A/B 11 headers on App Mesh": mutate(
        "router",
        {"virtualRouter": {"name": "web"}},
        mutate("steps.1", {"match": {"headers": [{"name": f"x-{i}", "exact": "1"} for i in range(11)]}}),
    ),
    "A/B match null": mutate("steps.1", {"match": None}),
    # item 6: policies that switch off the safety net
    "backendValue without {backend}": mutate("analysis.metricLabels.backendValue", "web"),
    "backendValue with another variable": mutate("analysis.metricLabels.backendValue", "{backend}-{namespace}"),
    "custom bound NaN": mutate("analysis.metrics.0.max", math.nan),
    "custom bound -inf": mutate("analysis.metrics.0.min", -math.inf),
    "custom bound +inf": mutate("analysis.metrics.0.max", math.inf),
    "template stray }": mutate("analysis.metrics.0.query", "max(cpu)}"),
    "template unbalanced {": mutate("analysis.metrics.0.query", 'max(cpu{app="{backend}"})'),
    "template attribute access": mutate("analysis.metrics.0.query", "max(cpu{{x={backend.__class__}}})"),
    "template index access": mutate("analysis.metrics.0.query", "max(cpu{{x={backend[0]}}})"),
    "template format spec": mutate("analysis.metrics.0.query", "max(cpu{{x={backend:>99999}}})"),
    "template unknown variable": mutate("analysis.metrics.0.query", "max({pod})"),
    "setWeight true": mutate("steps.0.setWeight", True),
    "setWeight 5.0": mutate("steps.0.setWeight", 5.0),
    "setWeight '5'": mutate("steps.0.setWeight", "5"),
    "minRequests true": mutate("analysis.minRequests", True),
    "failureLimit 2.5": mutate("analysis.failureLimit", 2.5),
    "canary with a trailing space": mutate("canary", "web-v1 "),
    "stable with a leading tab": mutate("stable", "\tweb-v2"),
    "backend with inner space": mutate("canary", "web v2"),
    "approval timeout 0s": mutate("approvals.timeout", "0s"),
    "approval timeout 0ms": mutate("approvals.timeout", "0.0ms"),
    "address link-local": _address("http://169.254.169.254/latest/meta-data"),
    "address link-local v6": _address("http://[fe80::1]:9090"),
    "address metadata name": _address("http://metadata.google.internal/computeMetadata/v1"),
    "address metadata name, trailing dot": _address("http://Metadata.Google.Internal./"),
    "address metadata alibaba": _address("http://100.100.100.200/"),
    "address metadata aws v6": _address("http://[fd00:ec2::254]/"),
    "address decimal integer": _address("http://2852039166/"),
    "address hex dotted": _address("http://0xa9.0xfe.0xa9.0xfe/"),
    "address octal dotted": _address("http://0251.0376.0251.0376/"),
    "address short form": _address("http://169.254.43518/"),
    "address v4-mapped v6": _address("http://[::ffff:169.254.169.254]/"),
    "address unspecified": _address("http://0.0.0.0:9090"),
    "address with credentials": _address("http://user:secret@prom.example/"),
    "address not http": _address("file:///etc/passwd"),
    "header value with CR LF": mutate("analysis.prometheus.headers", {"X-Scope-OrgID": "a\r\nAuthorization: x"}),
    "header value with LF": mutate("analysis.prometheus.headers", {"X-Scope-OrgID": "a\nb"}),
    "header value with NUL": mutate("analysis.prometheus.headers", {"X-Scope-OrgID": "a\x00"}),
    "header name with CR LF": mutate("analysis.prometheus.headers", {"X-A\r\nB": "x"}),
    "header name with space": mutate("analysis.prometheus.headers", {"X A": "x"}),
    "21 headers": mutate("analysis.prometheus.headers", {f"X-H{i}": "v" for i in range(21)}),
    # item 7: validate and the API server disagreed
    "bare-number duration": mutate("analysis.interval", 30),
    "bare-number text duration": mutate("analysis.interval", "30"),
    "duration in days": mutate("approvals.timeout", "2d"),
    "duration with spaces": mutate("analysis.interval", " 30s"),
    "duration in words": mutate("progressDeadline", "30 seconds"),
    "ISO duration": mutate("analysis.interval", "PT30S"),
    "decreasing weights": mutate("steps", [{"setWeight": 50}, {"setWeight": 10}, {"setWeight": 100}]),
    "no setWeight": mutate("steps", [{"pause": {}}]),
    "two routers": mutate("router.gatewayRoute", {"name": "gw"}),
    "no router": mutate("router", {}),
    "rule and ruleName": mutate("router.httpRoute.rule", 0),
    "step with two kinds": mutate("steps.0", {"setWeight": 5, "pause": {}}),
    "empty step": mutate("steps.0", {}),
    "stable equals canary": mutate("canary", "web-v1"),
    "101 steps": mutate("steps", [{"setWeight": 1}] * 100 + [{"setWeight": 100}]),
    "21 metrics": mutate("analysis.metrics", [{"name": f"m{i}", "query": "sum(x)", "max": 1} for i in range(21)]),
    "duplicate metric names": mutate(
        "analysis.metrics", [{"name": "m", "query": "sum(x)", "max": 1}, {"name": "m", "query": "sum(y)", "max": 1}]
    ),
    "metric without bounds": mutate("analysis.metrics", [{"name": "m", "query": "sum(x)"}]),
    "metric min over max": mutate("analysis.metrics", [{"name": "m", "query": "sum(x)", "min": 2, "max": 1}]),
    "tolerance at regression": mutate("analysis.sequential", {"tolerance": 2}),
    "tolerance over regression": mutate("analysis.sequential", {"regression": 3, "tolerance": 4}),
    "latency max 0s": mutate("analysis.slos.latency.max", "0s"),
    "interval under 1s": mutate("analysis.interval", "999ms"),
    "progressDeadline 0s": mutate("progressDeadline", "0s"),
    "ratio over 100%": mutate("analysis.slos.errorRate.max", "150%"),
    "ratio over 1": mutate("analysis.slos.errorRate.max", 1.5),
    "ratio negative": mutate("analysis.slos.errorRate.max", -0.1),
    "ratio with exponent": mutate("analysis.slos.errorRate.max", "1e-2"),
    "ratio NaN text": mutate("analysis.slos.errorRate.max", "nan"),
    "ratio as a list": mutate("analysis.slos.errorRate.max", [1]),
    "query too long": mutate("analysis.metrics.0.query", "sum(x)" + " " * 5000),
    "setWeight over 100": mutate("steps.0.setWeight", 150),
    "unknown field": mutate("analysis.slos.errorRate.maxx", "2%"),
    "approver not a user id": mutate("approvals.slack.approvers", ["alice"]),
}

VALID: dict[str, dict[str, Any]] = {
    "base": BASE,
    "interval exactly 1s": mutate("analysis.interval", "1s"),
    "interval 1500ms": mutate("analysis.interval", "1500ms"),
    "interval as 0.5s0.5s": mutate("analysis.interval", "0.5s0.5s"),
    "min equals max": mutate("analysis.metrics.0.min", 0.8),
    "tolerance just below the default regression": mutate("analysis.sequential", {"tolerance": 1.9}),
    "address private IPv4": _address("http://10.0.0.1:9090"),
    "address loopback v6": _address("http://[::1]:9090"),
    "address service name": _address("http://prometheus.monitoring.svc:9090"),
    "pause without options": mutate("steps.1", {"pause": None}),
    "A/B exact and regex headers, query, weight": mutate(
        "steps.1",
        {
            "match": {
                "headers": [{"name": "X-Experiment-ID", "exact": "beta"}, {"name": "X-Tier", "regex": "gold|silver"}],
                "queryParams": [{"name": "exp", "regex": "b.*"}],
                "weight": 1,
                "expectedShare": 5,
            }
        },
    ),
    "A/B prefix and present on a GatewayRoute": mutate(
        "router",
        {"gatewayRoute": {"name": "web"}},
        mutate(
            "steps.1", {"match": {"headers": [{"name": "x-beta", "present": True}, {"name": "x-t", "prefix": "g"}]}}
        ),
    ),
    "approval without options": mutate("steps.2", {"approval": None}),
    "header value with a tab": mutate("analysis.prometheus.headers", {"X-Scope-OrgID": "a\tb"}),
    "100 steps": mutate("steps", [{"setWeight": 1}] * 99 + [{"setWeight": 100}]),
    "equal weights": mutate("steps", [{"setWeight": 10}, {"setWeight": 10}, {"setWeight": 100}]),
    "ratio 0": mutate("analysis.slos.errorRate.max", 0),
    "ratio 100%": mutate("analysis.slos.errorRate.max", "100%"),
    "ratio text fraction": mutate("analysis.slos.errorRate.max", "0.01"),
    "approval timeout 1ms": mutate("approvals.timeout", "1ms"),
    "duration 48h": mutate("approvals.timeout", "48h"),
    "literal braces in query": mutate("analysis.metrics.0.query", "sum(x{{a='b'}}) + {{}}"),
    "backendValue twice": mutate("analysis.metricLabels.backendValue", "{backend}/{backend}"),
}


# What the API server cannot see: a ratio is text or a number, so its node in the CRD is untyped and
# CEL cannot read it. Validate (and the daemon, reading the object) refuses these; the API server stores them.
SERVER_CANNOT_SEE = frozenset(
    {
        "ratio over 100%",
        "ratio over 1",
        "ratio negative",
        "ratio with exponent",
        "ratio NaN text",
        "ratio as a list",
    }
)


@dataclass(frozen=True)
class Case:
    name: str
    document: dict[str, Any]
    valid: bool

    @property
    def server_valid(self) -> bool:
        """What the API server must conclude (the corpus verdict, except the known gap above)."""
        return self.valid or self.name in SERVER_CANNOT_SEE


def document(spec: dict[str, Any], name: str = "corpus") -> dict[str, Any]:
    return {
        "apiVersion": "delivery.rollout.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }


def corpus_documents() -> Iterator[Case]:
    """Every case: the mutations above, the single-document invalid files, the example policies."""
    for name, spec in INVALID.items():
        yield Case(name, document(spec), valid=False)
    for name, spec in VALID.items():
        yield Case(name, document(spec), valid=True)
    for path in sorted(INVALID_DIR.glob("*.yaml")):
        docs = _mapping_documents(path)
        if docs is not None and len(docs) == 1:
            yield Case(f"invalid/{path.name}", docs[0], valid=False)
    for path in sorted((REPO_ROOT / "policies").glob("*.yaml")):
        docs = _mapping_documents(path)
        assert docs is not None
        for doc in docs:
            yield Case(f"policies/{path.name}", doc, valid=True)


def _mapping_documents(path: Path) -> list[dict[str, Any]] | None:
    """The file's documents when each is a Rollout-shaped mapping; None for what the API cannot take
    (YAML errors, duplicate keys, empty or scalar documents: validate alone judges those)."""
    text = path.read_text()
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError:
        return None
    if "duplicate" in path.name or not docs:
        return None
    if not all(isinstance(d, dict) and isinstance(d.get("metadata"), dict) and "spec" in d for d in docs):
        return None
    return docs
