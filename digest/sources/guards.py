"""The guards every reader of site files goes through: what may be opened, how big, how deep.

sources (jekyll, hugo, feed) ─► guards: regular files only (a FIFO, a device or a symlink to
one is refused before it is opened: never a hang), one size cap, YAML whose aliases cannot
blow up, and YAML, TOML and JSON nested at most MAX_NESTING levels (never a RecursionError).
A refusal is a PostError (one warning; the other files are read) or a LimitError to word.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tomllib
from typing import Any

import yaml

from digest.errors import PostError

# Aliases may repeat this many values in all (an `author: *me` costs a few); plain YAML is free.
MAX_ALIAS_EXPANSION = 10_000
# The size cap where no setting gives one (site.max_post_bytes has the same default).
MAX_FILE_BYTES = 5 * 1024 * 1024
# Front matter and feeds are a few levels deep; a thousand would meet Python's recursion limit.
MAX_NESTING = 100

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
_CHUNK = 64 * 1024


class LimitError(ValueError):
    """Text refused for its shape: aliases expanding too far, a cycle, or nesting too deep."""


class FileRefusedError(ValueError):
    """A file refused before it is read: not a regular file, or over the size cap."""


# ---------------------------------------------------------------------------------------------
# Files


def read_post_bytes(file: str | os.PathLike[str], max_bytes: int) -> bytes:
    """The bytes of a post file (see read_regular_file); PostError (one warning) otherwise."""
    where = os.fspath(file)
    try:
        return read_regular_file(where, max_bytes)
    except FileRefusedError as exc:
        raise PostError(where, str(exc)) from None
    except OSError as exc:
        raise PostError(where, f"cannot read file: {exc.strerror or exc}") from exc


def read_regular_file(
    file: str | os.PathLike[str],
    max_bytes: int,
    *,
    cap: str = "site.max_post_bytes ({max_bytes:,} bytes)",
) -> bytes:
    """The bytes of `file` if it is (a symlink to) a regular file of at most `max_bytes`.

    FileRefusedError for anything else (`cap` words the limit, with `{max_bytes}`), OSError when it
    cannot be read. A FIFO or a device is never opened: nothing can hang or stream for ever."""
    where = os.fspath(file)
    # stat before open: opening a FIFO blocks until a writer comes, /dev/zero never ends.
    info = os.stat(where)
    if not stat.S_ISREG(info.st_mode):
        raise _not_regular(where, info.st_mode)
    _check_size(info.st_size, max_bytes, cap)
    # O_NONBLOCK: should the file be swapped for a FIFO after the stat, the open won't hang.
    fd = os.open(where, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            raise _not_regular(where, opened.st_mode)
        data = _read_up_to(fd, opened.st_size, max_bytes + 1)
    finally:
        os.close(fd)
    _check_size(len(data), max_bytes, cap)
    return data


def _read_up_to(fd: int, expected: int, limit: int) -> bytes:
    """At most `limit` bytes to the end of the file, sized by its stat (a file may grow)."""
    # Asking for `limit` bytes at once would allocate all of it (5 MB) for every small post.
    asked = min(expected + 1, limit)
    chunks = [os.read(fd, asked)]
    total = len(chunks[0])
    # A regular file gives all that is asked up to its end: a short read is the end.
    while len(chunks[-1]) == asked and total < limit:
        asked = min(_CHUNK, limit - total)
        chunks.append(os.read(fd, asked))
        total += len(chunks[-1])
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _not_regular(where: str, mode: int) -> FileRefusedError:
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    if os.path.islink(where):
        kind = f"a symlink to {kind}"
    return FileRefusedError(f"not a regular file ({kind}); only regular files are read")


def _check_size(size: int, max_bytes: int, cap: str) -> None:
    if size > max_bytes:
        limit = cap.format(max_bytes=max_bytes)
        raise FileRefusedError(f"file is larger than {limit}; not read")


# ---------------------------------------------------------------------------------------------
# YAML

_CSafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"


class BoundedSafeLoader(_CSafeLoader):  # type: ignore[misc]
    """yaml.SafeLoader (libyaml's when present) that checks the node graph before building it:
    aliases expand to at most MAX_ALIAS_EXPANSION values, nesting is at most MAX_NESTING."""

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        return None if node is None else build_yaml(self, node)

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        # yaml.resolver.BaseResolver.resolve without path resolvers (safe YAML has none),
        # and a dict lookup instead of a list built for every scalar.
        if kind is yaml.ScalarNode:
            if implicit[0]:
                for tag, pattern in self.yaml_implicit_resolvers.get(value[:1], ()):
                    if pattern.match(value):
                        return tag
            return _STR
        return _SEQ if kind is yaml.SequenceNode else _MAP


class _TextDatesLoader(BoundedSafeLoader):
    """As BoundedSafeLoader, but dates stay text (Hugo's yaml.v2 keeps them as written)."""


_TextDatesLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in BoundedSafeLoader.yaml_implicit_resolvers.items()
}
assert None not in BoundedSafeLoader.yaml_implicit_resolvers  # resolve() above relies on it


def load_yaml(text: str, *, dates: bool = True) -> Any:
    """`text` read by YAML's safe loader (libyaml's), aliases and nesting bounded.

    `dates=False` keeps timestamps as text. LimitError for a refused shape; yaml.YAMLError for
    text that is not YAML."""
    loader = (BoundedSafeLoader if dates else _TextDatesLoader)(text)
    try:
        node = loader.get_single_node()
        return None if node is None else build_yaml(loader, node, aliases="*" in text)
    except yaml.YAMLError as exc:
        if "maximum nesting depth" in str(exc):  # libyaml's own bound (1,000)
            raise _too_deep() from None
        raise
    except RecursionError:  # the pure-Python loader, where libyaml is missing
        raise _too_deep() from None
    finally:
        loader.dispose()


def build_yaml(loader: Any, node: yaml.Node, *, aliases: bool = True) -> Any:
    """The value of a composed document; LimitError when its shape is refused. `aliases=False`
    says the text has none (no `*`), which spares looking for them."""
    if aliases and _has_alias(node):
        check_alias_expansion(node)
        check_depth_nodes(node)
        # Aliases share their value, as PyYAML builds it.
        return loader.construct_document(node)
    try:
        return _build_plain(loader, node)
    except _Unusual:  # merge keys, !!set, a list as a key...: PyYAML's own constructor
        return loader.construct_document(node)


class _Unusual(Exception):
    """A document _build_plain leaves to PyYAML's constructor."""


_APPEND = object()  # where a list item goes, in _build_plain's stack
_MERGE = "tag:yaml.org,2002:merge"


def _build_plain(loader: Any, root: yaml.Node) -> Any:
    """What SafeConstructor builds from a document without aliases, without its recursion and
    generators: maps, lists and text made here, other scalars by SafeConstructor; _Unusual for
    anything else (merge keys, !!set, !!omap, a list as a key)."""
    holder: list[Any] = []
    # (node, the list or dict its value goes into, its key there or _APPEND, its depth)
    stack: list[tuple[yaml.Node, Any, Any, int]] = [(root, holder, _APPEND, 1)]
    while stack:
        node, into, key, depth = stack.pop()
        kind, tag = type(node), node.tag
        value: Any
        if kind is yaml.ScalarNode:
            value = node.value if tag == _STR else loader.construct_object(node)
        elif kind is yaml.MappingNode and tag == _MAP:
            if depth > MAX_NESTING:
                raise _too_deep()
            value = {}
            pairs = []
            for key_node, value_node in node.value:
                if type(key_node) is not yaml.ScalarNode or key_node.tag == _MERGE:
                    raise _Unusual
                item_key = (
                    key_node.value if key_node.tag == _STR else loader.construct_object(key_node)
                )
                pairs.append((value_node, value, item_key, depth + 1))
            stack.extend(reversed(pairs))  # popped in the document's order: keys keep it
        elif kind is yaml.SequenceNode and tag == _SEQ:
            if depth > MAX_NESTING:
                raise _too_deep()
            value = []
            stack.extend((child, value, _APPEND, depth + 1) for child in reversed(node.value))
        else:
            raise _Unusual
        if key is _APPEND:
            into.append(value)
        else:
            into[key] = value
    return holder[0]


def _has_alias(root: yaml.Node) -> bool:
    """Whether a node is reached twice (an alias), walking every node once."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            return True
        seen.add(id(node))
        stack.extend(_children(node))
    return False


def check_alias_expansion(root: yaml.Node, limit: int = MAX_ALIAS_EXPANSION) -> None:
    """LimitError if expanding the aliases under `root` would add more than `limit` values."""
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
                raise LimitError(f"a YAML alias refers to itself{_line(node)}")
            continue
        sizes[id(node)] = -1
        stack.append((node, True))
        for child in children:
            if sizes.get(id(child)) == -1:
                raise LimitError(f"a YAML alias refers to itself{_line(child)}")
            if id(child) not in sizes:
                stack.append((child, False))
    expanded, distinct = sizes[id(root)], len(sizes)
    if expanded - distinct > limit:
        raise LimitError(
            f"YAML aliases (*name) would repeat {expanded - distinct:,} values "
            f"(at most {limit:,}); write the values out"
        )


def check_depth_nodes(root: yaml.Node, limit: int = MAX_NESTING) -> None:
    """LimitError if a YAML node graph (without cycles) nests more than `limit` levels."""
    depths: dict[int, int] = {}
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, yaml.ScalarNode) or depths.get(id(node), 0) >= depth:
            continue
        if depth > limit:
            raise _too_deep(limit)
        depths[id(node)] = depth
        stack.extend((child, depth + 1) for child in _children(node))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _line(node: yaml.Node) -> str:
    mark = getattr(node, "start_mark", None)
    return f" (front matter line {mark.line + 1})" if mark is not None else ""


def _too_deep(limit: int = MAX_NESTING) -> LimitError:
    return LimitError(f"nested more than {limit} levels deep")


# ---------------------------------------------------------------------------------------------
# JSON and TOML

_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]')
_TOML_TOKENS = re.compile(
    r'"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|#[^\n]*|[\[\]{}.=,\n]'
)


def load_json(text: str | bytes) -> Any:
    """`text` read by json, nesting bounded; LimitError, or ValueError for text not JSON."""
    if isinstance(text, bytes) and text.count(b"[") + text.count(b"{") > MAX_NESTING:
        text = text.decode("utf-8-sig")  # as json.loads would read a feed's bytes
    if isinstance(text, str) and text.count("[") + text.count("{") > MAX_NESTING:
        json_value_end(text, 0)
    try:
        return json.loads(text)
    except RecursionError:
        raise _too_deep() from None


def json_value_end(text: str, start: int, limit: int = MAX_NESTING) -> int | None:
    """Where the JSON array or object opening at `start` ends (strings skipped), None when it
    is not closed; LimitError when it nests more than `limit` levels."""
    depth = 0
    for token in _JSON_TOKENS.finditer(text, start):
        mark = token.group()
        if mark in "[{":
            depth += 1
            if depth > limit:
                raise _too_deep(limit)
        elif mark in "]}":
            depth -= 1
            if depth == 0:
                return token.end()
    return None


def prune_json(text: str, level: int, marker: str, limit: int = MAX_NESTING) -> tuple[str, int]:
    """`text` with each array or object opened at `level` that nests more than `limit` levels
    replaced by the JSON string `marker`, and how many were; the rest left as it is."""
    spans: list[tuple[int, int]] = []
    opened: list[int] = []
    bad = False
    for token in _JSON_TOKENS.finditer(text):
        mark = token.group()
        if mark in "[{":
            opened.append(token.start())
            bad = bad or len(opened) > limit
        elif mark in "]}" and opened:
            start = opened.pop()
            if len(opened) == level - 1 and bad:
                spans.append((start, token.end()))
                bad = False
    if not spans:
        return text, 0
    parts, end = [], 0
    for start, stop in spans:
        parts += [text[end:start], json.dumps(marker)]
        end = stop
    parts.append(text[end:])
    return "".join(parts), len(spans)


def load_toml(text: str) -> dict[str, Any]:
    """`text` read by tomllib, nesting bounded; LimitError, or tomllib.TOMLDecodeError."""
    if text.count("[") + text.count("{") + text.count(".") > MAX_NESTING:
        _check_toml_depth(text)
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise _too_deep() from None


def _check_toml_depth(text: str, limit: int = MAX_NESTING) -> None:
    """LimitError when brackets, or dotted keys (`a.b.c = 1`, `[a.b.c]`), nest too deep."""
    depth = dots = 0
    for token in _TOML_TOKENS.finditer(text):
        mark = token.group()
        if mark in "[{":
            depth += 1
        elif mark in "]}":
            depth = max(0, depth - 1)
        elif mark == ".":
            dots += 1  # a key's dots nest; a value has one at most (1.5), which is no harm
        elif mark in "=,\n":
            dots = 0
        if depth + dots > limit:
            raise _too_deep(limit)
