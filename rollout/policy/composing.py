"""Composing YAML text into nodes and data, within bounds: the YAML half of policy loading.

Owns a ``SafeLoader`` that keeps timestamps as strings (as Kubernetes does) and bounds every
document while it is being composed, before anything expands it: at most ``MAX_NODES`` nodes, an
alias counting as every node it repeats (a 450-byte alias bomb that would expand to a billion
nodes is refused at the alias that crosses the limit, with its line), no recursive aliases, no
integers longer than 64 digits. Anchors, aliases and merge keys within the bound work as usual.
Pure: it parses text it is given; it must not read files (``loading.py`` does) nor validate policies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import yaml

from rollout.policy.clipping import clip

MAX_NODES = 20_000  # per document; a policy with 100 steps and 20 metrics has about 1,000
MAX_INT_DIGITS = 64


class Refused(yaml.composer.ComposerError):
    """A document over a composing limit (its ``problem`` says which, ``problem_mark`` where)."""


class BoundedLoader(yaml.SafeLoader):
    """See the module docstring."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.nodes = 0
        self._sizes: dict[int, int] = {}  # id(node) -> nodes in its subtree, once composed

    def compose_document(self) -> Any:
        self.nodes, self._sizes = 0, {}
        return super().compose_document()

    def compose_node(self, parent: yaml.Node | None, index: int) -> Any:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]  # PyYAML ships no annotations
        if isinstance(event, yaml.AliasEvent):
            target = self.anchors.get(str(event.anchor))
            mark: Any = event.start_mark
            if target is not None:
                size = self._sizes.get(id(target))
                if size is None:
                    raise Refused(
                        None,
                        None,
                        f"alias *{clip(str(event.anchor))} is used inside its own anchor (a recursive alias)",
                        mark,
                    )
                self._count(size, mark, alias=True)
            return super().compose_node(parent, index)
        before = self.nodes
        self._count(1, event.start_mark, alias=False)
        node = super().compose_node(parent, index)
        self._sizes[id(node)] = self.nodes - before
        return node

    def _count(self, nodes: int, mark: Any, *, alias: bool) -> None:
        self.nodes += nodes
        if self.nodes > MAX_NODES:
            how = " once its aliases are expanded (an alias bomb?)" if alias else ""
            raise Refused(
                None, None, f"the document grows past {MAX_NODES:,} YAML nodes{how}; a policy needs far fewer", mark
            )


def _timestamp_as_text(loader: BoundedLoader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


def _bounded_int(loader: BoundedLoader, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node))
    digits = sum(c.isdigit() for c in text)
    if digits > MAX_INT_DIGITS:  # int() is slow on huge numbers and refuses more than 4,300 digits
        raise Refused(None, None, f"an integer of {digits:,} digits; at most {MAX_INT_DIGITS}", node.start_mark)
    return int(loader.construct_yaml_int(node))


BoundedLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)
BoundedLoader.add_constructor("tag:yaml.org,2002:int", _bounded_int)


def documents(text: str, before: Callable[[yaml.Node], None]) -> Iterator[tuple[yaml.Node | None, Any]]:
    """Compose and construct one document at a time (earlier documents survive a later syntax error).

    ``before`` sees each node before construction, which rewrites merge keys (``<<``) in place.
    Raises ``Refused`` (a ``yaml.MarkedYAMLError``) for a document over a limit.
    """
    loader = BoundedLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None or (node.tag == "tag:yaml.org,2002:null" and not node.value):
                yield node, None
            else:
                before(node)
                yield node, loader.construct_document(node)
    finally:
        loader.dispose()
