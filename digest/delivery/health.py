"""The list's health: the last run's bounce and complaint rates against what relays tolerate.

store.bounce_events.last_run_outcome ─► health ─► a warning before every run (send and schedule).
"""

from __future__ import annotations

from digest.store.bounce_events import RunOutcome

# Amazon SES reviews an account at 5% bounces and 0.1% complaints; Gmail's bulk-sender rules
# want complaints under 0.3% (support.google.com/a/answer/81126) and ask for under 0.1%.
BOUNCE_RATE_LIMIT = 0.05
COMPLAINT_RATE_LIMIT = 0.001


def rate_warnings(digest: str, outcome: RunOutcome | None) -> list[str]:
    """One line per rate over its limit (nothing before the first run or for an empty one)."""
    if outcome is None:
        return []
    handed_out = outcome.sent + outcome.refused
    if handed_out == 0:
        return []
    warnings = []
    bounces = outcome.refused + outcome.bounced_later
    bounce_rate = bounces / handed_out
    if bounce_rate > BOUNCE_RATE_LIMIT:
        warnings.append(
            f"the last run of {digest} (run {outcome.run_id}) bounced {bounce_rate:.1%} "
            f"({bounces} of {handed_out}), over {BOUNCE_RATE_LIMIT:.0%}: relays such as "
            "Amazon SES review accounts above that; clean the list (digest bounces)"
        )
    complaint_rate = outcome.complaints / handed_out
    if complaint_rate > COMPLAINT_RATE_LIMIT:
        warnings.append(
            f"the last run of {digest} (run {outcome.run_id}) drew complaints from "
            f"{complaint_rate:.2%} ({outcome.complaints} of {handed_out}), over "
            f"{COMPLAINT_RATE_LIMIT:.1%}: Gmail and Amazon SES act on rates above that"
        )
    return warnings
