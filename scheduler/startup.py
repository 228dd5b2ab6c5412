"""The startup sequence, each step logged as STARTUP_STEP, refusing to trade on anything it cannot vouch for.

config -> database -> structure (SQLite's quick_check, or integrity_check on a small file) and schema drift
(append-only triggers, unique indexes, columns) -> merge (RECOVERY_MERGE_COLLISION) -> the FULL registry audit
(REGISTRY_AUDIT_REPORT scope=full; any violation: exit 3, never trade) -> venue (instruments; an unknown
configured symbol is a config error) -> recovery of in-flight orders -> first reconciliation -> jobs
(DAEMON_STARTED).

A damaged registry file (corrupt page, not a database, I/O error) refuses with exit 3 wherever it shows during
startup, and halts the running daemon with exit 3 when a job meets it later (`DaemonHalted`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import peewee as pw

from exchange.errors import AuthenticationFailed, VenueError
from exchange.venue import Venue
from lifecycle.clock import Clock, SystemClock, VenueClock, to_ms
from lifecycle.errors import IllegalTransition, OverfillError
from lifecycle.events import EVENT_LOGGER, Ev, emit
from lifecycle.symbols import canonical_key
from lifecycle.values import Instrument
from operations import account_log
from operations import exits as exits_job
from operations.candles import CandleSource
from operations.context import DaemonContext
from operations.pause import EntryPause
from operations.recovery import recover_in_flight
from operations.trades import log_session_summary
from operations.wiring import candle_store_from, ccxt_venue, limits_from, safety_from, strategy_from
from scheduler import control_server, metrics, systemd_notify
from scheduler.app import Daemon, JobRunner, JobSpec
from scheduler.jobs import health as health_job
from scheduler.jobs import protect as protect_job
from scheduler.jobs import reconcile as reconcile_job
from scheduler.jobs import tick as tick_job
from scheduler.jobs.health import report_corrupted_rows
from scheduler.restart_memory import RestartMemory
from scheduler.stream_hook import order_stream
from scheduler.telegram.bridge import AlertLogHandler, HeldAlerts
from settings.config import Settings
from store import writer_lock
from store.anchors import audit_and_anchor
from store.audit import DEFAULT_MAX_STOP_DISTANCE_PCT, AuditReport
from store.candles import CandleStore, CandleStoreError
from store.db import RegistryOpenError
from store.integrity import registry_damage, schema_drift, structure_check
from store.keys import KeyFileError
from store.merge import MergeReport
from store.merge import run_merge as merge_registry
from store.registry import DuplicateActivePosition, FillOnTerminalPosition, FillSideMismatch, Registry
from store.writer_lock import WriterLockError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2
EXIT_AUDIT = 3
EXIT_AUTH = 4
"""The venue refused the API key at startup: systemd must not restart (RestartPreventExitStatus); fix the key."""
REGISTRY_DAMAGED = "registry_damaged"


class StartupRefused(Exception):
    """Startup cannot continue. `exit_code` tells systemd whether a restart could help (see the unit file)."""

    def __init__(self, step: str, message: str, exit_code: int) -> None:
        super().__init__(f"startup refused at step {step}: {message}")
        self.step = step
        self.exit_code = exit_code


class DaemonHalted(StartupRefused):
    """The running daemon stopped itself and must not be restarted blindly (a damaged registry: exit 3)."""

    def __init__(self, message: str, exit_code: int) -> None:
        Exception.__init__(self, f"halted: {message}")
        self.step = "run"
        self.exit_code = exit_code


def damaged_message(db_path: Path | str, cause: str) -> str:
    return f"registry {db_path} is damaged ({cause}): restore it from backup; keep the service stopped"


def check_structure(db: pw.Database, db_path: Path) -> None:
    """SQLite's structural check and the schema the code relies on, before anything reads a row."""
    structure = structure_check(db, db_path)
    if not structure.ok:
        raise StartupRefused("structure", damaged_message(db_path, structure.summary()), EXIT_AUDIT)
    drift = schema_drift(db)
    if drift:
        raise StartupRefused(
            "structure",
            f"registry {db_path} schema was altered: {'; '.join(drift)}. The file was edited outside the daemon: "
            "restore it from backup; keep the service stopped",
            EXIT_AUDIT,
        )
    step("structure", f"{structure.check}=ok schema=ok")


