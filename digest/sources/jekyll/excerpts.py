"""A post's excerpt as Jekyll cuts it: the text before the separator, plus what it needs to render.

posts ─► post_excerpts: Jekyll's Excerpt#extract_excerpt (link definitions kept, blocks closed).
"""

from __future__ import annotations

import re

# Jekyll's Excerpt::MKDWN_LINK_REF_REGEX: a reference-style link definition line.
_LINK_DEFINITION = re.compile(r"^ {0,3}(?:(\[[^\]]+\])(:.+))$", re.M)
# Jekyll's Excerpt::LIQUID_TAG_REGEX.
_LIQUID_TAG = re.compile(r"{%-?\s*(\w+)\s*.*?-?%}", re.S)
# Liquid's block tags (Jekyll's `highlight` too): an excerpt cut inside one gets it closed.
_BLOCK_TAGS = frozenset(
    {"if", "unless", "for", "case", "capture", "comment", "raw", "tablerow", "highlight"}
)


def cut_excerpt(content: str, separator: str) -> str:
    """The excerpt of `content` at `separator` (non-empty), as Jekyll's excerpt source."""
    head, found, tail = content.partition(separator)
    if not found or not tail:
        return head
    if "{%" in head:
        head = _close_liquid_blocks(head)
    start = _first_definition_start(tail)
    if start is None:
        return head  # no link definitions to copy (the regex would scan the whole post)
    definitions = [
        label + rest for label, rest in _LINK_DEFINITION.findall(tail, start) if label in head
    ]
    if not definitions:
        return head
    return head + "\n\n" + "\n".join(definitions)


def _close_liquid_blocks(head: str) -> str:
    """Jekyll's sanctify_liquid_tags: an opened block without its end tag gets one."""
    for name in reversed(_LIQUID_TAG.findall(head)):
        if name not in _BLOCK_TAGS:
            continue
        if re.search(r"{%-?\s*end" + re.escape(name) + r"\s*-?%}", head):
            continue
        head += "\n{% end" + name + " %}"
    return head


def _first_definition_start(tail: str) -> int | None:
    """Where _LINK_DEFINITION may first match in `tail` (None: nowhere), so findall need not
    scan the paragraphs before it: most posts' definitions sit at the end.

    A definition's label `[...]` holds no `]` and ends in a `]:`; so its `[` lies after the
    last `]` before the first `]:`, at or after the first `[` there, behind at most three
    spaces. (From a later position `^` still matches only after a line break.)
    """
    colon = tail.find("]:")
    if colon < 0:
        return None
    bracket = tail.find("[", tail.rfind("]", 0, colon) + 1)
    if bracket < 0:
        return None
    return max(0, bracket - 3)
