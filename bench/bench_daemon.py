"""The daemon's own cost: tick CPU per coin, reconciliation time at 1/10/100 positions, peak RSS over 1,000
cycles. The simulator runs in process (SimVenue, no HTTP) so the figures are ours, not the network's; each is
printed beside a baseline measured in the same run (the venue reads alone), as a ratio. Last, the candle requests
a tick sends to the venue with and without the candle store (operations.candles).
"""

from __future__ import annotations

import importlib
import logging
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

from bench.memory import rss_kb
from bench.registry_factory import cached_registry
from lifecycle.clock import FakeClock
from lifecycle.escalation import Escalator
from lifecycle.events import EVENT_LOGGER
from lifecycle.killswitch import KillSwitch
from operations import exits
from operations.candles import CandleSource
from operations.context import DaemonContext, Limits
from operations.safety import Safety
from scheduler.jobs import protect, reconcile, tick
from scheduler.startup import registry_audit
from simulator.engine import SimConfig, Simulator
from simulator.instruments import DEFAULT_INSTRUMENTS, InstrumentSpec
from simulator.venue import SimVenue
from store.candles import CandleStore
from store.registry import Registry
from strategy.donchian import DonchianBreakout

CYCLES = 1000  # one cycle = 60 simulated seconds, then tick, exits, protect, reconcile
GROWTH_CYCLES = 5000  # after the warm-up, resident memory growth is measured over this many more (the issue's)
GROWTH_TARGET_KB = 1.0  # per cycle
RSS_TARGET_MB = 150
LARGE_CYCLES = 300  # after the large registry's audit: its phantoms closed, then steady cycles


def _cpu(fn: Callable[[], object], repeat: int) -> float:
    start = time.process_time()
    for _ in range(repeat):
        fn()
    return (time.process_time() - start) / repeat


def _bases(n: int) -> list[str]:
    letters = "ABCDEFGHJKLMNPQRSTUVWYZ"
    return [f"Q{a}{b}" for a in letters for b in letters][:n]


@contextmanager
def _daemon(
    instruments: tuple[InstrumentSpec, ...],
    symbols: tuple[str, ...],
    timeframe: str = "1m",
    registry_path: Path | None = None,
) -> Iterator[DaemonContext]:
    clock = FakeClock()
    # As in paper mode (scheduler.paper): bars older than the generated history are dropped, and so is older
    # account history; paper mode keeps two days of it, the bench six hours, so that within its 83 simulated hours
    # of measured growth the simulator (the venue's stand-in, whose memory is not the daemon's) is flat.
    config = SimConfig(
        seed=1, history_minutes=120, instruments=instruments, candle_keep_minutes=120, history_keep_s=6 * 3600
    )
    sim = Simulator(config, clock=clock)
    venue = SimVenue(sim)
    with tempfile.TemporaryDirectory(prefix="bench-daemon-") as tmp:
        registry = Registry.open(registry_path or Path(tmp) / "registry.db", clock)
        yield DaemonContext(
            registry=registry,
            venue=venue,
            clock=clock,
            limits=Limits(symbols=symbols, timeframe=timeframe, max_positions=len(symbols)),
            instruments=venue.instruments(),
            strategy=DonchianBreakout(),
            safety=Safety(KillSwitch(Decimal(80), Decimal(5), 2), Escalator()),
        )
        registry.db.close()


def bench_tick() -> None:
    symbols = tuple(s.symbol for s in DEFAULT_INSTRUMENTS)
    with _daemon(DEFAULT_INSTRUMENTS, symbols) as ctx:
        sim_venue = ctx.venue

        def reads() -> None:
            sim_venue.margin()
            for s in symbols:
                sim_venue.candles(s, "1m", limit=100)

        baseline = _cpu(reads, 20)
        per_tick = _cpu(lambda: tick.run(ctx), 20)
        print(
            f"   tick: {per_tick / len(symbols) * 1000:.2f} ms CPU per coin ({len(symbols)} coins); "
            f"venue reads alone {baseline / len(symbols) * 1000:.2f} ms/coin; ratio {per_tick / baseline:.2f}x"
        )


def bench_reconcile() -> None:
    for n in (1, 10, 100):
        bases = _bases(n)
        specs = tuple(
            InstrumentSpec(
                symbol=f"PF_{b}USD",
                base=b,
                tick_size=Decimal("0.01"),
                contract_value_trade_precision=2,
                start_price=Decimal(100),
            )
            for b in bases
        )
        symbols = tuple(s.symbol for s in specs)
        with _daemon(specs, symbols) as ctx:
            sim = ctx.venue.sim  # type: ignore[attr-defined]
            for s in symbols:
                sim.open_position_direct(s, "long", Decimal(1))
            # The daemon's cadence: a reconcile cycle a minute. (Without time passing, the orphans' own opening
            # fills would carry the import's timestamp and be read as hands adding to the imported positions.)
            for _ in range(2):  # the second sighting imports the orphans
                sim.advance(60)
                reconcile.run(ctx)
            protect.run(ctx)
            snapshot_only = _cpu(lambda: ctx.venue.snapshot(None), 5)
            per = _cpu(lambda: reconcile.run(ctx), 5)
            print(
                f"   reconcile with {n:3d} positions: {per * 1000:.1f} ms CPU; snapshot alone "
                f"{snapshot_only * 1000:.1f} ms; ratio {per / snapshot_only:.2f}x"
            )


