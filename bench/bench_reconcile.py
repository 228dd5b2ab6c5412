"""Reconciliation cost independent of history (issue 6): one reconcile cycle on a registry holding 2,000 fills and
on one holding 2,000,000, same venue, same active positions.

Each registry is a copy of the audit benchmark's generated file (`bench.registry_factory`), so its history is
legal and its chains verify. The venue is the simulator engine in process (no HTTP: the figure is the daemon's own
work, not the network's). A few warm-up cycles settle what the generated registry disagrees with the simulator
about (its active positions are phantoms there and get closed); then `CYCLES` steady cycles are measured: CPU
seconds per cycle and the growth of the process's resident memory over them. The ratio large/small is the figure;
the goal is within 1.5x. `BENCH_RECONCILE_SCALE` (default 1.0) scales the large registry down.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from bench.memory import rss_kb
from bench.registry_factory import cached_registry
from lifecycle.clock import FakeClock
from lifecycle.escalation import Escalator
from lifecycle.killswitch import KillSwitch
from operations.context import DaemonContext, Limits
from operations.safety import Safety
from scheduler.jobs import reconcile
from simulator.engine import SimConfig, Simulator
from simulator.venue import SimVenue
from store.registry import Registry

CYCLES = 30
WARMUP = 3
GOAL_RATIO = 1.5
SYMBOLS = ("PF_XBTUSD", "PF_ETHUSD")


def _measure(source: Path, label: str) -> tuple[float, int, int]:
    """CPU seconds per steady cycle, RSS growth over the steady cycles (KB), and the RSS after them (KB)."""
    logging.disable(logging.CRITICAL)  # the warm-up's phantom closes and imports log events: not the figure
    try:
        return _measure_quietly(source, label)
    finally:
        logging.disable(logging.NOTSET)


def _measure_quietly(source: Path, label: str) -> tuple[float, int, int]:
    with tempfile.TemporaryDirectory(prefix="bench-reconcile-") as tmp:
        path = Path(tmp) / "registry.db"
        shutil.copyfile(source, path)
        clock = FakeClock()
        sim = Simulator(SimConfig(seed=7, history_minutes=60), clock=clock)
        venue = SimVenue(sim)
        registry = Registry.open(path, clock)
        try:
            fills = int(registry.db.execute_sql('SELECT count(*) FROM "fill"').fetchone()[0])  # type: ignore[no-untyped-call]
            ctx = DaemonContext(
                registry=registry,
                venue=venue,
                clock=clock,
                limits=Limits(symbols=SYMBOLS, timeframe="1m"),
                instruments=venue.instruments(),
                strategy=None,  # type: ignore[arg-type]  # reconciliation never asks the strategy
                safety=Safety(KillSwitch(Decimal(80), Decimal(5), 2), Escalator()),
            )
            for _ in range(WARMUP):  # the generated active positions are phantoms here: closed
                sim.advance(60)
                reconcile.run(ctx)
            for symbol, side in zip(SYMBOLS, ("long", "short"), strict=True):  # two live positions to keep
                sim.open_position_direct(symbol, side, ctx.instruments[symbol].size_increment * 10)
            for _ in range(WARMUP):  # imported on the second sighting, then protected
                sim.advance(60)
                reconcile.run(ctx)
            held = len(registry.active_positions())
            rss_before = rss_kb()
            cpu = 0.0
            for _ in range(CYCLES):
                sim.advance(60)
                started = time.process_time()
                reconcile.run(ctx)
                cpu += time.process_time() - started
            rss_after = rss_kb()
            growth = rss_after - rss_before
        finally:
            registry.db.close()
    per_cycle = cpu / CYCLES
    print(
        f"   {label}: {fills:>9,} fills, {held} active: {per_cycle * 1000:7.2f} ms CPU per cycle,"
        f" RSS {rss_after:,} KB, {growth:+,} KB over {CYCLES} cycles"
    )
    return per_cycle, growth, rss_after


def run() -> None:
    scale = float(os.environ.get("BENCH_RECONCILE_SCALE", "1.0"))
    started = time.perf_counter()
    small = cached_registry(positions=100, transitions_per_position=10, fills_per_position=20, seed=1)
    large = cached_registry(
        positions=max(100, int(100_000 * scale)), transitions_per_position=10, fills_per_position=20, seed=1
    )
    print(f"   registries ready in {time.perf_counter() - started:.1f} s")
    cpu_small, _, rss_small = _measure(small, "small")
    cpu_large, _, rss_large = _measure(large, "large")  # same process, after the small run: RSS errs high
    for what, ratio in (("CPU per cycle", cpu_large / cpu_small), ("RSS after the cycles", rss_large / rss_small)):
        verdict = "met" if ratio <= GOAL_RATIO else "NOT met"
        print(f"   ratio {what} large/small: {ratio:.2f}x (goal <= {GOAL_RATIO}x: {verdict})")
