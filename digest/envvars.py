"""`${VAR}` and `${VAR:-default}` in config values, replaced from the environment.

config ─► envvars: a missing variable without a default is a ConfigError naming the key.
"""

from __future__ import annotations

import os
import re
from typing import Any

from digest.errors import ConfigError

# What may stand between ${ and its closing }: a name and an optional :-default.
_VAR = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)


def expand_env(value: Any, environ: dict[str, str] | os._Environ[str], path: str = "") -> Any:
    """Replace ${VAR} and ${VAR:-default} in every string scalar; $${VAR} stays literal.

    A default may itself hold variables: `${A:-${B:-x}}` is A, else B, else x.
    """
    if isinstance(value, dict):
        return {
            k: expand_env(v, environ, f"{path}.{k}" if path else str(k)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [expand_env(v, environ, f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value
    return _expand_text(value, environ, path)


def _expand_text(text: str, environ: dict[str, str] | os._Environ[str], path: str) -> str:
    out: list[str] = []
    done = 0  # text[:done] is in `out`
    start = text.find("${")
    while start >= 0:
        end = _closing_brace(text, start + 1)
        if end < 0:
            break  # an unclosed ${ is text
        variable = _VAR.fullmatch(text, start + 2, end)
        if start > done and text[start - 1] == "$":  # $${...} is the literal ${...}
            out.append(text[done : start - 1] + text[start : end + 1])
            done = end + 1
        elif variable is None:  # ${not a name} is text; a variable may follow inside it
            out.append(text[done : start + 2])
            done = start + 2
        else:
            name, default = variable.group(1), variable.group(2)
            out.append(text[done:start])
            if name in environ and (environ[name] != "" or default is None):
                out.append(environ[name])
            elif default is not None:
                out.append(_expand_text(default, environ, path))
            else:
                raise ConfigError(
                    f"{path}: environment variable {name} is not set (write ${{{name}:-default}} "
                    "to give a default)"
                )
            done = end + 1
        start = text.find("${", done)
    out.append(text[done:])
    return "".join(out)


def _closing_brace(text: str, opening: int) -> int:
    """The index of the `}` that closes the `{` at `opening` (braces nest), or -1."""
    depth = 0
    for index in range(opening, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    return -1
