"""The docs: README.md stays a front door, docs/ builds and names everything a user can set or run.

In the spirit of sqlite-utils' test_docs: every key of config.example.yaml (and of the contract's
config), every command and option of the click app, and every JSON field the contract names must
appear in docs/, and each failure says exactly what to add and where.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path

import click
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
# The user contract, kept beside the checkout (../shared/CONTRACT.md; one level further up from
# a git worktree), or wherever DIGEST_CONTRACT points.
CONTRACT_PLACES = [ROOT.parent / "shared/CONTRACT.md", ROOT.parent.parent / "shared/CONTRACT.md"]
README_MAX_LINES = 200

_KEY_LINE = re.compile(
    r"^(?P<indent>\s*)(?P<hash>#\s+)?(?P<dash>-\s+)?(?P<key>[a-z_][a-z0-9_]*):(?:\s|$)"
)
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_OPTION = re.compile(r"--?[A-Za-z0-9][\w-]*")
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


# --- what the docs say -------------------------------------------------------------------------


def prose_lines(text: str) -> Iterator[str]:
    """The lines of a Markdown text outside fenced code blocks."""
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            yield line


def code_spans(text: str) -> list[str]:
    """Every inline code span of a Markdown text (fenced blocks do not count as documenting)."""
    return [m.group(2).strip() for line in prose_lines(text) for m in _CODE_SPAN.finditer(line)]


def docs_texts(docs_dir: Path = DOCS) -> dict[str, str]:
    return {f"docs/{p.name}": p.read_text(encoding="utf-8") for p in sorted(docs_dir.glob("*.md"))}


# --- config keys -------------------------------------------------------------------------------


def config_keys(yaml_text: str) -> list[tuple[str, int]]:
    """The keys of a commented example config, flattened (`smtp.rate_limit`), with line numbers.

    Keys under `digests` are digest names chosen by the user: they become `<name>`. A mapping
    whose default is null or {} may list its keys in comments below it (`#   domain: ...`);
    those count too, and so do the keys of a flow mapping written as a value (`{secret: ...}`).
    """
    keys: list[tuple[str, int]] = []
    stack: list[tuple[int, str, bool]] = []  # (column, key, takes commented children)
    for number, line in enumerate(yaml_text.splitlines(), start=1):
        match = _KEY_LINE.match(line)
        if not match:
            continue
        column = len(match["indent"]) + len(match["hash"] or "") + len(match["dash"] or "")
        commented = match["hash"] is not None
        while stack and stack[-1][0] >= column:
            stack.pop()
        if commented and not (stack and stack[-1][2]):
            continue  # a comment, not a key of a null mapping
        value = line[match.end() :].split(" #", 1)[0].strip()
        parents = [key for _, key, _ in stack]
        key = "<name>" if parents == ["digests"] else match["key"]
        path = ".".join([*parents, key])
        keys.append((path, number))
        if value.startswith("{") and value != "{}":
            try:
                flow = yaml.safe_load(value)
            except yaml.YAMLError:
                flow = None
            if isinstance(flow, dict):
                keys.extend((f"{path}.{sub}", number) for sub in flow)
        stack.append((column, key, value in ("", "null", "{}", "~")))
    return list(dict.fromkeys(keys))


def _section_of(path: str) -> str:
    return path.split(".", 1)[0] if "." in path else path


def missing_config_keys(
    yaml_text: str, docs: dict[str, str], source: str = "config.example.yaml"
) -> list[str]:
    """One message per key of the config text that no code span in docs/ names."""
    spans = {span for text in docs.values() for span in code_spans(text)}
    missing = []
    for path, line in config_keys(yaml_text):
        if any(s == path or s.startswith((f"{path}:", f"{path} ")) for s in spans):
            continue
        missing.append(
            f"config key `{path}` ({source} line {line}) is not in docs/: add a row "
            f"'| `{path}` | its default | what it means |' to the `{_section_of(path)}` table "
            "of docs/configuration.md"
        )
    return missing


# --- commands and options ----------------------------------------------------------------------


def walk_commands(
    command: click.Command, path: str = "digest", parent: click.Context | None = None
) -> Iterator[tuple[str, click.Command]]:
    """Every command of the click tree, with its full name (`digest subscribers add`)."""
    context = click.Context(command, info_name=path.rsplit(" ", 1)[-1], parent=parent)
    yield path, command
    if isinstance(command, click.Group):
        for name in command.list_commands(context):
            sub = command.get_command(context, name)
            if sub is not None and not sub.hidden:
                yield from walk_commands(sub, f"{path} {name}", context)


def command_options(command: click.Command) -> list[str]:
    """The option strings of a command (`--name`, `-v`), help left out."""
    return [
        opt
        for param in command.params
        if isinstance(param, click.Option) and not param.hidden
        for opt in (*param.opts, *param.secondary_opts)
    ]


def command_sections(docs: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Headings whose first code span is a command (`### \\`digest send\\``) -> (page, body)."""
    sections: dict[str, tuple[str, str]] = {}
    for page, text in docs.items():
        lines = list(prose_lines(text))
        for i, line in enumerate(lines):
            heading = _HEADING.match(line)
            if not heading:
                continue
            spans = [m.group(2).strip() for m in _CODE_SPAN.finditer(heading[2])]
            if not spans or not spans[0].startswith("digest"):
                continue
            level = len(heading[1])
            body = []
            for following in lines[i + 1 :]:
                nxt = _HEADING.match(following)
                if nxt and len(nxt[1]) <= level:
                    break
                body.append(following)
            sections.setdefault(spans[0], (page, "\n".join(body)))
    return sections


