"""`digest doctor`: is this setup ready to send? One line per check (pass, warn, fail) and its fix.

A side road like cli: reads settings, opens the store, talks to each relay and the web side,
and asks DNS (dnspython, in doctor.dns only) about SPF, DKIM, DMARC and PTR. Sends nothing.
"""

from __future__ import annotations

from digest.doctor.checks import Check, run_doctor

__all__ = ["Check", "run_doctor"]
