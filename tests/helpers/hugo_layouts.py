"""Small Hugo sites, one per way Hugo finds its config and content, and real Hugo's view of them.

Each layout is a dict of files; `hugo_pages` builds a copy with the installed `hugo` and a home
page layout that writes every regular page (file, language, section, URLs, date) as JSON.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

HUGO = shutil.which("hugo")
CLOCK = "2026-12-06T12:00:00Z"

_ORACLE_LAYOUT = """\
{{- $pages := slice -}}
{{- range .Site.RegularPages -}}
{{- $pages = $pages | append (dict "file" .File.Filename "lang" .Lang "section" .Section
    "abs" .Permalink "date" (cond .Date.IsZero "" (.Date.Format "2006-01-02T15:04:05-07:00"))) -}}
{{- end -}}
{{- dict "main" site.Params.mainSections "pages" $pages | jsonify -}}
"""


def _post(title: str, date: str, extra: str = "") -> str:
    return f'---\ntitle: "{title}"\ndate: {date}\n{extra}---\nThe text of {title}.\n'


# One site per layout; every one has posts whose URL, date and section depend on it.
LAYOUTS: dict[str, dict[str, str]] = {
    "hugo-yml": {
        "hugo.yml": (
            "baseURL: https://yml.example.org/\ntimeZone: Europe/Oslo\n"
            "permalinks:\n  posts: /:year/:month/:slug/\n"
        ),
        # digest's own config file name: not Hugo's config while hugo.yml is there
        "config.yaml": "baseURL: https://wrong.example.org/\n",
        "content/posts/one-digit-hour.md": _post("Hour", '"2019-04-09T8:09:26-07:00"'),
        "content/posts/plain-day.md": _post("Day", "2021-11-17"),
        "content/posts/named-zone.md": _post("Named", '"Tue, 09 Apr 2019 22:09:26 PDT"'),
        "content/notes/a-note.md": _post("Note", "2020-01-01"),
    },
    "hugo-json": {
        "hugo.json": json.dumps(
            {
                "baseURL": "https://json.example.org/blog/",
                "permalinks": {"articles": "/:year/:slug/"},
                "frontmatter": {"date": [":filename", ":default"]},
            }
        ),
        "content/articles/2020-05-06-from-the-name.md": "---\ntitle: Named\n---\nText.\n",
        "content/articles/2021-07-08-bundle/index.md": "---\ntitle: Bundle\n---\nText.\n",
        "content/articles/dated.md": _post("Dated", "2022-02-03T04:05:06Z"),
    },
    "config-dirs": {
        "config/_default/hugo.toml": (
            'baseURL = "http://localhost/"\ntitle = "Dirs"\n[params]\nmainSections = ["news"]\n'
        ),
        "config/_default/permalinks.toml": 'news = "/n/:year/:month/:day/:slug/"\n',
        "config/production/hugo.toml": 'baseURL = "https://prod.example.org/"\n',
        "config/development/hugo.toml": 'baseURL = "https://dev.example.org/"\n',
        "content/news/first.md": _post("First", "2023-03-04T05:06:07+01:00"),
        "content/news/second.md": _post("Second", '"2023-03-05 10:00:00 +0100"'),
    },
    "mounts-lang": {
        "hugo.toml": (
            'baseURL = "https://mounts.example.org/"\ndefaultContentLanguage = "en"\n'
            "[languages.en]\nweight = 1\n[languages.fr]\nweight = 2\n"
            '[[module.mounts]]\nsource = "content/en"\ntarget = "content"\nlang = "en"\n'
            '[[module.mounts]]\nsource = "content/fr"\ntarget = "content"\nlang = "fr"\n'
        ),
        "content/en/posts/hello.md": _post("Hello", "2024-01-02"),
        "content/en/posts/bonjour.fr.md": _post("Bonjour ici", "2024-01-03"),
        "content/fr/posts/salut.md": _post("Salut", "2024-01-04"),
        "content/en/about.md": _post("About", "2024-01-05"),
    },
    "mounts-no-lang": {
        "hugo.toml": (
            'baseURL = "https://src.example.org/"\n'
            '[[module.mounts]]\nsource = "src/content"\ntarget = "content"\n'
            'excludeFiles = ["**/wip-*.md"]\n'
            '[[module.mounts]]\nsource = "extra"\ntarget = "content/posts"\n'
            'includeFiles = "*.md"\n'
        ),
        "src/content/posts/kept.md": _post("Kept", "2024-02-01"),
        "src/content/posts/wip-draft.md": _post("Work in progress", "2024-02-02"),
        "extra/added.md": _post("Added", "2024-02-03"),
        "extra/deeper/left-out.md": _post("Left out", "2024-02-04"),
        # without mounts this would be the content; with them it is not read
        "content/posts/ignored.md": _post("Ignored", "2024-02-05"),
    },
    # A Docsy-like site: config.yaml (digest's own file name, but in another folder here).
    "config-yaml": {
        "config.yaml": (
            "baseURL: https://docsy.example.org/\nlanguages:\n  en:\n    contentDir: content/en\n"
            "params:\n  mainSections: [blog]\n"
        ),
        "content/en/blog/news.md": _post("News", "2025-06-07T08:00:00Z"),
        "content/en/docs/guide.md": _post("Guide", "2025-06-08"),
    },
    # A theme in the tree: its params (mainSections) and its content count, the site's win.
    "theme-in-tree": {
        "hugo.toml": (
            'baseURL = "https://theme.example.org/"\ntheme = "paper"\n'
            '[permalinks]\nnotes = "/n/:slug/"\n'
        ),
        "themes/paper/hugo.toml": (
            '[params]\nmainSections = ["notes"]\n[permalinks]\nposts = "/theme-only/:slug/"\n'
        ),
        "themes/paper/content/notes/from-theme.md": _post("From the theme", "2025-07-01"),
        "themes/paper/content/notes/shadowed.md": _post("Theme's copy", "2025-07-02"),
        "content/notes/shadowed.md": _post("Site's copy", "2025-07-03"),
        "content/posts/post.md": _post("Post", "2025-07-04"),
    },
    "content-dir-per-language": {
        "hugo.toml": (
            'baseURL = "https://langs.example.org/"\ndefaultContentLanguage = "de"\n'
            '[languages.de]\ncontentDir = "content/de"\nweight = 1\n'
            '[languages.en]\ncontentDir = "content/en"\nweight = 2\n'
            '[languages.nl]\ncontentDir = "content/nl"\nweight = 3\ndisabled = true\n'
        ),
        "content/de/blog/hallo.md": _post("Hallo", "2025-05-06"),
        "content/en/blog/hello.md": _post("Hello", "2025-05-07"),
        "content/nl/blog/hallo.md": _post("Nederlands", "2025-05-08"),
    },
}


def write_layout(name: str, root: Path) -> Path:
    """The files of layout `name` under `root`; returns `root`."""
    for relative, text in LAYOUTS[name].items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def hugo_pages(site: Path, work: Path) -> dict[str, Any]:
    """Real Hugo's regular pages of `site` (drafts, future and expired included): file (from
    the site root), lang, section, abs, date; and the mainSections it uses."""
    assert HUGO is not None
    copy = work / "hugo-source"
    shutil.copytree(site, copy)
    layouts = copy / "layouts"
    layouts.mkdir(exist_ok=True)
    (layouts / "index.html").write_text(_ORACLE_LAYOUT, encoding="utf-8")
    out = work / "hugo-out"
    result = subprocess.run(
        [HUGO, "-s", str(copy), "-d", str(out), "--clock", CLOCK, "--quiet", "-D", "-F", "-E"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    prefix = str(copy.resolve()) + "/"
    pages: list[dict[str, Any]] = []
    main: list[str] = []
    for index in sorted(out.rglob("index.html")):
        text = index.read_text(encoding="utf-8").strip()
        if text.startswith("{"):
            data = json.loads(text)
            main = data["main"] or main
            for page in data["pages"]:
                page["file"] = page["file"].removeprefix(prefix)
                pages.append(page)
    pages.sort(key=lambda p: (p["file"], p["lang"]))
    return {"main": main, "pages": pages}
