"""Small Jekyll sites shaped like real blogs, and real Jekyll's view of them (when installed)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

# A page that makes Jekyll dump `site.posts` as JSON: the oracle our reading is checked against.
_DUMP_PAGE = """---
layout: null
permalink: /posts.json
---
[{% for p in site.posts %}{"relative_path": {{ p.relative_path | jsonify }},
 "abs": {{ p.url | absolute_url | jsonify }},
 "date": {{ p.date | date: "%Y-%m-%dT%H:%M:%S%:z" | jsonify }},
 "categories": {{ p.categories | jsonify }}, "tags": {{ p.tags | jsonify }},
 "title": {{ p.title | jsonify }},
 "excerpt": {{ p.excerpt | strip_html | normalize_whitespace | jsonify }}}
{% unless forloop.last %},{% endunless %}{% endfor %}]
"""

# A site like ruby-lang.org, jekyllrb.com and brew.sh at once: nested _posts, collection and
# scoped-defaults permalinks, Liquid with site.data, reference links, kramdown extras, odd dates.
SHAPED_SITE: dict[str, str] = {
    "_config.yml": """
title: Shaped
url: https://blog.example.org
repository: https://github.com/example/shaped
timezone: America/Los_Angeles
lang: ja
permalink: ":title"
collections:
  posts:
    permalink: /news/:year/:month/:day/:title/
defaults:
  - scope: {path: "", type: posts}
    values: {layout: post}
  - scope: {path: blog, type: posts}
    values: {permalink: "/blog/:year/:title/"}
exclude: [vendor-notes]
""",
    "_data/releases.yml": """
- version: "1.0"
  url: https://example.org/shaped-1.0.tar.gz
- version: "0.9"
  url: https://example.org/shaped-0.9.tar.gz
""",
    "_posts/2023-01-29-odd-date.md": """---
title: Odd date
date: 2023-01-29 18:30:22 2023 -0800
---
Jekyll reads the date up to the time and ignores the rest.
""",
    "_posts/2017-09-11-day-first.md": """---
title: Day first
date: 11-9-2017
---
A day-month-year date.
""",
    "_posts/2020-02-02-no-front-matter.md": "A post without front matter.\n\nSecond paragraph.\n",
    "_posts/2020-03-03-dots.md": """---
title: Closed by dots
categories: Release
...
Front matter closed by three dots.
""",
    "_posts/2020-04-04-data.yml": "key: a data file, not a post\n",
    "blog/_posts/2020-05-05-nested.md": """---
title: Nested
tags: [one, two]
---
A post under blog/_posts gets the folder as its category.
""",
    "en/news/_posts/2020-06-06-release.md": """---
title: Shaped 1.0 released
---
{% assign release = site.data.releases | where: "version", "1.0" | first %}
Shaped {{ release.version }} is out: {{ page.title }}. See [#1]({{ site.repository }}/issues/1),
[the dots post]({% link _posts/2020-03-03-dots.md %}) and
[no front matter]({% post_url 2020-02-02-no-front-matter %}).

## Download

* <{{ release.url }}>
""",
    "_posts/2020-07-07-references.md": """---
title: References
---
Read [the docs][docs] and [the home page][home].

More text.

[docs]: https://example.org/docs
[home]: https://example.org/
[unused]: https://example.org/unused
""",
    "_posts/2020-08-08-kramdown.md": """---
title: Kramdown
---
![logo](/logo.png){: .icon width="70"} Big news[^1] today.
{: .lead}

[^1]: A footnote.
""",
    "vendor-notes/_posts/2020-09-09-excluded.md": "---\ntitle: Excluded\n---\nNot read.\n",
}

# What Jekyll 4.3.1 builds from SHAPED_SITE (checked against jekyll by the tests when installed).
SHAPED_EXPECTED: dict[str, tuple[str, str, list[str]]] = {
    "_posts/2023-01-29-odd-date.md": (
        "https://blog.example.org/news/2023/01/29/odd-date/",
        "2023-01-29T18:30:22-08:00",
        [],
    ),
    "_posts/2017-09-11-day-first.md": (
        "https://blog.example.org/news/2017/09/11/day-first/",
        "2017-09-11T00:00:00-07:00",
        [],
    ),
    "_posts/2020-02-02-no-front-matter.md": (
        "https://blog.example.org/news/2020/02/02/no-front-matter/",
        "2020-02-02T00:00:00-08:00",
        [],
    ),
    "_posts/2020-03-03-dots.md": (
        "https://blog.example.org/news/2020/03/03/dots/",
        "2020-03-03T00:00:00-08:00",
        ["Release"],
    ),
    "blog/_posts/2020-05-05-nested.md": (
        "https://blog.example.org/blog/2020/nested/",
        "2020-05-05T00:00:00-07:00",
        ["blog"],
    ),
    "en/news/_posts/2020-06-06-release.md": (
        "https://blog.example.org/news/2020/06/06/release/",
        "2020-06-06T00:00:00-07:00",
        ["en", "news"],
    ),
    "_posts/2020-07-07-references.md": (
        "https://blog.example.org/news/2020/07/07/references/",
        "2020-07-07T00:00:00-07:00",
        [],
    ),
    "_posts/2020-08-08-kramdown.md": (
        "https://blog.example.org/news/2020/08/08/kramdown/",
        "2020-08-08T00:00:00-07:00",
        [],
    ),
}


def write_site(root: Path, files: dict[str, str]) -> Path:
    """Write a site's files under `root`; returns `root`."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.lstrip("\n"), encoding="utf-8")
    return root


def jekyll_posts(source: Path, work: Path) -> list[dict[str, Any]]:
    """Real Jekyll's `site.posts` of the site at `source` (built in a copy under `work`)."""
    jekyll = shutil.which("jekyll")
    assert jekyll is not None
    copy = work / "jekyll-source"
    shutil.copytree(source, copy)
    (copy / "posts-dump.json").write_text(_DUMP_PAGE, encoding="utf-8")
    out = work / "jekyll-out"
    result = subprocess.run(
        [jekyll, "build", "--safe", "--quiet", "--source", str(copy), "--destination", str(out)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    posts: list[dict[str, Any]] = json.loads((out / "posts.json").read_text(encoding="utf-8"))
    return posts
