"""A segment's body cut at its placeholders once, so each subscriber's copy is a join of bytes.

render ─► fill_in ─► message: MessageTemplate keeps one FillIn per body part; transfer_encoding
prebuilds the encoded lines that hold no personal value.
"""

from __future__ import annotations

import re
from functools import cached_property

from digest.mail.transfer_encoding import Base64Pieces, QuotedPrintablePieces
from digest.render.renderer import PLACEHOLDERS

_PLACEHOLDER_SPLIT = re.compile("(" + "|".join(re.escape(p) for p in PLACEHOLDERS) + ")")


class FillIn:
    """A body cut at its placeholders once, so each subscriber's copy is one join of bytes.

    Same result as personalise's one-pass substitution (a value is never expanded again),
    without scanning the whole body, or encoding it to UTF-8, per subscriber.
    """

    def __init__(self, text: str) -> None:
        pieces = _PLACEHOLDER_SPLIT.split(text)
        self._static = [piece.encode("utf-8") for piece in pieces]  # placeholders: replaced
        self._keys = pieces[1::2]

    def fill(self, values: dict[str, str]) -> bytes:
        """The body's UTF-8 bytes with each placeholder replaced by its value."""
        pieces = self._static.copy()
        pieces[1::2] = [values[key].encode("utf-8") for key in self._keys]
        return b"".join(pieces)

    @cached_property
    def _base64(self) -> Base64Pieces:
        return Base64Pieces(self._static[::2])

    @cached_property
    def _qp(self) -> QuotedPrintablePieces:
        return QuotedPrintablePieces(self._static[::2])

    def fill_base64(self, values: dict[str, str]) -> bytes:
        """encode_base64(fill(values)), its fixed lines encoded once (transfer_encoding)."""
        return self._base64.encode([values[key].encode("utf-8") for key in self._keys])

    def fill_qp(self, values: dict[str, str]) -> bytes:
        """encode_qp(fill(values)), its fixed lines encoded once (transfer_encoding)."""
        return self._qp.encode([values[key].encode("utf-8") for key in self._keys])