def step(name: str, detail: str) -> None:
    emit(Ev.STARTUP_STEP, step=name, detail=detail)


def run_merge(merge: Callable[[], MergeReport]) -> int:
    report = merge()
    for note in report.collisions:
        emit(
            Ev.RECOVERY_MERGE_COLLISION,
            symbol_key=note.symbol_key,
            survivor=note.survivor,
            merged=",".join(note.merged),
            spellings=",".join(note.spellings),
        )
    for bad in report.unparseable:
        # left as stored: the audit decides whether it blocks startup; the operator needs the row named
        emit(Ev.CORRUPTED_POSITION, position=bad.uid, detail=f"unparseable symbol {bad.symbol_key!r}: {bad.reason}")
    step("merge", f"collisions={len(report.collisions)} rekeyed={report.rekeyed} unparseable={len(report.unparseable)}")
    return len(report.collisions)


def run_startup_audit(audit: Callable[[], AuditReport]) -> AuditReport:
    report = audit()
    emit(Ev.REGISTRY_AUDIT_REPORT, None, **report.fields(), scope=report.scope)
    if not report.ok:
        report_corrupted_rows(report)
        raise StartupRefused(
            "audit",
            f"{report.summary()}. Keep the service stopped; follow RUNBOOK.md 'Audit failure' before any restart",
            EXIT_AUDIT,
        )
    step("audit", f"violations_total=0 scope={report.scope}")
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


def check_auth(venue: Venue) -> None:
    """One private call (the margin account) before anything else private: a refused key stops here with its own
    exit code, instead of a daemon that starts, fails every job and keeps sending the bad key (issue 9)."""
    try:
        venue.margin()
    except AuthenticationFailed as exc:
        raise StartupRefused(
            "auth",
            f"the venue refused the API key ({exc}); fix venue.api_key / venue.api_secret (wrong, revoked, or"
            " without the trading permission) and start again: not restarted automatically",
            EXIT_AUTH,
        ) from None
    except VenueError as exc:  # unreachable or slow: the first reconciliation says more; not an auth verdict
        step("auth", f"not verified ({type(exc).__name__}); reconciliation will retry")
        return
    step("auth", "ok")


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


BREACHES = (IllegalTransition, OverfillError, FillOnTerminalPosition, FillSideMismatch, DuplicateActivePosition)


def halt_on_breach(ctx: DaemonContext, job: str, exc: Exception) -> None:
    """A job that hit a lifecycle invariant (an illegal transition, an overfill, a fill on a closed position) means
    the registry and the world disagree in a way no retry fixes: halt entries until an operator restarts."""
    if isinstance(exc, BREACHES) and not ctx.safety.invariant_halted:
        ctx.safety.invariant_violated(type(exc).__name__, f"job {job}: {exc}")


def _then_observe_auth(ctx: DaemonContext, job: Callable[[], object]) -> Callable[[], object]:
    """After every job: the venue breaker's auth lock drives the auth_failed kill switch at once."""

    def run() -> object:
        try:
            return job()
        finally:
            health_job.observe_auth(ctx)

    return run


def build_jobs(ctx: DaemonContext, intervals: Intervals, audit: Callable[[], AuditReport] | None) -> list[JobSpec]:
    jobs = [
        # exits first: a position a stop or TP already closed must not get a fresh protective order.
        JobSpec("exits", lambda: exits_job.run(ctx), intervals.protect),
        JobSpec("protect", lambda: protect_job.run(ctx), intervals.protect),
        JobSpec("reconcile", lambda: reconcile_job.run(ctx), intervals.reconcile),
        JobSpec("tick", lambda: tick_job.run(ctx), intervals.tick),
        JobSpec("health", lambda: health_job.run(ctx, audit), intervals.health),
        # fees and funding for the money view (operations.account_log: the log has a history budget of its own)
        JobSpec("account_log", lambda: account_log.ingest(ctx.registry, ctx.venue, ctx.clock),
                account_log.interval(intervals.health)),
    ]  # fmt: skip
    return [JobSpec(j.name, _then_observe_auth(ctx, j.func), j.seconds) for j in jobs]


