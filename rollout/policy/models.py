"""The Rollout policy schema (``delivery.rollout.dev/v1alpha1``, ``kind: Rollout``) as frozen pydantic models.

Owns field names, types, defaults and cross-field rules. Field names in YAML are camelCase; Python
attributes are snake_case. The ``spec.analysis`` models live in ``analysis.py`` and are re-exported
here. It must not read files or talk to anything (see ``loading.py``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from rollout.policy.analysis import (
    Analysis,
    CustomMetric,
    ErrorRateSLO,
    JudgeKind,
    LatencySLO,
    MetricLabels,
    NoDataPolicy,
    PrometheusOverride,
    SequentialOptions,
    SLOs,
    Unavailable,
    UnavailableAction,
)
from rollout.policy.base import LocatedError, Model
from rollout.policy.matches import HeaderMatch, MatchStep, QueryParamMatch, unsupported
from rollout.policy.quantities import Duration

API_VERSION = "delivery.rollout.dev/v1alpha1"
KIND = "Rollout"

_DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

ObjectName = Annotated[str, Field(min_length=1, max_length=253, pattern=_DNS1123_SUBDOMAIN)]
NamespaceName = Annotated[str, Field(min_length=1, max_length=63, pattern=_DNS1123_LABEL)]
Weight = Annotated[int, Field(strict=True, ge=0, le=100)]  # strict: `true` is not 1
MAX_STEPS = 100
MAX_APPROVERS = 100
# Printable ASCII without spaces: a name two policies cannot tell apart by whitespace alone.
BACKEND = r"^[!-~]+$"


class Metadata(Model):
    """The Kubernetes object metadata a policy may carry; server-set fields are accepted and ignored."""

    name: ObjectName
    namespace: NamespaceName = "default"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    # Present on objects read back from the API server; never used for decisions.
    uid: str | None = Field(default=None, exclude=True)
    resource_version: str | None = Field(default=None, exclude=True)
    generation: int | None = Field(default=None, exclude=True)
    creation_timestamp: str | None = Field(default=None, exclude=True)
    managed_fields: list[Any] | None = Field(default=None, exclude=True)


# --- router -----------------------------------------------------------------------------------


class GatewayRouteType(StrEnum):
    HTTP = "httpRoute"
    HTTP2 = "http2Route"
    GRPC = "grpcRoute"


class GatewayRouteRef(Model):
    """An App Mesh GatewayRoute whose route block (``spec.<routeType>``, or ``spec.routeSpec.<routeType>``)
    sends traffic to VirtualServices (``action.weightedTargets``, or one ``action.target``)."""

    name: ObjectName = Field(description="name of the GatewayRoute")
    namespace: NamespaceName | None = Field(default=None, description="its namespace; default: the Rollout's")
    route_type: GatewayRouteType = Field(
        default=GatewayRouteType.HTTP, description="which route block holds the targets"
    )


class VirtualRouterRef(Model):
    """An App Mesh VirtualRouter; weights live on ``spec.routes[route].<protocol>.action.weightedTargets``."""

    name: ObjectName = Field(description="name of the VirtualRouter")
    namespace: NamespaceName | None = Field(default=None, description="its namespace; default: the Rollout's")
    route: str | None = Field(
        default=None, min_length=1, max_length=253, description="route name; needed when the router has several"
    )


class HTTPRouteRef(Model):
    """A Gateway API HTTPRoute; weights are ``backendRefs[].weight`` in the chosen rule(s)."""

    name: ObjectName = Field(description="name of the HTTPRoute")
    namespace: NamespaceName | None = Field(default=None, description="its namespace; default: the Rollout's")
    rule: int | None = Field(
        default=None, strict=True, ge=0, le=1000, description="rule index; default: every rule naming both backends"
    )
    rule_name: str | None = Field(
        default=None, min_length=1, max_length=253, description="the rule's name (instead of its index)"
    )

    @model_validator(mode="after")
    def _one_rule_selector(self) -> HTTPRouteRef:
        if self.rule is not None and self.rule_name is not None:
            raise ValueError("set at most one of rule and ruleName")
        return self


class RouterSpec(Model):
    """Exactly one of the supported routers."""

    gateway_route: GatewayRouteRef | None = None
    virtual_router: VirtualRouterRef | None = None
    http_route: HTTPRouteRef | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> RouterSpec:
        chosen = [f for f in ("gatewayRoute", "virtualRouter", "httpRoute") if self.by_key(f) is not None]
        if len(chosen) != 1:
            raise ValueError(
                "set exactly one of gatewayRoute, virtualRouter, httpRoute"
                + (f" (got {', '.join(chosen)})" if chosen else "")
            )
        return self

    def by_key(self, key: str) -> GatewayRouteRef | VirtualRouterRef | HTTPRouteRef | None:
        return {
            "gatewayRoute": self.gateway_route,
            "virtualRouter": self.virtual_router,
            "httpRoute": self.http_route,
        }[key]

    @property
    def kind(self) -> Literal["gatewayRoute", "virtualRouter", "httpRoute"]:
        if self.gateway_route is not None:
            return "gatewayRoute"
        if self.virtual_router is not None:
            return "virtualRouter"
        return "httpRoute"

    @property
    def ref(self) -> GatewayRouteRef | VirtualRouterRef | HTTPRouteRef:
        ref = self.by_key(self.kind)
        assert ref is not None
        return ref


# --- steps ------------------------------------------------------------------------------------


class PauseStep(Model):
    """Hold the current weight for ``duration``, or until someone resumes when no duration is set."""

    duration: Duration | None = Field(default=None, description="how long; none: until `rollout resume`")


class ApprovalStep(Model):
    """Wait for a person to approve (Slack button or ``rollout approve``)."""

    message: str | None = Field(default=None, max_length=1024, description="the question put to the approvers")


class Step(Model):
    """One step: exactly one of ``setWeight``, ``pause``, ``approval``, ``match``."""

    set_weight: Weight | None = Field(default=None, description="canary weight in percent (0-100), never decreasing")
    pause: PauseStep | None = None
    approval: ApprovalStep | None = None
    match: MatchStep | None = Field(default=None, description="an A/B step: requests that match go to the canary")

    @model_validator(mode="before")
    @classmethod
    def _empty_mappings(cls, data: Any) -> Any:
        # `- pause:` and `- approval:` with no body parse as None; they mean "no options".
        if isinstance(data, dict):
            data = dict(data)
            for key in ("pause", "approval"):
                if key in data and data[key] is None:
                    data[key] = {}
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> Step:
        chosen = [
            k
            for k, v in (
                ("setWeight", self.set_weight),
                ("pause", self.pause),
                ("approval", self.approval),
                ("match", self.match),
            )
            if v is not None
        ]
        if len(chosen) != 1:
            raise ValueError(
                "a step has exactly one of setWeight, pause, approval, match"
                + (f" (got {', '.join(chosen)})" if chosen else "")
            )
        return self

    @property
    def kind(self) -> Literal["setWeight", "pause", "approval", "match"]:
        if self.set_weight is not None:
            return "setWeight"
        if self.match is not None:
            return "match"
        return "pause" if self.pause is not None else "approval"


# --- people -----------------------------------------------------------------------------------

_CHANNEL = r"^(#[a-z0-9][a-z0-9._-]{0,79}|[CGD][A-Z0-9]{2,})$"


class SlackTarget(Model):
    """A Slack channel."""

    channel: str = Field(pattern=_CHANNEL, description="#name or a channel ID such as C012AB3CD")


class Notifications(Model):
    """Where progress is announced."""

    slack: SlackTarget | None = Field(default=None, description="a Slack channel for every step and verdict")


class SlackApprovers(Model):
    """Approval requests as Slack messages with Approve / Reject buttons."""

    channel: str = Field(pattern=_CHANNEL, description="#name or a channel ID")
    approvers: list[Annotated[str, Field(max_length=32, pattern=r"^[UWS][A-Z0-9]{2,}$")]] = Field(
        default_factory=list,
        max_length=MAX_APPROVERS,
        description="Slack user IDs (U.../W...) or user-group IDs (S...) allowed to approve; "
        "empty: anyone in the channel",
    )


class TimeoutAction(StrEnum):
    ROLLBACK = "rollback"
    PAUSE = "pause"


class Approvals(Model):
    """How approval steps are asked for (always also possible with `rollout approve`)."""

    slack: SlackApprovers | None = Field(default=None, description="ask in Slack")
    timeout: Duration = Field(default=timedelta(hours=1), description="how long to wait for an answer")
    on_timeout: TimeoutAction = Field(default=TimeoutAction.PAUSE, description="then: pause, or roll back")

    @field_validator("timeout")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("an approval timeout must be longer than 0s")
        return value


# --- the policy -------------------------------------------------------------------------------


class RolloutSpec(Model):
    router: RouterSpec = Field(description="the route whose weights rollout moves")
    stable: str = Field(
        min_length=1, max_length=253, pattern=BACKEND, description="backend serving now, as the router names it"
    )
    canary: str = Field(
        min_length=1, max_length=253, pattern=BACKEND, description="new backend, as the router names it"
    )
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS, description="the plan, in order")
    analysis: Analysis = Field(default_factory=Analysis, description="how each step is judged")
    notifications: Notifications = Field(default_factory=Notifications, description="where progress is announced")
    approvals: Approvals = Field(default_factory=Approvals, description="how approval steps are asked for")
    progress_deadline: Duration = Field(
        default=timedelta(minutes=30),
        description="longest a step may wait for a verdict before the rollout pauses and says why",
    )

    @field_validator("progress_deadline")
    @classmethod
    def _deadline_positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("progressDeadline must be longer than 0s")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> RolloutSpec:
        if self.stable == self.canary:
            raise ValueError(f"stable and canary must differ (both are {self.stable!r})")
        weights = [s.set_weight for s in self.steps if s.set_weight is not None]
        if not weights:
            raise ValueError("steps need at least one setWeight")
        for i, (a, b) in enumerate(itertools.pairwise(weights)):
            if b < a:
                raise ValueError(f"setWeight must never decrease: {a} then {b} (setWeight #{i + 2})")
        self._check_matches()
        return self

    def _check_matches(self) -> None:
        """Match steps: their weights never below the plan's, and only what the router can express."""
        reached = 0
        kind = self.router.kind
        route_type = self.router.gateway_route.route_type.value if self.router.gateway_route else ""
        for i, step in enumerate(self.steps):
            if step.set_weight is not None:
                if step.set_weight < reached:  # below a match step's weight (setWeights alone: above)
                    raise LocatedError(
                        ("steps", i, "setWeight"),
                        f"weights must never decrease: a match step before it has weight {reached}",
                    )
                reached = step.set_weight
            if step.match is None:
                continue
            if step.match.weight is not None:
                if step.match.weight < reached:
                    raise LocatedError(
                        ("steps", i, "match", "weight"),
                        f"weights must never decrease: the plan has reached {reached} before this match's "
                        f"weight {step.match.weight}",
                    )
                reached = step.match.weight
            for loc, message in unsupported(kind, route_type, step.match):
                raise LocatedError(("steps", i, "match", *loc), f"{kind} cannot express this: {message}")

    @property
    def weights(self) -> list[int]:
        return [s.set_weight for s in self.steps if s.set_weight is not None]

    def plan_weight(self, index: int) -> int:
        """The canary weight the plan has reached at step ``index`` (a match step's weight included)."""
        reached = 0
        for step in self.steps[: index + 1]:
            if step.set_weight is not None:
                reached = step.set_weight
            elif step.match is not None and step.match.weight is not None:
                reached = step.match.weight
        return reached


