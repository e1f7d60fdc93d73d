"""digest: newsletter digests for Jekyll blogs.

Posts in, one inlined HTML + text email per subscriber out, over SMTP, exactly once.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("digest")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"
