"""Paper trading, the embedded default: the simulator served over HTTP on 127.0.0.1 (a free port, random keys)
and traded through the REAL ccxt adapter, so paper mode exercises the same code path as live.

Simulated time runs `speed` times faster than the wall clock (a pacer thread drives `Simulator.advance`, which
walks prices and fires triggers); the job intervals from the config are simulated seconds and are divided by
the speed, so a 60 s tick at 60x runs every real second.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
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
from settings.config import Settings, describe
from simulator.engine import SimConfig, Simulator
from simulator.server import SimulatorServer

PAPER_DIR = Path("var/paper")
PAPER_DB = PAPER_DIR / "registry.db"
DEFAULT_SPEED = 60.0
MIN_INTERVAL_S = 0.5


@dataclass
class PaperVenue:
    sim: Simulator
    server: SimulatorServer
    venue: CcxtVenue
    clock: FakeClock
    pacer: ClockPacer | None


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
) -> Iterator[PaperVenue]:
    clock = FakeClock(SystemClock().now().replace(microsecond=0))
    sim = Simulator(SimConfig(seed=seed, starting_usd=starting_usd), clock=clock)
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
            yield PaperVenue(sim, server, venue, clock, pacer)
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


def run_paper(
    settings: Settings,
    *,
    speed: float | None,
    seed: int | None,
    db: Path | None,
    duration_s: float | None,
) -> int:
    speed = speed or DEFAULT_SPEED
    seed = settings.paper.seed if seed is None else seed
    # The embedded simulator keeps 12 h of history and runs at `speed`: 1-minute candles give the strategy its
    # history at once and a new bar every real second at 60x.
    db_path = db or PAPER_DB
    settings = settings.model_copy(update={"timeframe": "1m", "db_path": db_path})
    step("config", f"{describe(settings)} paper_speed={speed} paper_seed={seed}")
    db_path.parent.mkdir(parents=True, exist_ok=True)
    # The lock comes before the archive: a second paper daemon must not move the first one's registry away.
    with registry_writer(db_path):
        if db is None:
            archive_previous(db_path)
        return _run_paper_jobs(settings, db_path, speed=speed, seed=seed, duration_s=duration_s)


def _run_paper_jobs(settings: Settings, db_path: Path, *, speed: float, seed: int, duration_s: float | None) -> int:
    with paper_venue(seed=seed, speed=speed, starting_usd=settings.paper.starting_usd) as paper:
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
            )
    return EXIT_OK
