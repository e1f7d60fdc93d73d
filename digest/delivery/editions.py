"""deliver: local_time: send each edition to the zones whose local clock has reached it.

delivery.run ─► delivery.editions ─► store.editions: the edition opens (its posts fixed) when
the first subscriber's zone reaches it; each later zone gets the same posts at its own time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import datetime

from digest.archive import archive_run
from digest.crontab import parse_crontab
from digest.delivery.links import apply_check_links
from digest.delivery.sending import NOTHING_NEW, TOO_FEW_POSTS, Progress, RunReport, RunSender
from digest.local_time import ZoneFire, due_fires
from digest.selection.newposts import new_posts
from digest.selection.rules import share_of_posts
from digest.settings import DigestSettings, Settings
from digest.store import Store, runs
from digest.store.editions import add_zone, edition_run, later_edition, open_edition, receiver_zones

log = logging.getLogger(__name__)


def due_zones(
    settings: Settings, store: Store, digest: DigestSettings, as_of: datetime, *, grace: bool
) -> dict[str, list[ZoneFire]]:
    """The zones whose clock has reached an edition at `as_of`, by edition, oldest first.

    grace: a scheduled fire leaves out zones whose time passed more than misfire_grace ago.
    """
    with store.session() as session:
        zones = receiver_zones(session, digest.name, settings.site.timezone, as_of)
    out: dict[str, list[ZoneFire]] = {}
    for fire in due_fires(parse_crontab(digest.schedule), zones, as_of):
        out.setdefault(fire.edition, []).append(fire)
    if grace:
        out = {
            e: kept
            for e, fires in out.items()
            if (kept := [f for f in fires if as_of - f.at <= digest.misfire_grace])
        }
    return out


def send_editions(
    settings: Settings,
    store: Store,
    digest: DigestSettings,
    *,
    as_of: datetime,
    trigger: str = "manual",
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> list[RunReport]:
    """Finish unfinished runs, then send the current edition to every zone that is due.

    A zone is due when its clock has reached the edition's wall time (equal counts); a
    scheduled fire (trigger "schedule") leaves out zones older than misfire_grace.
    """
    name = digest.name
    sender = RunSender(settings, store, digest, progress=progress, stop=stop, as_of=as_of)
    reports: list[RunReport] = []
    try:
        with store.session() as session:
            open_runs = [r.id for r in runs.unfinished_runs(session, name)]
        for run_id in open_runs:
            reports.append(sender.send_run(run_id, resumed=True))
            if sender.stop.is_set():
                return reports
        for edition, fires in due_zones(
            settings, store, digest, as_of, grace=trigger == "schedule"
        ).items():
            report = _send_edition(settings, store, digest, sender, edition, fires, trigger)
            if report is not None:
                reports.append(report)
            if sender.stop.is_set():
                break
        return reports
    finally:
        sender.close()


def _send_edition(
    settings: Settings,
    store: Store,
    digest: DigestSettings,
    sender: RunSender,
    edition: str,
    fires: Sequence[ZoneFire],
    trigger: str,
) -> RunReport | None:
    name = digest.name
    by_id = sender.posts()
    with store.session() as session:
        run = edition_run(session, name, edition)
        run_id, post_ids = (run.id, list(run.post_ids or ())) if run else (0, [])
        newer = later_edition(session, name, edition) if run is None else None
    if not run_id:
        if newer is not None:
            log.info("%s: edition %s not opened: edition %s has begun", name, edition, newer)
            return None
        first = min(f.at for f in fires)  # the edition's posts are those new when it began
        posts = new_posts(store, digest, by_id.values(), first)
        posts = apply_check_links(settings, digest, posts, as_of=first, renderer=sender.renderer)
        if len(posts) < max(digest.min_posts, 1):
            status = NOTHING_NEW if not posts else TOO_FEW_POSTS
            return RunReport(0, name, first, len(posts), status=status)
        post_ids = [p.id for p in posts]
        run_id = open_edition(store, name, edition, first, post_ids, trigger) or 0
        if not run_id:  # another sender opened it first: send theirs
            with store.session() as session:
                theirs = edition_run(session, name, edition)
                if theirs is None:
                    return None
                run_id, post_ids = theirs.id, list(theirs.post_ids or ())
        else:
            log.info(
                "%s: edition %s opened as run %d with %d posts",
                name,
                edition,
                run_id,
                len(post_ids),
            )
            archive_run(store, sender.renderer, digest, run_id, by_id)
    share_of = share_of_posts([by_id[i] for i in post_ids if i in by_id])
    added = 0
    for fire in fires:
        count = add_zone(store, run_id, name, fire.zone, fire.at, settings.site.timezone, share_of)
        if count:
            log.info(
                "%s: edition %s: %d in %s (%s)",
                name,
                edition,
                count,
                fire.zone,
                fire.at.isoformat(),
            )
        added += count
    return sender.send_run(run_id, resumed=bool(run) and not added)
