"""digest: newsletter digests for Jekyll and Hugo blogs and for feeds.

Posts in, one inlined HTML + text email per subscriber out, over SMTP, exactly once.
"""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # __version__ is looked up on demand: importlib.metadata costs more than the rest of
    # `digest --help`, and every `import digest.anything` runs this file.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("digest")
        except PackageNotFoundError:  # pragma: no cover - a source tree without install
            return "0.0.0"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