def _table_first_cells(body: str) -> Iterator[str]:
    for line in body.splitlines():
        if line.startswith("|") and not re.match(r"^\|[\s:|-]+\|?\s*$", line):
            cells = re.split(r"(?<!\\)\|(?=(?:[^`]*`[^`]*`)*[^`]*$)", line)
            if len(cells) > 1:
                yield cells[1]


def missing_commands(commands: Iterable[tuple[str, list[str]]], docs: dict[str, str]) -> list[str]:
    """One message per command without a docs section, and per option not in its table."""
    sections = command_sections(docs)
    missing = []
    for name, options in commands:
        if name not in sections:
            missing.append(
                f"command `{name}` has no section in docs/: add a heading '### `{name}`' to "
                "docs/daily-use.md, with what it does, an example and a table of its options"
            )
            continue
        page, body = sections[name]
        documented = {
            opt
            for cell in _table_first_cells(body)
            for span in _CODE_SPAN.finditer(cell)
            for opt in _OPTION.findall(span.group(2))
        }
        for option in options:
            if option not in documented:
                missing.append(
                    f"option `{option}` of `{name}` is not documented: add a row "
                    f"'| `{option} ...` | what it does |' to the options table under "
                    f"'`{name}`' in {page}"
                )
    return missing


def app_commands() -> list[tuple[str, list[str]]]:
    from digest.cli.app import cli

    return [(name, command_options(command)) for name, command in walk_commands(cli)]


# --- the contract's JSON fields ----------------------------------------------------------------


def _blocks(text: str) -> Iterator[str]:
    """Paragraphs, list items and table cells of a Markdown text, outside fenced code."""
    block: list[str] = []
    for line in [*prose_lines(text), ""]:
        if line.startswith("|"):
            yield from re.split(r"(?<!\\)\|(?=(?:[^`]*`[^`]*`)*[^`]*$)", line)
            continue
        if not line.strip() or line.startswith(("- ", "#")):
            if block:
                yield " ".join(block)
            block = [line] if line.startswith("- ") else []
            continue
        block.append(line)


def contract_json_fields(contract_text: str) -> list[str]:
    """The names in code spans that follow the word `json` in a cell, paragraph or list item."""
    fields: list[str] = []
    for block in _blocks(contract_text):
        start = re.search(r"\bjson\b", block)
        if not start:
            continue
        for match in _CODE_SPAN.finditer(block):
            name = match.group(2).strip()
            if match.end() > start.start() and re.fullmatch(r"[a-z][a-z_]*", name):
                fields.append(name)
    return list(dict.fromkeys(fields))


def missing_contract_fields(contract_text: str, docs: dict[str, str]) -> list[str]:
    spans = {span for text in docs.values() for span in code_spans(text)}
    return [
        f"JSON field `{name}` named in CONTRACT.md is not in docs/: name it in a code span "
        "where its command's JSON output is described in docs/daily-use.md (or, if this "
        "version does not produce it yet, under 'In the contract, not built yet')"
        for name in contract_json_fields(contract_text)
        if name not in spans
    ]


def contract_config_yaml(contract_text: str) -> str:
    """The YAML block of the contract's Config section."""
    section = contract_text.split("## Config", 1)[-1]
    match = re.search(r"```yaml\n(.*?)```", section, re.S)
    return match.group(1) if match else ""


