"""The one pydantic configuration of every dataclass persisted in a Rollout's status.

Owns ``CAMEL_CASE``: camelCase keys on the wire, snake_case in Python, either accepted on load.
Each persisted dataclass sets ``__pydantic_config__ = CAMEL_CASE`` (``rollout.core.persisting``
reads and writes them through a pydantic TypeAdapter). Nothing else lives here.
"""

from __future__ import annotations

from pydantic import ConfigDict
from pydantic.alias_generators import to_camel

CAMEL_CASE: ConfigDict = ConfigDict(alias_generator=to_camel, populate_by_name=True)