def run_jobs(
    ctx: DaemonContext,
    db: pw.Database,
    intervals: Intervals,
    audit: Callable[[], AuditReport] | None,
    *,
    started_fields: dict[str, object],
    duration_s: float | None = None,
    install_signals: bool = True,
    metrics_port: int | None = None,
    stream: Callable[[Daemon], AbstractContextManager[object]] | None = None,
) -> str:
    """Start the scheduler, block until SIGTERM/SIGINT (or `duration_s`), stop after the job in flight.

    A job that finds the registry file damaged halts the daemon: INVARIANT_VIOLATION invariant=registry_damaged
    (an alert), the sticky kill switch, DAEMON_STOPPED reason=registry_damaged, then DaemonHalted (exit 3)."""
    daemon: Daemon | None = None
    started_at = ctx.clock.now()

    def fatal(job: str, cause: str) -> None:
        ctx.safety.invariant_violated(REGISTRY_DAMAGED, f"job {job}: {cause}; restore the registry from backup")
        if daemon is not None:
            daemon.request_stop(REGISTRY_DAMAGED)

    runner = JobRunner(db, ctx.stats, lambda job, exc: halt_on_breach(ctx, job, exc), fatal)
    daemon = Daemon(build_jobs(ctx, intervals, audit), runner)
    if install_signals:
        daemon.install_signal_handlers()
    with ExitStack() as hooks:
        # The metrics endpoint (off unless metrics_port), then READY=1 and the watchdog for systemd (no-ops
        # without $NOTIFY_SOCKET): scheduler.metrics, scheduler.systemd_notify.
        hooks.enter_context(metrics.serving(metrics_port))
        daemon.start()
        # --execute tools hand their operation to the running daemon here (one writer; operations.control).
        hooks.enter_context(control_server.serving(ctx.registry.db.database, ctx, runner.run))
        if stream is not None:
            hooks.enter_context(stream(daemon))  # the order stream (scheduler.stream_hook), once jobs can run
        emit(Ev.DAEMON_STARTED, None, **started_fields)
        hooks.enter_context(systemd_notify.supervised(lambda: runner.last_completed, [j.seconds for j in daemon.jobs]))
        reason = daemon.run_until_stopped(duration_s)
    if runner.fatal is not None:
        reason = REGISTRY_DAMAGED
    open_positions: object
    try:
        open_positions = "unknown" if runner.fatal is not None else len(ctx.registry.active_positions())
    except Exception as exc:  # the file may have failed between the last job and now
        open_positions = "unknown"
        if registry_damage(exc) is None:
            raise
    emit(
        Ev.DAEMON_STOPPED,
        reason=reason,
        cycles=ctx.stats.cycles,
        orders_placed=ctx.stats.orders_placed,
        open_positions=open_positions,
        uptime_s=ctx.stats.uptime_s(),
    )
    if runner.fatal is None:
        with contextlib.suppress(Exception):  # the last fills' fees, best effort: the stop must not fail on them
            account_log.ingest(ctx.registry, ctx.venue, ctx.clock, max_pages=2)
        log_session_summary(ctx.registry, started_at)  # SESSION_SUMMARY and its table (never raises)
    if runner.fatal is not None:
        raise DaemonHalted(damaged_message(ctx.registry.db.database, runner.fatal), EXIT_AUDIT)
    return reason


def registry_audit(
    registry: Registry,
    clock: Clock,
    full_every_s: float,
    *,
    force_full: bool = False,
    max_stop_distance_pct: Decimal = DEFAULT_MAX_STOP_DISTANCE_PCT,
) -> Callable[[], AuditReport]:
    """The audit of every health cycle: from the chain anchors, or in full when the last full audit is
    `full_every_s` old (store.anchors); each clean run moves the anchors forward. `force_full`: the startup audit,
    which re-hashes every row whatever the anchors say."""
    full_every_ms = int(full_every_s * 1000)

    def audit() -> AuditReport:
        return audit_and_anchor(
            registry.db,
            to_ms(clock.now()),
            full_every_ms=full_every_ms,
            force_full=force_full,
            keyed=registry.keyed(),
            max_stop_distance_pct=max_stop_distance_pct,
        )

    return audit


@dataclass
class Started:
    ctx: DaemonContext
    registry: Registry
    audit: Callable[[], AuditReport]


