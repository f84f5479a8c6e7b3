"""The Rollout policy: its schema (pydantic models), loading with file:line:col problems, and the
generated reference. Pure except ``loading`` (with ``reading``), which reads policy files."""
