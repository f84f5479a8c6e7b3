"""The daemon's own configuration (pydantic-settings): the only module that reads environment variables.

Owns the root ``Settings`` (env prefix ``ROLLOUT_``, nested sections joined with ``__``, e.g.
``ROLLOUT_PROMETHEUS__URL``) and one frozen section per concern; new sections are added as fields
of ``Settings``. Invalid settings raise ``SettingsError`` naming every bad field. It must not open
connections or read files (paths such as a CA bundle are validated by the adapter that uses them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError

from rollout.errors import SettingsError


class Section(BaseModel):
    """Base of every settings section: frozen, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class PrometheusSettings(Section):
    """Where and how to ask Prometheus; a policy may override ``url`` and add headers."""

    url: str = Field(default="http://127.0.0.1:9090", pattern=r"^https?://[^\s]+$")
    bearer_token: SecretStr | None = Field(default=None, description="sent as Authorization: Bearer")
    username: str | None = Field(default=None, description="HTTP basic auth user")
    password: SecretStr | None = Field(default=None, description="HTTP basic auth password")
    verify_tls: bool = True
    ca_file: Path | None = Field(default=None, description="PEM bundle to verify the server with")
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    headers: dict[str, str] = Field(default_factory=dict, description="extra HTTP headers")
    latency_buckets_ms: tuple[float, ...] | None = Field(
        default=None,
        description="upper bounds (ms) of the latency histogram's buckets; default: Envoy's defaults",
    )

    @model_validator(mode="after")
    def _coherent(self) -> PrometheusSettings:
        if self.bearer_token is not None and self.username is not None:
            raise ValueError("set either bearer_token or username/password, not both")
        if (self.username is None) != (self.password is None):
            raise ValueError("basic auth needs both username and password")
        if self.ca_file is not None and not self.verify_tls:
            raise ValueError("ca_file is set but verify_tls is false; drop one of them")
        if self.latency_buckets_ms is not None and (
            not self.latency_buckets_ms or any(b <= 0 for b in self.latency_buckets_ms)
        ):
            raise ValueError("latency_buckets_ms must be a non-empty list of positive bounds")
        return self


class TenancySettings(Section):
    """Which namespaces a Rollout may reach beyond its own (none by default)."""

    cross_namespace: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Rollout namespace -> other namespaces whose routes and backends its Rollouts may name",
    )


class CommandSettings(Section):
    """Operator commands (RolloutCommand objects)."""

    require_admission_policy: bool = Field(
        default=True,
        description="refuse every command unless the ValidatingAdmissionPolicy that binds spec.by to the "
        "requester is installed (deploy/base/commands-policy.yaml)",
    )
    retention_seconds: float = Field(default=3600.0, gt=0, description="handled commands are deleted after this")


class KubeSettings(Section):
    """How to reach the Kubernetes API."""

    kubeconfig: Path | None = Field(
        default=None,
        description="kubeconfig file; default: in-cluster config, else $KUBECONFIG, else ~/.kube/config",
    )
    context: str | None = Field(default=None, description="kubeconfig context; default: its current context")
    timeout_seconds: float = Field(default=10.0, gt=0, le=120, description="per-request timeout")