def start(
    settings: Settings,
    venue: Venue,
    clock: Clock,
    db_path: Path,
    *,
    recovery_checks: int = 3,
    recovery_wait_s: float = 3.0,
) -> Started:
    """Every startup step up to and including the first reconciliation. Raises StartupRefused (exit 3 for a
    registry file that shows damage at any step)."""
    try:
        return _start(settings, venue, clock, db_path, recovery_checks=recovery_checks, recovery_wait_s=recovery_wait_s)
    except StartupRefused:
        raise
    except Exception as exc:
        damage = registry_damage(exc)
        if damage is None:
            raise
        raise StartupRefused("database", damaged_message(db_path, damage), EXIT_AUDIT) from None


def _start(
    settings: Settings, venue: Venue, clock: Clock, db_path: Path, *, recovery_checks: int, recovery_wait_s: float
) -> Started:
    try:
        registry = Registry.open(db_path, clock, key_file=settings.registry_key_file, prepare_key=True)
    except KeyFileError as exc:
        # a keyed registry without its key (or with another one) cannot be verified: never trade on it
        raise StartupRefused("key", str(exc), EXIT_AUDIT) from None
    except Exception as exc:
        # RegistryOpenError already names the file and the fix; anything else gets the file named here.
        damage = registry_damage(exc)
        if damage is not None:
            raise StartupRefused("database", damaged_message(db_path, damage), EXIT_AUDIT) from None
        detail = str(exc) if isinstance(exc, RegistryOpenError) else f"cannot open registry {db_path}: {exc}"
        raise StartupRefused("database", detail, EXIT_FAILURE) from None
    step("database", str(db_path))
    step("key", registry.key_detail)
    check_structure(registry.db, db_path)
    run_merge(lambda: merge_registry(registry.db, clock))

    max_stop = settings.risk.max_stop_distance_pct
    audit = registry_audit(registry, clock, settings.intervals.full_audit, max_stop_distance_pct=max_stop)
    # Startup re-hashes every chained row (issue 9): a same-length edit before the anchors must not trade.
    run_startup_audit(
        registry_audit(registry, clock, settings.intervals.full_audit, force_full=True, max_stop_distance_pct=max_stop)
    )
    instruments = connect_venue(venue, settings.symbols, canonical_key)
    check_auth(venue)
    keys = tuple(canonical_key(s) for s in settings.symbols)
    ctx = DaemonContext(
        registry=registry,
        venue=venue,
        clock=clock,
        limits=limits_from(settings, keys),
        instruments=instruments,
        strategy=strategy_from(settings),
        safety=safety_from(settings, RestartMemory.beside(Path(db_path))),
        # Fills before our last recorded one are in the ledger already; reading from there (minus the lookback)
        # keeps each snapshot to the recent window instead of the venue's whole history.
        fills_cursor=registry.last_fill_time(),
    )
    ctx.safety.entry_pause = EntryPause(registry.db, clock)  # the operator's /pause, as the last run left it
    ctx.candles = CandleSource(venue, open_candle_store(settings, db_path))
    recover_and_reconcile(ctx, recovery_checks=recovery_checks, recovery_wait_s=recovery_wait_s)
    return Started(ctx, registry, audit)


@contextmanager
def held_startup_alerts() -> Iterator[HeldAlerts]:
    """Alert events logged during startup, kept for the bot that starts afterwards."""
    held = HeldAlerts()
    handler = AlertLogHandler(held)
    events = logging.getLogger(EVENT_LOGGER)
    events.addHandler(handler)
    try:
        yield held
    finally:
        events.removeHandler(handler)


