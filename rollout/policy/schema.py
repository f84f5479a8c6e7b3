"""The Rollout policy's JSON Schema as ``rollout schema`` prints it.

Owns one thing pydantic gets wrong for us: defaults are shown in the policy language (durations as
``30s``, not ISO 8601's ``PT30S``, which the policy model refuses). Pure.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic.json_schema import GenerateJsonSchema

from rollout.policy.models import Rollout
from rollout.policy.quantities import format_duration


class _PolicySchema(GenerateJsonSchema):
    def encode_default(self, dft: Any) -> Any:
        if isinstance(dft, timedelta):
            return format_duration(dft)
        return super().encode_default(dft)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a Rollout document (camelCase field names, defaults as a policy writes them)."""
    return Rollout.model_json_schema(by_alias=True, schema_generator=_PolicySchema)