class Rollout(Model):
    """One Rollout policy, as a YAML document or a ``Rollout`` object."""

    api_version: Literal["delivery.rollout.dev/v1alpha1"]
    kind: Literal["Rollout"]
    metadata: Metadata
    spec: RolloutSpec
    status: dict[str, Any] | None = Field(
        default=None, exclude=True, description="ignored in policies; owned by the daemon"
    )

    @property
    def key(self) -> str:
        """``namespace/name``: the identity of a rollout."""
        return f"{self.metadata.namespace}/{self.metadata.name}"

    @property
    def revision(self) -> str:
        """A short, stable hash of the spec: a new revision starts a new run."""
        canonical = json.dumps(self.spec.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def route_namespace(self) -> str:
        return self.spec.router.ref.namespace or self.metadata.namespace


__all__ = [
    "API_VERSION",
    "KIND",
    "Analysis",
    "ApprovalStep",
    "Approvals",
    "CustomMetric",
    "ErrorRateSLO",
    "GatewayRouteRef",
    "GatewayRouteType",
    "HTTPRouteRef",
    "HeaderMatch",
    "JudgeKind",
    "LatencySLO",
    "MatchStep",
    "Metadata",
    "MetricLabels",
    "Model",
    "NoDataPolicy",
    "Notifications",
    "PauseStep",
    "PrometheusOverride",
    "QueryParamMatch",
    "Rollout",
    "RolloutSpec",
    "RouterSpec",
    "SLOs",
    "SequentialOptions",
    "SlackApprovers",
    "SlackTarget",
    "Step",
    "TimeoutAction",
    "Unavailable",
    "UnavailableAction",
    "VirtualRouterRef",
]
