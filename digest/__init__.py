"""digest: newsletter digests for Jekyll and Hugo blogs and for feeds.

Posts in, one inlined HTML + text email per subscriber out, over SMTP, exactly once.
"""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # __version__ is looked up on demand: importlib.metadata costs more than the rest of
    # `digest --help`, and every `import digest.anything` runs this file.
    if name == "__version__":
        return _installed_version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _installed_version() -> str:
    """The installed distribution's version, read from its METADATA as importlib.metadata would.

    importlib.metadata imports email, zipfile and csv (40 ms, a third of `digest --version`);
    this reads the one file it would read, and falls back to it for anything unusual.
    """
    import os
    import sys

    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.startswith("digest-") and name.endswith(".dist-info"):
                try:
                    with open(os.path.join(entry, name, "METADATA"), encoding="utf-8") as meta:
                        for line in meta:
                            if line.startswith("Version:"):
                                return line.partition(":")[2].strip()
                            if not line.strip():
                                break
                except OSError:
                    pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("digest")
    except PackageNotFoundError:  # a source tree without install
        return "0.0.0"
