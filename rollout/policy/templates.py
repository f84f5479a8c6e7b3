"""The small template language of policies: ``{name}`` placeholders, ``{{`` and ``}}`` for literal braces.

Owns parsing (every problem named with its column: stray or unbalanced braces, unknown names,
attribute or index access such as ``{backend.__class__}`` or ``{backend[0]}``, which are simply not
names) and filling by plain substitution of known names. It never uses ``str.format``, so a template
cannot reach an attribute, an index or a format spec of anything. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

from rollout.policy.clipping import clip

_NAME = re.compile(r"[a-z_][a-z0-9_]*")


class TemplateError(ValueError):
    """A template that cannot be filled; the message names the column (1-based)."""


def parse(template: str, known: Collection[str]) -> list[tuple[bool, str]]:
    """``(is_name, text)`` parts of ``template``; raises ``TemplateError`` for the first problem."""
    parts: list[tuple[bool, str]] = []
    literal: list[str] = []
    i, n = 0, len(template)
    while i < n:
        char = template[i]
        if char in "{}" and template.startswith(char * 2, i):
            literal.append(char)
            i += 2
        elif char == "}":
            raise TemplateError(f"stray `}}` at column {i + 1}; write `}}}}` for a literal brace")
        elif char == "{":
            end = template.find("}", i + 1)
            opened = template.find("{", i + 1)
            if end < 0 or 0 <= opened < end:
                raise TemplateError(f"unbalanced `{{` at column {i + 1}; write `{{{{` for a literal brace")
            name = template[i + 1 : end]
            if not _NAME.fullmatch(name):
                raise TemplateError(
                    f"`{{{clip(name, 40)}}}` at column {i + 1} is not a variable: only plain names such as "
                    f"{{backend}} (no attributes, indexes or format specs); known: {', '.join(sorted(known))}"
                )
            if name not in known:
                raise TemplateError(
                    f"unknown variable `{{{name}}}` at column {i + 1}; known: {', '.join(sorted(known))}"
                )
            if literal:
                parts.append((False, "".join(literal)))
                literal = []
            parts.append((True, name))
            i = end + 1
        else:
            literal.append(char)
            i += 1
    if literal:
        parts.append((False, "".join(literal)))
    return parts


def fill(template: str, values: Mapping[str, str]) -> str:
    """``template`` with each ``{name}`` replaced by ``values[name]`` (plain text, never formatted)."""
    return "".join(values[text] if is_name else text for is_name, text in parse(template, values.keys()))
