"""The base of every policy model: frozen, camelCase aliases, unknown fields rejected.

Owns the model configuration shared by ``models.py``, ``analysis.py`` and ``matches.py``, and
``LocatedError`` (a rule of a whole model that names the field it is about); nothing else.
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


class LocatedError(ValueError):
    """A model validator's error about one field inside the model: ``loc`` is that field's path
    relative to the model (camelCase keys and list indexes), so the loader can point at its line."""

    def __init__(self, loc: tuple[int | str, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