def bench_rss() -> None:
    """Each figure from a fresh process: `ru_maxrss` is a process's peak over its whole life, so measured inside
    `make bench` it was the peak of whatever bench ran before (343 MB after bench_audit and bench_backtest, printed
    as OVER, against 119 MB for the same cycles on their own), and the growth over the cycles mixed in the heap the
    earlier benches had freed (-6.65 KB per cycle)."""
    for mode in ("cycles", "large"):
        done = subprocess.run(
            [sys.executable, "-c", f"from bench.bench_daemon import rss_child; rss_child({mode!r})"],
            capture_output=True,
            text=True,
            check=False,
        )
        print(done.stdout, end="")
        if done.returncode != 0:
            tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
            print(f"   memory bench ({mode}) failed: {tail[0]}")


def rss_child(mode: str) -> None:
    """In a fresh process (bench_rss): with the daemon's own modules imported, as `python -m scheduler` has them."""
    importlib.import_module("scheduler.__main__")
    importlib.import_module("exchange.ccxt_venue")
    events = logging.getLogger(EVENT_LOGGER)
    events.disabled = True
    logging.disable(logging.WARNING)  # the large registry's phantoms are closed with warnings: not the figure
    if mode == "large":
        _rss_large()
    else:
        _rss_cycles()


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cycle(ctx: DaemonContext) -> None:
    ctx.venue.sim.advance(60)  # type: ignore[attr-defined]
    tick.run(ctx)
    exits.run(ctx)
    protect.run(ctx)
    reconcile.run(ctx)


def _rss_cycles() -> None:
    symbols = tuple(s.symbol for s in DEFAULT_INSTRUMENTS)
    with _daemon(DEFAULT_INSTRUMENTS, symbols) as ctx:
        before = _peak_mb()
        started = time.perf_counter()
        for _ in range(CYCLES):
            _cycle(ctx)
        peak = _peak_mb()
        positions = len(ctx.registry.active_positions())
        print(
            f"   {CYCLES} cycles in {time.perf_counter() - started:.1f} s: peak RSS {peak:.0f} MB "
            f"(before {before:.0f} MB, target < {RSS_TARGET_MB} MB: {'ok' if peak < RSS_TARGET_MB else 'OVER'}); "
            f"orders placed {ctx.stats.orders_placed}, open positions {positions}"
        )
        warm = rss_kb()
        for _ in range(GROWTH_CYCLES):
            _cycle(ctx)
        per_cycle = (rss_kb() - warm) / GROWTH_CYCLES
        verdict = "met" if per_cycle < GROWTH_TARGET_KB else "NOT met"
        print(
            f"   resident memory over {GROWTH_CYCLES} more cycles: {per_cycle:+.2f} KB per cycle (goal <"
            f" {GROWTH_TARGET_KB:g} KB: {verdict}); orders placed {ctx.stats.orders_placed} in all"
        )


def _rss_large() -> None:
    """The issue's case: a registry of 2,000,000 fills (a copy of bench_audit's), its full startup audit (the
    startup's own `registry_audit(force_full=True)`, worker processes included), then the cycles."""
    source = cached_registry(positions=100_000, transitions_per_position=10, fills_per_position=20, seed=1)
    symbols = tuple(s.symbol for s in DEFAULT_INSTRUMENTS)
    with tempfile.TemporaryDirectory(prefix="bench-daemon-large-") as tmp:
        path = Path(tmp) / "registry.db"
        shutil.copyfile(source, path)
        with _daemon(DEFAULT_INSTRUMENTS, symbols, registry_path=path) as ctx:
            before = _peak_mb()
            report = registry_audit(ctx.registry, ctx.clock, 86_400, force_full=True)()
            after_audit = _peak_mb()
            for _ in range(LARGE_CYCLES):
                _cycle(ctx)
            peak = _peak_mb()
    verdict = "ok" if peak < RSS_TARGET_MB else "OVER"
    print(
        f"   2,000,000-fill registry: startup's full audit ({'clean' if report.ok else 'NOT clean'}) then"
        f" {LARGE_CYCLES} cycles: peak RSS {peak:.0f} MB (before the audit {before:.0f} MB, after it"
        f" {after_audit:.0f} MB; target < {RSS_TARGET_MB} MB: {verdict}; the audit's worker processes are their"
        " own, each a fresh interpreter)"
    )


def bench_candle_requests() -> None:
    """Candle requests to the venue over two simulated hours of 1-minute ticks on 1 h candles: the venue alone,
    then the candle store with only the new candles asked for (operations.candles)."""
    symbols = tuple(s.symbol for s in DEFAULT_INSTRUMENTS)
    counts = []
    for use_store in (False, True):
        with _daemon(DEFAULT_INSTRUMENTS, symbols, timeframe="1h") as ctx:
            store = CandleStore(Path(str(ctx.registry.db.database)).with_name("candles.db")) if use_store else None
            ctx.candles = CandleSource(ctx.venue, store)
            ticks = 120
            started = time.process_time()
            for _ in range(ticks):
                ctx.venue.sim.advance(60)  # type: ignore[attr-defined]
                tick.run(ctx)
            spent = time.process_time() - started
            counts.append(ctx.candles.rest_calls)
            label = "candle store + tail" if use_store else "venue alone"
            print(
                f"   candle requests, {label:<20}: {ctx.candles.rest_calls:5d} in {ticks} ticks x {len(symbols)} coins"
                f" ({ctx.candles.rest_calls / ticks:.2f} per tick; tick CPU {spent / ticks * 1000:.1f} ms)"
            )
            if store is not None:
                store.close()
    print(f"   ratio candle requests venue alone / with the store: {counts[0] / max(counts[1], 1):.1f}x")


def run() -> None:
    # The event lines are the product in production; here they would be thousands of lines of noise.
    events = logging.getLogger(EVENT_LOGGER)
    events.disabled = True
    try:
        bench_tick()
        bench_reconcile()
        bench_rss()
        bench_candle_requests()
    finally:
        events.disabled = False