class LeaderSettings(Section):
    """Leader election on a coordination.k8s.io/v1 Lease (only the leader writes)."""

    enabled: bool = True
    namespace: str = Field(default="rollout-system", description="namespace of the Lease")
    name: str = Field(default="rollout-daemon", description="name of the Lease")
    identity: str | None = Field(default=None, description="this replica's identity; default: hostname + pid")
    shards: int = Field(
        default=1, ge=1, le=64, description="rollouts split into this many shards, each led through its own Lease"
    )
    expected_replicas: int = Field(
        default=1, ge=1, le=64, description="replicas sharing the shards (each first takes its fair share)"
    )
    lease_seconds: float = Field(default=15.0, gt=0)
    renew_deadline_seconds: float = Field(default=10.0, gt=0)
    retry_seconds: float = Field(default=2.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> LeaderSettings:
        if not self.retry_seconds < self.renew_deadline_seconds < self.lease_seconds:
            raise ValueError("need retry_seconds < renew_deadline_seconds < lease_seconds")
        return self


class SlackSettings(Section):
    """Slack Web API access and how clicks arrive (Socket Mode or HTTP); no bot token: no Slack."""

    bot_token: SecretStr | None = Field(
        default=None,
        description="xoxb- bot token (scopes chat:write, channels:history, groups:history, usergroups:read)",
    )
    mode: Literal["socket", "http"] = Field(
        default="socket",
        description="how button clicks arrive: socket (Socket Mode, an outbound WebSocket opened by the replica "
        "holding shard 0; needs app_token) or http (POST /slack/interactions; needs signing_secret)",
    )
    app_token: SecretStr | None = Field(
        default=None, description="xapp- app-level token (scope connections:write) for Socket Mode"
    )
    signing_secret: SecretStr | None = Field(
        default=None, description="verifies approval clicks posted to /slack/interactions (mode http)"
    )
    response_url_prefix: str = Field(
        default="https://hooks.slack.com/",
        pattern=r"^https?://[^\s]+/$",
        description="answers to a click go only to its response_url under this prefix",
    )
    group_cache_seconds: float = Field(
        default=60.0, gt=0, le=3600, description="how long the members of an approver user group are cached"
    )
    base_url: str = Field(default="https://slack.com/api/", pattern=r"^https?://[^\s]+/$")
    default_channel: str | None = Field(
        default=None,
        pattern=r"^(#[a-z0-9][a-z0-9._-]{0,79}|[CGD][A-Z0-9]{2,})$",
        description="channel for notifications of policies that name none",
    )
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    links: dict[str, str] = Field(
        default_factory=dict,
        description="label -> URL template ({namespace}, {name}, {rollout}) in the footer of a run's parent message",
    )


class Settings(BaseSettings):
    """Every setting of the daemon, one section per concern.

    Top-level fields read ``ROLLOUT_<FIELD>``; section fields read ``ROLLOUT_<SECTION>__<FIELD>``.
    """

    model_config = SettingsConfigDict(
        env_prefix="ROLLOUT_",
        env_nested_delimiter="__",
        frozen=True,
        extra="ignore",
    )

    watch_namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="namespaces whose Rollouts are reconciled; empty: all namespaces"
    )
    policy_dir: Path | None = Field(
        default=None,
        description="directory of policy files applied into the cluster as Rollouts (hot-reloaded)",
    )
    policy_poll_seconds: float = Field(default=2.0, gt=0, description="how often the policy directory is checked")
    resync_seconds: float = Field(default=30.0, gt=0, description="full re-list of Rollouts")
    default_interval_seconds: float = Field(default=30.0, gt=0, description="tick of a Rollout that cannot be read")
    max_concurrent_rollouts: int = Field(default=10, ge=1, description="cap on active rollouts; others wait Pending")
    workers: int = Field(default=8, ge=1, le=64, description="reconcile threads")
    host: str = Field(
        default="0.0.0.0", description="address of the health and metrics server (/healthz, /readyz, /metrics)"
    )
    port: int = Field(
        default=8080, ge=0, le=65535, description="port of the health and metrics server; 0 picks a free one"
    )
    interactions_host: str = Field(
        default="0.0.0.0", description="address of the Slack interactions server (POST /slack/interactions)"
    )
    interactions_port: int = Field(
        default=8081,
        ge=0,
        le=65535,
        description="port of the Slack interactions server, listening only with slack.mode http, "
        "slack.bot_token and slack.signing_secret set; 0 picks a free one",
    )
    log_format: Literal["auto", "json", "text"] = Field(
        default="auto", description="json in a cluster, readable text on a terminal (auto)"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    shutdown_grace_seconds: float = Field(default=20.0, gt=0, description="wait for in-flight writes on SIGTERM")
    kubeconfig_env: str | None = Field(
        default=None,
        validation_alias="KUBECONFIG",
        description="the standard $KUBECONFIG (first file is used)",
    )
    status_flush_seconds: float = Field(
        default=60.0, gt=0, description="longest the judge's running numbers alone go unwritten to a Rollout's status"
    )
    metrics_delay_seconds: float = Field(
        default=2.0, ge=0, description="metrics batches are evaluated this long before their slot (ingestion delay)"
    )
    prometheus_endpoints: dict[str, PrometheusSettings] = Field(
        default_factory=dict,
        description="named Prometheus endpoints a policy may pick with analysis.prometheus.endpoint "
        "(besides 'default')",
    )
    prometheus_policy_addresses: list[str] = Field(
        default_factory=list,
        description="URL prefixes a policy may name in analysis.prometheus.address "
        "(never sent the daemon's credentials)",
    )
    tenancy: TenancySettings = Field(default_factory=TenancySettings)
    commands: CommandSettings = Field(default_factory=CommandSettings)
    kube: KubeSettings = Field(default_factory=KubeSettings)
    leader: LeaderSettings = Field(default_factory=LeaderSettings)
    prometheus: PrometheusSettings = Field(default_factory=PrometheusSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)

    @model_validator(mode="after")
    def _distinct_ports(self) -> Settings:
        if self.port != 0 and self.port == self.interactions_port:
            raise ValueError(
                f"port and interactions_port are both {self.port}; health/metrics and Slack interactions "
                "listen separately (each with its own limits)"
            )
        return self

    @field_validator("watch_namespaces", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip().startswith("["):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value


@dataclass(frozen=True)
class SettingDoc:
    """One setting as ``rollout run --help`` and the deploy manifests name it."""

    env: str  # the environment variable, e.g. ROLLOUT_PROMETHEUS__URL
    path: str  # the dotted field path, e.g. prometheus.url
    default: object
    description: str


def setting_docs() -> list[SettingDoc]:
    """Every setting, walked from the model (so help text and manifests cannot name a setting that is not there)."""
    out: list[SettingDoc] = []

    def walk(model: type[BaseModel], prefix: str, env: str) -> None:
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                walk(annotation, f"{prefix}{name}.", f"{env}{name.upper()}__")
                continue
            var = field.validation_alias if isinstance(field.validation_alias, str) else f"{env}{name.upper()}"
            out.append(
                SettingDoc(
                    var, f"{prefix}{name}", field.get_default(call_default_factory=True), field.description or ""
                )
            )

    walk(Settings, "", "ROLLOUT_")
    return out


def load_settings() -> Settings:
    """Read the settings from the process environment; raises ``SettingsError`` listing every bad field."""
    try:
        return Settings()
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in e.errors()
        )
        raise SettingsError(f"invalid settings: {problems}") from e
    except SourceError as e:
        raise SettingsError(f"invalid settings: {e}") from e
