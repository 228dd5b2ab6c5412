"""health: margin utilisation drives the margin_critical kill switch; a runtime audit breach halts for good.

Halting pauses new entries only. The protect job keeps running whatever this decides. Beside the (tail) audit,
every health cycle runs SQLite's `quick_check`: a damaged page raises `RegistryDamaged`, which the job runner
turns into a halt of the whole daemon (exit 3), not a JOB_FAILED retried forever.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from exchange.errors import VenueError
from lifecycle.events import Ev, emit
from operations.context import DaemonContext
from store.audit import AuditReport
from store.integrity import RegistryDamaged, structure_check

log = logging.getLogger(__name__)


def check_margin(ctx: DaemonContext) -> None:
    try:
        margin = ctx.venue.margin()
    except VenueError as exc:
        log.warning("health: margin unavailable (%s); kill switch state unchanged", exc)
        return
    ctx.last_margin = margin
    ctx.safety.observe_margin(margin.utilization_pct)


def observe_auth(ctx: DaemonContext) -> None:
    """The venue breaker's auth lock (exchange.breaker) halts entries: KILL_SWITCH_ACTIVATED reason=auth_failed
    while private calls are locked out, released once a private probe succeeds."""
    breaker = getattr(ctx.venue, "breaker", None)
    locked = getattr(breaker, "auth_locked", None)
    if not isinstance(locked, bool):
        return  # a venue without our breaker (a test double)
    detail = (
        f"private venue calls locked after repeated authentication failures ({getattr(breaker, 'auth_detail', '')});"
        " fix venue.api_key / venue.api_secret"
        if locked
        else "a private venue call succeeded again"
    )
    ctx.safety.observe_auth(locked, detail)


def report_corrupted_rows(report: AuditReport) -> None:
    """One CORRUPTED_POSITION line per offending row the audit names, so the incident capture has them all."""
    for field, rows in report.details.items():
        for row in rows:
            emit(Ev.CORRUPTED_POSITION, position=row, detail=field)


def check_structure(ctx: DaemonContext) -> None:
    """`quick_check` (never the slow integrity_check at run time); raises RegistryDamaged when it fails."""
    structure = structure_check(ctx.registry.db, thorough=False)
    if not structure.ok:
        raise RegistryDamaged(structure.summary())


def check_audit(ctx: DaemonContext, audit: Callable[[], AuditReport]) -> AuditReport:
    check_structure(ctx)
    report = audit()
    emit(Ev.REGISTRY_AUDIT_REPORT, None, **report.fields(), scope=report.scope)
    if not report.ok and not ctx.safety.invariant_halted:
        # named once, when the halt begins; REGISTRY_AUDIT_REPORT keeps repeating the counts every cycle
        report_corrupted_rows(report)
        ctx.safety.invariant_violated("registry_audit", report.summary())
    return report


def run(ctx: DaemonContext, audit: Callable[[], AuditReport] | None) -> None:
    check_margin(ctx)
    if audit is not None:
        check_audit(ctx, audit)
