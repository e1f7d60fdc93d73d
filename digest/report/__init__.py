"""`digest report`: one self-contained HTML file with charts of the list and its runs.

store (stats, runs) ─► report ─► one HTML page (Jinja, from templates/report.html.j2) with the
charts inline as SVG (report.charts, pygal): it needs no network to be read, in site.lang.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import jinja2

from digest.i18n import format_date, text_direction, translations
from digest.render.renderer import bundled_templates_dir, digest_title
from digest.report.charts import Chart, Series, bar_chart, line_chart
from digest.store.models import ACTIVE, BOUNCED, PENDING, UNSUBSCRIBED
from digest.store.runs import RunSummary, history
from digest.store.stats import (
    SubscriberGroup,
    active_by_category,
    active_by_digest,
    subscriber_groups,
)

if TYPE_CHECKING:
    from digest.settings import Settings
    from digest.store import Store

TEMPLATE = "report.html.j2"
DEFAULT_DAYS = 90
MAX_CATEGORIES = 15  # the most read; the rest are summed up as "other categories"
# Gmail and Yahoo's lines for bulk senders: spam complaints under 0.1%, never 0.3%.
AIM_UNDER = 0.1
NEVER_REACH = 0.3
STATUSES = (ACTIVE, PENDING, UNSUBSCRIBED, BOUNCED)


@dataclass(frozen=True)
class Report:
    """The page's figures, ready to draw."""

    charts: list[Chart]
    summary: list[tuple[str, str]]


def _status_on(group: SubscriberGroup, day: date) -> str | None:
    """A group's status at the end of `day`: None before they joined (confirmed, where the
    record says when). Before they left or bounced, they were active; the list keeps no other
    history, and the wait for a confirmation is hours, not weeks."""
    if group.created > day:
        return None
    if group.changed <= day or group.status in (ACTIVE, PENDING):
        return group.status
    return ACTIVE


