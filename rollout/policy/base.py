"""The base of every policy model: frozen, camelCase aliases, unknown fields rejected.

Owns the model configuration shared by ``models.py`` and ``analysis.py``; nothing else.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class Model(BaseModel):
    """Base for every policy model: frozen, camelCase aliases, unknown fields rejected."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        strict=False,
        use_enum_values=False,
    )
