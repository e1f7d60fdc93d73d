"""The report's charts as inline SVG, drawn by pygal: no script, no font, no request.

report ─► charts: each chart is drawn twice, narrow for a phone (375 px) and wide for a desk,
so its words stay readable at both; the page shows the one that fits.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pygal
from pygal.style import Style

# pygal appends an old-style import hook (for its map plugins, unused here) that makes every
# later import in the process warn (ImportWarning: no find_spec): take it out again.
sys.meta_path[:] = [f for f in sys.meta_path if type(f).__module__ != "pygal"]

# pygal adds an inline <script> with its tooltip config (its tooltips need a script from the
# web, which a file opened offline must not load) and comments naming itself: both go.
_SCRIPT = re.compile(r"<script\b.*?</script>", re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
FONT = "-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,sans-serif"
COLOURS = ("#1d5fd6", "#16a34a", "#dc2626", "#f59e0b", "#7c3aed", "#0891b2", "#6b7280")
# The threshold lines of the rates chart: grey, dashed.
LINE_COLOUR = "#9ca3af"
SIZES = {"narrow": (380, 420), "wide": (820, 400)}


def _style(colours: Sequence[str]) -> Style:
    return Style(
        background="transparent",
        plot_background="transparent",
        foreground="#374151",
        foreground_strong="#111827",
        foreground_subtle="#e5e7eb",
        opacity=".85",
        opacity_hover="1",
        colors=tuple(colours),
        font_family=FONT,
        label_font_size=13,
        major_label_font_size=13,
        legend_font_size=14,
        title_font_size=16,
        value_font_size=12,
        tooltip_font_size=12,
    )


@dataclass(frozen=True)
class Series:
    """One line or set of bars: its name, values (None: no point) and whether it is a
    threshold line (dashed, no dots)."""

    title: str
    values: Sequence[float | None]
    threshold: bool = False


@dataclass(frozen=True)
class Chart:
    """A chart as the page shows it: a title, its two SVG drawings and the figures as a table."""

    key: str
    title: str
    narrow: str
    wide: str
    columns: list[str]
    rows: list[list[str]]


def _render(chart: Any) -> str:
    text = str(chart.render(is_unicode=True))
    return _COMMENT.sub("", _SCRIPT.sub("", text))


def _common(size: str, colours: Sequence[str], **extra: Any) -> dict[str, Any]:
    width, height = SIZES[size]
    narrow = size == "narrow"
    return {
        "style": _style(colours),
        "js": [],
        "disable_xml_declaration": True,
        "explicit_size": False,
        "width": width,
        "height": height,
        "legend_at_bottom": True,
        "legend_at_bottom_columns": 2 if narrow else 4,
        "truncate_label": -1,
        "truncate_legend": -1,
        "margin": 6,
        "margin_right": 24 if narrow else 12,  # room for the last x label
        "spacing": 8,
        "show_minor_x_labels": not narrow,
        "x_label_rotation": 0,
        "print_values": False,
        "no_data_text": "",
        **extra,
    }


def _labels(labels: Sequence[str], narrow: bool) -> dict[str, Any]:
    """x labels: all of them when wide; on a phone about four, the rest as minor ticks."""
    if not narrow or len(labels) <= 4:
        return {"x_labels": list(labels)}
    step = max(1, round(len(labels) / 4))
    major = [label for i, label in enumerate(labels) if i % step == 0 or i == len(labels) - 1]
    return {"x_labels": list(labels), "x_labels_major": major, "show_minor_x_labels": False}


def line_chart(
    key: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    stacked: bool = False,
    value_format: str = "{:,.0f}",
    rows: list[list[str]] | None = None,
) -> Chart:
    """Lines over time (stacked and filled: counts that add up, like subscribers by status)."""
    drawings = {}
    for size in SIZES:
        narrow = size == "narrow"
        kind = pygal.StackedLine if stacked else pygal.Line
        colours = [LINE_COLOUR if s.threshold else c for s, c in zip(series, COLOURS, strict=False)]
        chart = kind(
            **{**_common(size, colours), **_labels(labels, narrow)},
            fill=stacked,
            show_dots=not stacked and len(labels) <= 30,
            dots_size=3,
            value_formatter=lambda v: value_format.format(v) if v is not None else "",
        )
        for one in series:
            if one.threshold:
                chart.add(
                    one.title,
                    list(one.values),
                    show_dots=False,
                    stroke_style={"width": 2, "dasharray": "6, 4"},
                )
            else:
                chart.add(one.title, list(one.values), stroke_style={"width": 2.5})
        drawings[size] = _render(chart)
    columns = ["", *(s.title for s in series)]
    table = rows or [
        [label, *(_cell(s.values[i], value_format) for s in series)]
        for i, label in enumerate(labels)
    ]
    return Chart(key, title, drawings["narrow"], drawings["wide"], columns, table)


def bar_chart(
    key: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    horizontal: bool = False,
) -> Chart:
    """Bars side by side per label (runs), or one horizontal bar per label (categories)."""
    drawings = {}
    for size in SIZES:
        narrow = size == "narrow"
        kind = pygal.HorizontalBar if horizontal else pygal.Bar
        extra: dict[str, Any] = {}
        if horizontal:
            extra = {"x_labels": list(labels), "show_legend": len(series) > 1}
            height = max(SIZES[size][1] // 2, 60 + 34 * len(labels))
            extra["height"] = height
        else:
            extra = _labels(labels, narrow)
        extra.update(print_values=horizontal, print_values_position="top")
        chart = kind(
            **{**_common(size, COLOURS), **extra},
            value_formatter=lambda v: f"{v:,.0f}" if v is not None else "",
        )
        for one in series:
            chart.add(one.title, list(one.values))
        drawings[size] = _render(chart)
    columns = ["", *(s.title for s in series)]
    table = [
        [label, *(_cell(s.values[i], "{:,.0f}") for s in series)] for i, label in enumerate(labels)
    ]
    return Chart(key, title, drawings["narrow"], drawings["wide"], columns, table)


def _cell(value: float | None, fmt: str) -> str:
    return fmt.format(value) if value is not None else "–"
