"""Read the YAML config, expand ${VAR}, detect the site, validate it into typed settings.

config.yaml ─► config ─► settings (the typed result); every error names the file and the key.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from digest.errors import ConfigError
from digest.settings import DEFAULT_CONFIG, Settings
from digest.sources.detection import check_site_source, detect_site

__all__ = ["DEFAULT_CONFIG", "Settings", "expand_env", "load_settings", "resolve_config_path"]

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


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: config file not found",
            hint="pass --config PATH, set DIGEST_CONFIG, or run `digest demo` for an example",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from exc


def _describe(error: Any) -> str:
    loc = ".".join(str(p) for p in error["loc"] if p != "__root__")
    loc = loc.replace("from_", "from")
    kind = error["type"]
    if kind == "missing":
        return f"{loc}: required key is missing"
    if kind == "extra_forbidden":
        return f"{loc}: unknown key"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{loc}: {message}" if loc else message


def resolve_config_path(path: str | Path | None, environ: dict[str, str] | None = None) -> Path:
    """--config, else $DIGEST_CONFIG, else ./config.yaml."""
    env = os.environ if environ is None else environ
    return Path(path or env.get("DIGEST_CONFIG") or DEFAULT_CONFIG)


def load_settings(
    path: str | Path | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """Read, expand and validate the config; relative paths resolve against its folder."""
    source = resolve_config_path(path, environ).absolute()
    raw = _read_yaml(source)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the config must be a mapping of keys (site:, smtp:, ...)")
    try:
        data = expand_env(raw, os.environ if environ is None else environ)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc.message}") from None

    base = source.parent
    site = data.get("site")
    if isinstance(site, dict):
        data["site"] = detect_site(site, base)
    if data.get("templates_dir"):
        data["templates_dir"] = base / Path(str(data["templates_dir"]))
    smtp = data.get("smtp")
    if isinstance(smtp, dict) and smtp.get("ca_file"):
        smtp["ca_file"] = base / Path(str(smtp["ca_file"]))
    _resolve_file(data, ("email", "dkim", "private_key_file"), base)
    _resolve_file(data, ("bounces", "imap", "ca_file"), base)
    database = data.get("database")
    if isinstance(database, dict) and isinstance(database.get("url"), str):
        database["url"] = _resolve_sqlite(database["url"], base)
    elif database is None:
        data["database"] = {"url": _resolve_sqlite("sqlite:///digest.db", base)}

    try:
        settings = Settings.model_validate({**data, "source": source})
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(exc.errors()[0])}") from None

    check_site_source(settings.site, source)
    if settings.templates_dir is not None and not settings.templates_dir.is_dir():
        raise ConfigError(
            f"{source}: templates_dir: folder {settings.templates_dir} does not exist"
        )
    if settings.smtp.ca_file is not None and not settings.smtp.ca_file.is_file():
        raise ConfigError(f"{source}: smtp.ca_file: file {settings.smtp.ca_file} does not exist")
    for key, path in _files_that_must_exist(settings):
        if not path.is_file():
            raise ConfigError(f"{source}: {key}: file {path} does not exist")
    return settings


def _files_that_must_exist(settings: Settings) -> list[tuple[str, Path]]:
    files = []
    if settings.email.dkim is not None:
        files.append(("email.dkim.private_key_file", settings.email.dkim.private_key_file))
    imap = settings.bounces.imap
    if imap is not None and imap.ca_file is not None:
        files.append(("bounces.imap.ca_file", imap.ca_file))
    return files


def _resolve_file(data: dict[str, Any], keys: tuple[str, ...], base: Path) -> None:
    """A file path at data[k1][k2]... made relative to the config folder, when it is there."""
    parent: Any = data
    for key in keys[:-1]:
        parent = parent.get(key) if isinstance(parent, dict) else None
    if isinstance(parent, dict) and parent.get(keys[-1]):
        parent[keys[-1]] = base / Path(str(parent[keys[-1]]))


def _resolve_sqlite(url: str, base: Path) -> str:
    """sqlite:///relative.db resolves against the config folder; other URLs pass through."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith("sqlite:////"):
        rest = url[len(prefix) :]
        if rest and rest != ":memory:" and not rest.startswith("file:"):
            return prefix + str((base / rest).resolve())
    return url