@contextmanager
def telegram_alerts(
    settings: Settings, ctx: DaemonContext, registry: Registry, held: HeldAlerts | None = None
) -> Iterator[None]:
    """With `[telegram]` configured: /status and /positions for the allowlisted operators, and every alert
    event (kill switch, escalation, invariant, audit failure, corrupted row) pushed to them while the jobs run,
    after the alerts `held` from startup."""
    if settings.telegram is None:
        yield
        return
    # Imported here, not at the top: python-telegram-bot (and matplotlib, for /chart) cost about 1.5 s of import
    # and tens of MB; a daemon without [telegram] never loads them.
    from scheduler.telegram.notifier import TelegramNotifier
    from scheduler.telegram.registry_status import RegistryStatusProvider

    def equity() -> Decimal | None:
        return ctx.last_margin.margin_equity if ctx.last_margin else None

    def margin_util() -> Decimal | None:
        return ctx.last_margin.utilization_pct if ctx.last_margin else None

    provider = RegistryStatusProvider(
        registry,
        mode=settings.mode,
        kill_switch=ctx.safety.killswitch,
        equity_usd=equity,
        margin_util_pct=margin_util,
        available_margin_usd=lambda: ctx.last_margin.available_margin if ctx.last_margin else None,
        entry_pause=ctx.safety.entry_pause,
    )
    notifier = TelegramNotifier(settings.telegram, provider)
    handler = AlertLogHandler(notifier)
    events = logging.getLogger(EVENT_LOGGER)
    events.addHandler(handler)
    notifier.start()
    step("telegram", "alerts and commands on")
    if held is not None:
        held.forward(notifier)
    try:
        yield
    finally:
        events.removeHandler(handler)
        notifier.stop()


def open_candle_store(settings: Settings, db_path: Path) -> CandleStore | None:
    """The strategy's candle store (operations.candles), or None when `candles.enabled` is false. A path that cannot
    be a candle store is a configuration error: one line naming the file and the fix, exit 2."""
    try:
        store = candle_store_from(settings, db_path)
    except CandleStoreError as exc:
        raise StartupRefused("candles", str(exc), EXIT_CONFIG) from None
    step("candles", "venue only (candles.enabled = false)" if store is None else str(store.path))
    return store


@contextmanager
def registry_writer(db_path: Path) -> Iterator[None]:
    """The daemon is its registry's one writer for as long as it runs (`store.writer_lock`): a second daemon,
    or a runbook tool with --execute, on the same file is refused rather than trading beside it."""
    if not db_path.parent.is_dir():
        yield  # no registry can be opened there either: the database step names the folder
        return
    try:
        lock = writer_lock.acquire(db_path, "daemon")
    except WriterLockError as exc:
        raise StartupRefused("database", str(exc), EXIT_FAILURE) from None
    try:
        yield
    finally:
        lock.release()


def run_live(settings: Settings, *, db: Path | None, duration_s: float | None, recovery_wait_s: float = 3.0) -> int:
    clock = SystemClock()
    venue_settings = settings.venue
    if venue_settings.api_key is None or venue_settings.api_secret is None:
        raise StartupRefused("venue", "venue.api_key and venue.api_secret are required outside paper mode", EXIT_CONFIG)
    venue = ccxt_venue(venue_settings, clock)
    db_path = db or settings.db_path
    with registry_writer(db_path):
        # The venue adapter keeps the host clock (request signing, the breaker); the daemon's jobs and its registry
        # run on the venue's time (lifecycle.clock.VenueClock, anchored by each snapshot), which a step of the host
        # clock does not move: the stop churn bound's hour cannot be skipped by one.
        return _run_live_jobs(settings, venue, VenueClock(clock), db_path, duration_s, recovery_wait_s)


def _run_live_jobs(
    settings: Settings, venue: Venue, clock: Clock, db_path: Path, duration_s: float | None, recovery_wait_s: float
) -> int:
    venue_settings = settings.venue
    with held_startup_alerts() as held:
        started = start(settings, venue, clock, db_path, recovery_wait_s=recovery_wait_s)
    iv = settings.intervals
    with telegram_alerts(settings, started.ctx, started.registry, held):
        run_jobs(
            started.ctx,
            started.registry.db,
            Intervals(iv.tick, iv.reconcile, iv.protect, iv.health),
            started.audit,
            started_fields={
                "mode": settings.mode,
                "venue": venue_settings.host or "kraken",
                "db": str(db_path),
                "symbols": ",".join(started.ctx.symbol_keys),
            },
            duration_s=duration_s,
            metrics_port=settings.metrics.port if settings.metrics.enabled else None,
            stream=order_stream(
                settings.stream,
                started.ctx,
                api_key=venue_settings.api_key.get_secret_value() if venue_settings.api_key else None,
                api_secret=venue_settings.api_secret.get_secret_value() if venue_settings.api_secret else None,
                base_url=venue_settings.base_url,
            ),
        )
    return EXIT_OK
