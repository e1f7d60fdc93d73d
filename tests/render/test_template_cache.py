"""Compiled templates kept between processes (Jinja's bytecode cache): used when the template's
text is the same, never when it changed, and a cache that cannot be written costs nothing but
the compile."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from digest.render.renderer import Renderer, _TemplateCache, compile_fingerprint
from tests.helpers.posts import AS_OF, make_post, write_config

UNSUB = "https://news.example.com/u/x"


def _text_part(tmp_path: Path) -> str:
    settings = write_config(tmp_path, extra="templates_dir: t\n")
    renderer = Renderer(settings)
    segment = renderer.render_segment(settings.digest("weekly"), [make_post(1)], as_of=AS_OF)
    return renderer.personalise(segment, name="Bob", email="b@example.org", unsubscribe_url=UNSUB)[
        1
    ]


def test_a_second_renderer_finds_the_compiled_template(tmp_path: Path) -> None:
    templates = tmp_path / "t"
    templates.mkdir()
    source = "{{ posts|length }} for {{ subscriber.name }}\n"
    (templates / "digest.txt.j2").write_text(source, encoding="utf-8")
    assert _text_part(tmp_path) == "1 for Bob\n"
    renderer = Renderer(write_config(tmp_path, extra="templates_dir: t\n"))
    cache = renderer.env.bytecode_cache
    assert cache is not None
    bucket = cache.get_bucket(
        renderer.env, "digest.txt.j2", str(templates / "digest.txt.j2"), source
    )
    assert bucket.code is not None  # what a new process would load instead of compiling


def test_an_edited_template_is_compiled_again(tmp_path: Path) -> None:
    templates = tmp_path / "t"
    templates.mkdir()
    (templates / "digest.txt.j2").write_text("FIRST {{ posts|length }}\n", encoding="utf-8")
    assert _text_part(tmp_path) == "FIRST 1\n"
    (templates / "digest.txt.j2").write_text("SECOND {{ posts|length }}\n", encoding="utf-8")
    assert _text_part(tmp_path) == "SECOND 1\n"


def test_a_cache_that_cannot_be_written_only_costs_the_compile(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("", encoding="utf-8")
    cache = _TemplateCache(directory=str(not_a_folder / "cache"))
    settings = write_config(tmp_path)
    renderer = Renderer(settings)
    renderer.env.bytecode_cache = cache
    segment = renderer.render_segment(settings.digest("weekly"), [make_post(1)], as_of=AS_OF)
    assert "Post number 1" in segment.html


def test_a_damaged_cache_file_is_compiled_over(tmp_path: Path) -> None:
    cache = _TemplateCache(directory=str(tmp_path))
    settings = write_config(tmp_path)
    renderer = Renderer(settings)
    renderer.env.bytecode_cache = cache
    renderer.render_segment(settings.digest("weekly"), [make_post(1)], as_of=AS_OF)
    files = list(tmp_path.glob("__jinja2_*.cache"))
    assert files
    whole = {file: file.read_bytes() for file in files}
    for cut in (10, 60, 200, -20):  # in the pickled header, in the marshalled code
        for file, data in whole.items():
            file.write_bytes(data[:cut])
        again = Renderer(settings)
        again.env.bytecode_cache = cache
        segment = again.render_segment(settings.digest("weekly"), [make_post(1)], as_of=AS_OF)
        assert "Post number 1" in segment.html


def test_the_cache_files_name_what_the_compiled_code_depends_on(tmp_path: Path) -> None:
    settings = write_config(tmp_path)
    plain, other = Renderer(settings), Renderer(settings)
    assert isinstance(plain.env.bytecode_cache, _TemplateCache)
    fingerprint = compile_fingerprint(plain.env)
    assert plain.env.bytecode_cache.pattern == f"digest-{fingerprint}-%s.cache"
    assert compile_fingerprint(other.env) == fingerprint  # the same for every renderer
    changes = [
        ("trim_blocks", False),
        ("lstrip_blocks", False),
        ("keep_trailing_newline", False),
        ("block_start_string", "<%"),
        ("newstyle_gettext", False),
    ]
    for attribute, value in changes:
        env = Renderer(settings).env
        setattr(env, attribute, value)
        assert compile_fingerprint(env) != fingerprint, attribute
    env = Renderer(settings).env
    del env.filters["one_line"]  # a template naming it would fail at run time, not compile
    assert compile_fingerprint(env) != fingerprint


def test_a_send_in_a_new_process_loads_the_templates_it_compiled_before(tmp_path: Path) -> None:
    """The point of it: the second process compiles none of the bundled templates."""
    script = """
import jinja2, sys
from digest.render.renderer import Renderer
from tests.helpers.posts import AS_OF, make_post, write_config
from pathlib import Path
compiled = []
real = jinja2.Environment.compile
def counting(self, source, name=None, filename=None, raw=False, defer_init=False):
    compiled.append(name)
    return real(self, source, name, filename, raw, defer_init)
jinja2.Environment.compile = counting
settings = write_config(Path(sys.argv[1]))
Renderer(settings).render_segment(settings.digest("weekly"), [make_post(1)], as_of=AS_OF)
print(",".join(n for n in compiled if n))
"""
    runs = [
        subprocess.run(
            [sys.executable, "-c", script, str(tmp_path)],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parents[2],
        ).stdout.strip()
        for _ in range(2)
    ]
    # The first may find them compiled by an earlier test; the second always does.
    assert runs[1] == ""
