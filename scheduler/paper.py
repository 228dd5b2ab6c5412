"""Paper trading, the embedded default: the simulator served over HTTP on 127.0.0.1 (a free port, random keys)
and traded through the REAL ccxt adapter, so paper mode exercises the same code path as live.

Simulated time runs `speed` times faster than the wall clock (a pacer thread drives `Simulator.advance`, which
walks prices and fires triggers); the job intervals from the config are simulated seconds and are divided by
the speed, so a 60 s tick at 60x runs every real second.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from exchange.breaker import CircuitBreaker
from exchange.ccxt_venue import CcxtVenue
from lifecycle.clock import FakeClock, SystemClock
from scheduler.jobs.pacing import ClockPacer
from scheduler.logsetup import register_secret
from scheduler.startup import (
    EXIT_OK,
    Intervals,
    held_startup_alerts,
    registry_writer,
    run_jobs,
    start,
    step,
    telegram_alerts,
)
from scheduler.stream_hook import order_stream
from settings.config import Settings, describe
from simulator.engine import SimConfig, Simulator
from simulator.server import SimulatorServer

PAPER_DIR = Path("var/paper")
PAPER_DB = PAPER_DIR / "registry.db"
MIN_SPEED = 0.1
MAX_SPEED = 10_000.0
MIN_INTERVAL_S = 0.5
TIMEFRAME_MINUTES = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "4h": 240, "12h": 720, "1d": 1440, "1w": 10080}
# paper.faults = true: (kind, endpoint, probability per matching request, options) for the whole session.
PAPER_FAULTS: tuple[tuple[str, str | None, float, dict[str, object]], ...] = (
    ("http_500", "sendorder", 0.05, {}),
    ("http_502", None, 0.01, {}),
    ("timeout_after_accept", "sendorder", 0.03, {"delay": 6.0}),
    ("duplicate_fills", "fills", 0.2, {}),
    ("reorder_fills", "fills", 0.2, {}),
)


@dataclass
class PaperVenue:
    sim: Simulator
    server: SimulatorServer
    venue: CcxtVenue
    clock: FakeClock
    pacer: ClockPacer | None
    api_key: str = ""
    api_secret: str = ""


PAPER_REQUEST_LOG = 10_000  # the embedded simulator's request log (for faults and debugging): the newest requests only
# Fills, account history and order-log lines older than two days are dropped: the daemon reads a day back at most
# (fill polls and sync_positions' lookback), and a week's paper trading would otherwise stay in memory.
PAPER_HISTORY_KEEP_S = 2 * 24 * 3600


def random_keys() -> tuple[str, str]:
    """A throwaway key pair for the embedded simulator (never written anywhere)."""
    return secrets.token_hex(18), base64.b64encode(secrets.token_bytes(64)).decode()


@contextmanager
def paper_venue(
    *,
    seed: int,
    speed: float,
    starting_usd: Decimal = Decimal(10000),
    breaker_threshold: int = 5,
    breaker_open_s: float = 60.0,
    pace: bool = True,
    history_minutes: int = 720,
) -> Iterator[PaperVenue]:
    clock = FakeClock(SystemClock().now().replace(microsecond=0))
    # Bars older than the generated history are never asked for again by the daemon (its window is that history):
    # dropping them keeps a long paper run's memory flat.
    config = SimConfig(
        seed=seed,
        starting_usd=starting_usd,
        history_minutes=history_minutes,
        candle_keep_minutes=history_minutes,
        request_log_limit=PAPER_REQUEST_LOG,
        history_keep_s=PAPER_HISTORY_KEEP_S,
    )
    sim = Simulator(config, clock=clock)
    key, secret = random_keys()
    # Throwaway, but still keys: they never reach a log line either.
    register_secret(key)
    register_secret(secret)
    with SimulatorServer(sim, api_key=key, api_secret=secret) as server:
        breaker = CircuitBreaker(clock, failure_threshold=breaker_threshold, open_seconds=breaker_open_s)
        venue = CcxtVenue(
            api_key=key,
            api_secret=secret,
            base_url=server.base_url,
            timeout_seconds=5.0,
            enable_rate_limit=False,
            breaker=breaker,
            clock=clock,
        )
        pacer = ClockPacer(sim.advance, speed=speed) if pace else None
        if pacer is not None:
            pacer.start()
        try:
            yield PaperVenue(sim, server, venue, clock, pacer, key, secret)
        finally:
            if pacer is not None:
                pacer.stop()


def scaled_intervals(tick: float, reconcile: float, protect: float, health: float, speed: float) -> Intervals:
    def real(seconds: float) -> float:
        return max(MIN_INTERVAL_S, seconds / speed)

    return Intervals(tick=real(tick), reconcile=real(reconcile), protect=real(protect), health=real(health))


def archive_previous(db_path: Path) -> None:
    """The embedded simulator starts fresh each run, so yesterday's registry would be all phantoms: keep it as
    `registry.prev.db` for inspection and start a new one."""
    for suffix in ("", "-wal", "-shm"):
        old = Path(f"{db_path}{suffix}")
        if old.exists():
            old.replace(Path(f"{db_path.with_suffix('')}.prev{db_path.suffix}{suffix}"))


def paper_config_text(settings: Settings, base_url: str, key: str, secret: str, db_path: Path) -> str:
    """A config for the tools against the running paper daemon: its simulator, its keys, its registry."""
    symbols = ", ".join(f'"{s}"' for s in settings.symbols)
    return (
        "# Written by the paper daemon (make run) for the tools; valid while it runs, removed when it stops.\n"
        "#   .venv/bin/python -m tools.check_tp_coverage --config var/paper/config.toml\n"
        'mode = "paper"\n'
        f'db_path = "{db_path.resolve()}"\n'
        f"symbols = [{symbols}]\n"
        f'timeframe = "{settings.timeframe}"\n\n'
        "[venue]\n"
        f'base_url = "{base_url}"\n'
        f'api_key = "{key}"\n'
        f'api_secret = "{secret}"\n'
        "enable_rate_limit = false\n"
    )


@contextmanager
def tools_config(path: Path, text: str) -> Iterator[Path]:
    """`text` at `path`, mode 0600 from its creation (it holds the session's keys), removed afterwards."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def history_minutes(timeframe: str) -> int:
    """Enough simulator history for the strategy on `timeframe` (100 bars), at least the default 12 h, at most
    a week (1d/1w bars in paper mode get fewer bars than the strategy wants and it says so in DECISION_TRACE)."""
    return min(max(720, 100 * TIMEFRAME_MINUTES[timeframe]), 7 * 24 * 60)


def add_paper_faults(sim: Simulator) -> list[str]:
    """`paper.faults = true`: the session-long fault mix (PAPER_FAULTS). Returns the kinds, for the startup line."""
    for kind, endpoint, probability, options in PAPER_FAULTS:
        sim.faults.add(kind, endpoint, count=None, probability=probability, **options)
    return [f"{kind}@{endpoint or '*'}:{probability:g}" for kind, endpoint, probability, _ in PAPER_FAULTS]


def run_paper(
    settings: Settings,
    *,
    speed: float | None,
    seed: int | None,
    db: Path | None,
    duration_s: float | None,
    embedded: bool = True,
) -> int:
    """Paper trading on the embedded simulator. `embedded` (`--paper`, `make run`): the registry goes to
    var/paper/ (the previous one archived: the simulator starts fresh), 1-minute candles, and
    var/paper/config.toml is written for the tools. Otherwise (`--config FILE` with mode = "paper" and no
    venue.base_url) the file's db_path and timeframe are used as given."""
    speed = settings.paper.speed if speed is None else speed
    seed = settings.paper.seed if seed is None else seed
    if embedded:
        # The embedded simulator keeps 12 h of history and runs at `speed`: 1-minute candles give the strategy its
        # history at once and a new bar every real second at 60x.
        db_path = db or PAPER_DB
        # Its candles are a new simulated world each run (the previous registry is archived): a candle store kept
        # between runs would splice two worlds together, and there is no venue's rate limit to save.
        candles = settings.candles.model_copy(update={"enabled": False})
        settings = settings.model_copy(update={"timeframe": "1m", "db_path": db_path, "candles": candles})
    else:
        db_path = db or settings.db_path
        settings = settings.model_copy(update={"db_path": db_path})
    step("config", f"{describe(settings)} paper_speed={speed:g} paper_seed={seed} paper_faults={settings.paper.faults}")
    db_path.parent.mkdir(parents=True, exist_ok=True)
    # The lock comes before the archive: a second paper daemon must not move the first one's registry away.
    with registry_writer(db_path):
        if db is None:
            archive_previous(db_path)
        return _run_paper_jobs(settings, db_path, speed=speed, seed=seed, duration_s=duration_s, embedded=embedded)


def _run_paper_jobs(
    settings: Settings, db_path: Path, *, speed: float, seed: int, duration_s: float | None, embedded: bool
) -> int:
    with (
        paper_venue(
            seed=seed,
            speed=speed,
            starting_usd=settings.paper.starting_usd,
            history_minutes=history_minutes(settings.timeframe),
        ) as paper,
        ExitStack() as stack,
    ):
        if embedded:
            text = paper_config_text(settings, paper.server.base_url, paper.api_key, paper.api_secret, db_path)
            path = stack.enter_context(tools_config(PAPER_DIR / "config.toml", text))
            step(
                "tools",
                f"{path} (0600) points the tools at this session: .venv/bin/python -m tools.NAME --config {path}",
            )
        if settings.paper.faults:
            step("faults", "paper.faults: " + " ".join(add_paper_faults(paper.sim)))
        # The simulator is in-process and always answers, so recovery need not wait between its checks.
        with held_startup_alerts() as held:
            started = start(settings, paper.venue, paper.clock, db_path, recovery_wait_s=0.0)
        iv = settings.intervals
        with telegram_alerts(settings, started.ctx, started.registry, held):
            run_jobs(
                started.ctx,
                started.registry.db,
                scaled_intervals(iv.tick, iv.reconcile, iv.protect, iv.health, speed),
                started.audit,
                started_fields={
                    "mode": "paper",
                    "venue": paper.server.base_url,
                    "db": str(db_path),
                    "symbols": ",".join(started.ctx.symbol_keys),
                },
                duration_s=duration_s,
                metrics_port=settings.metrics.port if settings.metrics.enabled else None,
                # the order stream from the simulator's websocket feeds (docs/stream.md)
                stream=order_stream(
                    settings.stream,
                    started.ctx,
                    api_key=paper.api_key,
                    api_secret=paper.api_secret,
                    base_url=paper.server.base_url,
                ),
            )
    return EXIT_OK