# --- links -------------------------------------------------------------------------------------


def heading_ids(text: str) -> set[str]:
    """The anchors MkDocs gives a page's headings (Python-Markdown's toc slugify)."""
    ids = set()
    for line in prose_lines(text):
        heading = _HEADING.match(line)
        if heading:
            title = unicodedata.normalize("NFKD", heading[2].replace("`", ""))
            title = re.sub(r"[^\w\s-]", "", title.encode("ascii", "ignore").decode()).strip()
            ids.add(re.sub(r"[-\s]+", "-", title.lower()))
    return ids


def broken_links(path: Path) -> list[str]:
    """Relative links of a Markdown file whose target file (or heading) does not exist."""
    broken = []
    text = path.read_text(encoding="utf-8")
    for line in prose_lines(text):
        for match in _LINK.finditer(line):
            target = match.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                continue  # http:, https:, mailto:
            file, _, anchor = target.partition("#")
            found = path.parent / file if file else path
            if not found.exists():
                broken.append(f"{path.relative_to(ROOT)}: link to {target} finds no file")
            elif anchor and anchor not in heading_ids(found.read_text(encoding="utf-8")):
                broken.append(f"{path.relative_to(ROOT)}: link to {target}: no such heading")
    return broken


# --- the tests ---------------------------------------------------------------------------------


def test_readme_is_a_front_door_of_at_most_200_lines() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move reference "
        "material into the fitting page of docs/"
    )


def test_every_relative_link_in_readme_and_docs_resolves() -> None:
    files = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    assert [b for f in files for b in broken_links(f)] == []


def test_readme_links_into_docs() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = {m.group(1).split("#")[0] for m in _LINK.finditer(text)}
    pages = {f"docs/{p.name}" for p in DOCS.glob("*.md")}
    assert sorted(pages - linked) == [], (
        "add a row '| [page](docs/page.md) | what it holds |' for each of these to the table "
        "under '## Documentation' in README.md (and the page to `nav:` in mkdocs.yml)"
    )


def test_every_config_key_is_documented() -> None:
    text = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    assert missing_config_keys(text, docs_texts()) == []


def test_the_config_check_names_an_undocumented_key() -> None:
    text = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    keys = [path for path, _ in config_keys(text)]
    assert {"smtp.rate_limit", "digests.<name>.schedule", "email.dkim.selector"} <= set(keys)
    assert "bounces.webhooks.postmark.username" in keys
    extra = text.replace("smtp:\n", "smtp:\n  shiny_new_knob: 3\n", 1)
    assert missing_config_keys(extra, docs_texts()) == [
        "config key `smtp.shiny_new_knob` (config.example.yaml line "
        f"{extra.splitlines().index('  shiny_new_knob: 3') + 1}) is not in docs/: add a row "
        "'| `smtp.shiny_new_knob` | its default | what it means |' to the `smtp` table of "
        "docs/configuration.md"
    ]


def test_every_command_and_option_is_documented() -> None:
    assert missing_commands(app_commands(), docs_texts()) == []


def test_the_command_check_names_an_undocumented_command_and_option() -> None:
    commands = dict(app_commands())
    assert "--workers" in commands["digest send"]
    fake = [("digest send", [*commands["digest send"], "--turbo"]), ("digest frobnicate", [])]
    assert [m.split(":")[0] for m in missing_commands(fake, docs_texts())] == [
        "option `--turbo` of `digest send` is not documented",
        "command `digest frobnicate` has no section in docs/",
    ]


def find_contract() -> Path | None:
    given = os.environ.get("DIGEST_CONTRACT")
    places = [Path(given)] if given else CONTRACT_PLACES
    return next((p for p in places if p.is_file()), None)


def test_every_contract_config_key_and_json_field_is_documented() -> None:
    contract = find_contract()
    if contract is None:
        pytest.skip("no CONTRACT.md in ../shared/ beside the checkout (or $DIGEST_CONTRACT)")
    text = contract.read_text(encoding="utf-8")
    fields = contract_json_fields(text)
    assert {"possible_resends", "bounced_later", "unmatched", "subscriber_reason"} <= set(fields)
    docs = docs_texts()
    problems = missing_config_keys(contract_config_yaml(text), docs, source="CONTRACT.md config")
    assert [*problems, *missing_contract_fields(text, docs)] == []


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed: pip install -e '.[dev]' brings it")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "configuration" / "index.html").exists()
