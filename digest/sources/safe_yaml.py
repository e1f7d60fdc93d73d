"""A safe YAML loader whose aliases cannot blow up: their expansion is bounded, cycles refused.

front_matter ─► safe_yaml: a 420-byte alias chain (`*lol9`) is one refusal, not a billion values.
"""

from __future__ import annotations

from typing import Any

import yaml

# Aliases may repeat this many values in all (an `author: *me` costs a few); plain YAML is free.
MAX_ALIAS_EXPANSION = 10_000

_SafeBase: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlLimitError(yaml.YAMLError):
    """YAML that is refused for its shape (aliases expanding too far, a cycle, deep nesting)."""


class BoundedSafeLoader(_SafeBase):  # type: ignore[misc]
    """yaml.SafeLoader (libyaml's when present) that checks the node graph before building it."""

    def get_single_data(self) -> Any:
        try:
            node = self.get_single_node()
            if node is None:
                return None
            check_alias_expansion(node)
            return self.construct_document(node)
        except RecursionError:
            raise YamlLimitError("YAML nested too deeply") from None


def check_alias_expansion(root: yaml.Node, limit: int = MAX_ALIAS_EXPANSION) -> None:
    """YamlLimitError if expanding the aliases under `root` would add more than `limit` values."""
    sizes: dict[int, int] = {}  # id(node) -> values once expanded; -1 while being expanded
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        children = _children(node)
        if children_done:
            sizes[id(node)] = 1 + sum(sizes[id(child)] for child in children)
            continue
        if id(node) in sizes:
            if sizes[id(node)] < 0:
                raise YamlLimitError(f"a YAML alias refers to itself{_line(node)}")
            continue
        sizes[id(node)] = -1
        stack.append((node, True))
        for child in children:
            if sizes.get(id(child)) == -1:
                raise YamlLimitError(f"a YAML alias refers to itself{_line(child)}")
            if id(child) not in sizes:
                stack.append((child, False))
    expanded, distinct = sizes[id(root)], len(sizes)
    if expanded - distinct > limit:
        raise YamlLimitError(
            f"YAML aliases (*name) would repeat {expanded - distinct:,} values "
            f"(at most {limit:,}); write the values out"
        )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _line(node: yaml.Node) -> str:
    mark = getattr(node, "start_mark", None)
    return f" (front matter line {mark.line + 1})" if mark is not None else ""
