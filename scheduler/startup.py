"""The startup sequence, each step logged as STARTUP_STEP, refusing to trade on anything it cannot vouch for.

config -> database -> merge (RECOVERY_MERGE_COLLISION) -> registry audit (REGISTRY_AUDIT_REPORT; any violation:
exit 3, never trade) -> venue (instruments; an unknown configured symbol is a config error) -> recovery of
in-flight orders -> first reconciliation -> jobs (DAEMON_STARTED).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import peewee as pw

from exchange.errors import VenueError
from exchange.types import Instrument
from exchange.venue import Venue
from lifecycle.audit import AuditReport
from lifecycle.events import Ev, emit
from scheduler.app import Daemon, JobRunner, JobSpec
from scheduler.jobs import exits as exits_job
from scheduler.jobs import health as health_job
from scheduler.jobs import protect as protect_job
from scheduler.jobs import reconcile as reconcile_job
from scheduler.jobs import tick as tick_job
from scheduler.jobs.context import DaemonContext
from scheduler.recovery import recover_in_flight

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2
EXIT_AUDIT = 3


class StartupRefused(Exception):
    """Startup cannot continue. `exit_code` tells systemd whether a restart could help (see the unit file)."""

    def __init__(self, step: str, message: str, exit_code: int) -> None:
        super().__init__(f"startup refused at step {step}: {message}")
        self.step = step
        self.exit_code = exit_code


@dataclass(frozen=True)
class MergeNote:
    symbol_key: str
    survivor: str
    merged: Sequence[str]
    spellings: Sequence[str]


def step(name: str, detail: str) -> None:
    emit(Ev.STARTUP_STEP, step=name, detail=detail)


def run_merge(merge: Callable[[], Sequence[MergeNote]]) -> int:
    notes = merge()
    for note in notes:
        emit(
            Ev.RECOVERY_MERGE_COLLISION,
            symbol_key=note.symbol_key,
            survivor=note.survivor,
            merged=",".join(note.merged),
            spellings=",".join(note.spellings),
        )
    step("merge", f"collisions={len(notes)}")
    return len(notes)


def run_startup_audit(audit: Callable[[], AuditReport]) -> AuditReport:
    report = audit()
    emit(Ev.REGISTRY_AUDIT_REPORT, None, **report.fields())
    if not report.ok:
        raise StartupRefused(
            "audit",
            f"{report.summary()}. Keep the service stopped; follow RUNBOOK.md 'Audit failure' before any restart",
            EXIT_AUDIT,
        )
    step("audit", "violations_total=0")
    return report


def connect_venue(venue: Venue, symbols: Sequence[str], canonical: Callable[[str], str]) -> dict[str, Instrument]:
    try:
        instruments = venue.instruments()
    except VenueError as exc:
        raise StartupRefused("venue", f"cannot load instruments ({type(exc).__name__}: {exc})", EXIT_FAILURE) from None
    wanted = {s: canonical(s) for s in symbols}
    unknown = [s for s, key in wanted.items() if key not in instruments]
    if unknown:
        raise StartupRefused(
            "venue",
            f"configured symbols not tradeable on this venue: {', '.join(unknown)}; fix `symbols` in the config",
            EXIT_CONFIG,
        )
    step("venue", f"instruments={len(instruments)} symbols={','.join(wanted.values())}")
    return instruments


def recover_and_reconcile(ctx: DaemonContext, *, recovery_checks: int, recovery_wait_s: float) -> None:
    recovered = recover_in_flight(ctx, checks=recovery_checks, wait_s=recovery_wait_s)
    step("recovery", recovered.detail)
    rec = reconcile_job.run(ctx)
    step("reconcile", f"complete={str(rec.report.complete).lower()} actions={len(rec.actions)}")


@dataclass(frozen=True)
class Intervals:
    """Real seconds between runs (paper mode divides the configured simulated seconds by the speed)."""

    tick: float
    reconcile: float
    protect: float
    health: float


def build_jobs(ctx: DaemonContext, intervals: Intervals, audit: Callable[[], AuditReport] | None) -> list[JobSpec]:
    return [
        JobSpec("protect", lambda: protect_job.run(ctx), intervals.protect),
        JobSpec("exits", lambda: exits_job.run(ctx), intervals.protect),
        JobSpec("reconcile", lambda: reconcile_job.run(ctx), intervals.reconcile),
        JobSpec("tick", lambda: tick_job.run(ctx), intervals.tick),
        JobSpec("health", lambda: health_job.run(ctx, audit), intervals.health),
    ]


def run_jobs(
    ctx: DaemonContext,
    db: pw.Database,
    intervals: Intervals,
    audit: Callable[[], AuditReport] | None,
    *,
    started_fields: dict[str, object],
    duration_s: float | None = None,
    install_signals: bool = True,
) -> str:
    """Start the scheduler, block until SIGTERM/SIGINT (or `duration_s`), stop after the job in flight."""
    daemon = Daemon(build_jobs(ctx, intervals, audit), JobRunner(db, ctx.stats))
    if install_signals:
        daemon.install_signal_handlers()
    daemon.start()
    emit(Ev.DAEMON_STARTED, None, **started_fields)
    reason = daemon.run_until_stopped(duration_s)
    open_positions = len(ctx.registry.active_positions())
    emit(
        Ev.DAEMON_STOPPED,
        reason=reason,
        cycles=ctx.stats.cycles,
        orders_placed=ctx.stats.orders_placed,
        open_positions=open_positions,
        uptime_s=ctx.stats.uptime_s(),
    )
    return reason