def timeline_days(start: date, end: date) -> list[date]:
    """The days the subscriber chart has a point for: each day up to two months, else
    each week (ending today)."""
    span = (end - start).days
    step = 1 if span <= 62 else 7
    days = [end - timedelta(days=step * i) for i in range(span // step + 1)]
    return sorted(d for d in days if d >= start)


class ReportBuilder:
    """Builds the report for one config and store, in the site's language."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.lang = settings.site.lang
        self.tz = settings.site.tz
        self.translations = translations(self.lang)

    def _(self, message: str, **values: object) -> str:
        text = self.translations.gettext(message)
        return text % values if values else text

    def day(self, value: date | datetime, fmt: str = "d MMM") -> str:
        return format_date(value, self.lang, self.tz, fmt)

    def status_name(self, status: str) -> str:
        names = {
            ACTIVE: self._("active"),
            PENDING: self._("pending"),
            UNSUBSCRIBED: self._("unsubscribed"),
            BOUNCED: self._("bounced"),
        }
        return names[status]

    def subscribers_chart(self, start: date, end: date) -> Chart:
        groups = subscriber_groups(self.store)
        days = timeline_days(start, end)
        counts = {status: [0.0] * len(days) for status in STATUSES}
        for i, day in enumerate(days):
            for group in groups:
                status = _status_on(group, day)
                if status is not None:
                    counts[status][i] += group.count
        series = [Series(self.status_name(s), counts[s]) for s in STATUSES]
        return line_chart(
            "subscribers",
            self._("Subscribers over time, by status"),
            [self.day(d) for d in days],
            series,
            stacked=True,
        )

    def runs_chart(self, runs: list[RunSummary]) -> Chart:
        labels = [self.run_label(run) for run in runs]
        series = [
            Series(self._("sent"), [float(r.sent) for r in runs]),
            Series(self._("failed"), [float(r.failed) for r in runs]),
            Series(self._("bounced later"), [float(r.bounced_later) for r in runs]),
            Series(self._("complaints"), [float(r.complaints) for r in runs]),
        ]
        return bar_chart(
            "runs", self._("Each run: sent, failed, bounced, complaints"), labels, series
        )

    def rates_chart(self, runs: list[RunSummary]) -> Chart:
        labels = [self.run_label(run) for run in runs]
        bounce = [
            100.0 * (r.failed + r.bounced_later) / (r.sent + r.failed)
            if r.sent + r.failed
            else None
            for r in runs
        ]
        complaint = [100.0 * r.complaints / r.sent if r.sent else None for r in runs]
        series = [
            Series(self._("bounce rate"), bounce),
            Series(self._("complaint rate"), complaint),
            Series(self._("0.1%: stay under"), [AIM_UNDER] * len(runs), threshold=True),
            Series(self._("0.3%: never reach"), [NEVER_REACH] * len(runs), threshold=True),
        ]
        return line_chart(
            "rates",
            self._("Bounce and complaint rates per run (%)"),
            labels,
            series,
            value_format="{:.2f}%",
        )

    def categories_chart(self) -> Chart:
        per, everything = active_by_category(self.store)
        top = per.most_common(MAX_CATEGORIES)
        rest = sum(per.values()) - sum(n for _, n in top)
        labels = [self._("every post (no category chosen)"), *(name for name, _ in top)]
        values = [float(everything), *(float(n) for _, n in top)]
        if rest:
            labels.append(self._("other categories"))
            values.append(float(rest))
        return bar_chart(
            "categories",
            self._("Active subscribers per category"),
            labels,
            [Series(self._("subscribers"), values)],
            horizontal=True,
        )

    def digests_chart(self) -> Chart:
        names = list(self.settings.digests)
        counts = active_by_digest(self.store, names)
        titles = [digest_title(self.settings.digests[n], self.lang) for n in names]
        return bar_chart(
            "digests",
            self._("Active subscribers per digest"),
            titles,
            [Series(self._("subscribers"), [float(counts[n]) for n in names])],
            horizontal=True,
        )

    def run_label(self, run: RunSummary) -> str:
        if len(self.settings.digests) > 1:
            title = (
                digest_title(self.settings.digests[run.digest], self.lang)
                if (run.digest in self.settings.digests)
                else run.digest
            )
            return f"{self.day(run.as_of)} · {title}"
        return self.day(run.as_of)

    def build(self, *, now: datetime, days: int) -> Report:
        start_at = now - timedelta(days=days)
        with self.store.session() as session:
            runs = [r for r in history(session) if start_at <= r.as_of <= now]
        runs.sort(key=lambda r: (r.as_of, r.id))
        start, end = start_at.astimezone(self.tz).date(), now.astimezone(self.tz).date()
        charts = [
            self.subscribers_chart(start, end),
            self.runs_chart(runs),
            self.rates_chart(runs),
            self.categories_chart(),
            self.digests_chart(),
        ]
        sent = sum(r.sent for r in runs)
        complaints = sum(r.complaints for r in runs)
        bounced = sum(r.failed + r.bounced_later for r in runs)
        active = sum(g.count for g in subscriber_groups(self.store) if g.status == ACTIVE)
        summary = [
            (self._("active subscribers"), f"{active:,}"),
            (self._("runs"), f"{len(runs):,}"),
            (self._("messages sent"), f"{sent:,}"),
            (self._("bounce rate"), _percent(bounced, sent + sum(r.failed for r in runs))),
            (self._("complaint rate"), _percent(complaints, sent)),
        ]
        return Report(charts, summary)


def _percent(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.2f}%" if whole else "–"


def build_report(
    settings: Settings, store: Store, *, now: datetime, days: int = DEFAULT_DAYS
) -> str:
    """The report as one HTML page: the last `days` days up to `now`, in site.lang."""
    builder = ReportBuilder(settings, store)
    report = builder.build(now=now, days=days)
    folders = [bundled_templates_dir()]
    if settings.templates_dir is not None:
        folders.insert(0, settings.templates_dir)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(f) for f in folders]),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(builder.translations, newstyle=True)  # type: ignore[attr-defined]
    site = settings.site
    values: dict[str, Any] = {
        "lang": site.lang,
        "dir": text_direction(site.lang),
        "site_title": site.title,
        "site_url": site.root_url,
        "generated": builder.day(now, "d MMMM y") + now.astimezone(site.tz).strftime(" %H:%M"),
        "first_day": builder.day(now - timedelta(days=days), "d MMMM y"),
        "last_day": builder.day(now, "d MMMM y"),
        "days": days,
        "charts": report.charts,
        "summary": report.summary,
        "aim_under": AIM_UNDER,
        "never_reach": NEVER_REACH,
    }
    return env.get_template(TEMPLATE).render(values)
