"""The limits every Liquid render of a post runs under: loop iterations, sizes, and time.

liquid ─► limits: python-liquid counts loops and sizes; the time limit is ours, checked before
every node is rendered, so no excerpt (`{% for i in (1..1000000000) %}`) runs away.
"""

from __future__ import annotations

import time
from typing import Any

from liquid import BoundTemplate, Environment, RenderContext
from liquid.exceptions import ResourceLimitError

# An excerpt's Liquid never needs more: Jekyll themes loop over a handful of posts or tags.
LOOP_ITERATIONS = 100_000
# Bytes of rendered output and of assigned values (a string doubled with `append`).
OUTPUT_BYTES = 1024 * 1024
NAMESPACE_BYTES = 1024 * 1024
# Seconds one excerpt's Liquid may take.
RENDER_SECONDS = 1.0


class RenderTimeLimitError(ResourceLimitError):
    """An excerpt's Liquid took longer than its time limit."""


class TimedContext(RenderContext):
    """A render context that stops the render once its deadline has passed.

    python-liquid reads `disabled_tags` before it renders any node (every tag, every output,
    every loop iteration's body), which makes it the one place to look at the clock.
    """

    deadline: float = float("inf")

    @property
    def disabled_tags(self) -> list[str]:
        if time.monotonic() > self.deadline:
            raise RenderTimeLimitError("render time limit reached", token=None)
        tags: list[str] = _SLOT.__get__(self, RenderContext)
        return tags

    @disabled_tags.setter
    def disabled_tags(self, value: list[str]) -> None:
        _SLOT.__set__(self, value)

    def copy(self, *args: Any, **kwargs: Any) -> RenderContext:
        """An include's or a render's context keeps the deadline of the whole render."""
        context = super().copy(*args, **kwargs)
        if isinstance(context, TimedContext):
            context.deadline = self.deadline
        return context


_SLOT: Any = RenderContext.__dict__["disabled_tags"]


class TimedTemplate(BoundTemplate):
    """A template whose every render ends by `seconds` after it starts."""

    context_class = TimedContext
    seconds: float = RENDER_SECONDS

    def render(self, *args: Any, **kwargs: Any) -> str:
        context = TimedContext(self, globals=self.make_globals(dict(*args, **kwargs)))
        context.deadline = time.monotonic() + self.seconds
        buffer = self._get_buffer()
        self.render_with_context(context, buffer)
        return buffer.getvalue()


class LimitedEnvironment(Environment):
    """An environment whose templates render under every limit above."""

    template_class = TimedTemplate
    loop_iteration_limit = LOOP_ITERATIONS
    output_stream_limit = OUTPUT_BYTES
    local_namespace_limit = NAMESPACE_BYTES


def describe_limit(exc: ResourceLimitError) -> str:
    """The limit a render hit, for its one warning."""
    what = str(exc.args[0]) if exc.args else type(exc).__name__
    return (
        f"{what} (limits: {LOOP_ITERATIONS:,} loop iterations, {OUTPUT_BYTES // 1024} KiB of "
        f"output and of assigned values, {RENDER_SECONDS:g} s)"
    )
