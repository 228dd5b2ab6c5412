"""Backtest figures, each against a baseline measured in the same run (ratios, never a timed assertion):

1. one symbol through the full engine (simulator, the daemon's jobs, registry) vs the strategy alone over the same
   bars (its indicators and decision each bar: the floor a backtest cannot beat);
2. the strategy's indicators rolled forward per bar (strategy.rolling) vs recomputed over the window every tick;
3. 3 symbols end to end, audit included, over a whole year of hourly bars (8,760 bars each);
4. a 16-set grid on 2 local worker processes vs 1, beside the same pool running pure-Python arithmetic (what two
   processes can gain on this machine right now: on a shared machine the other users' load caps both).

The grid and its ceiling are each the best of REPEATS runs, one worker and two taking turns: the machine's speed moves
by more than the figure between two runs a few seconds apart (the same 16 sets took 4.0 and 6.4 s on one worker),
and the fastest run is the one least disturbed by whatever else ran (timeit's rule).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal

from backtest import grid
from backtest.params import Params
from backtest.run import Spec
from backtest.run import run as run_backtest
from lifecycle.events import EVENT_LOGGER
from lifecycle.values import Candle, Instrument
from settings.config import load_settings
from simulator.prices import ReplayCandle
from strategy.donchian import DonchianBreakout
from strategy.signals import atr, donchian, ema
from tests.backtest.series import walk

ONE_SYMBOL_BARS = 1000
YEAR_BARS = 24 * 365
GRID_BARS = 300
REPEATS = 3
XBT = Instrument("PF_XBTUSD", "BTC", Decimal(1), Decimal("0.0001"), Decimal("0.0001"), Decimal(1), Decimal(50))


def _spec(bars: Mapping[str, Sequence[ReplayCandle]]) -> Spec:
    settings = load_settings(None)
    params = Params.from_settings(settings).with_values({"take_profit_r": "2"})
    return Spec({s: tuple(b) for s, b in bars.items()}, "1h", params, settings)


def _candles(bars: Sequence[ReplayCandle]) -> list[Candle]:
    return [Candle(b.time, b.open, b.high, b.low, b.close, b.volume) for b in bars]


def strategy_alone(bars: Sequence[ReplayCandle], limit: int = 100) -> float:
    """Bars per second: the strategy's decision on each bar's window, as the tick hands it over."""
    candles = _candles(bars)
    strategy = DonchianBreakout()
    started = time.perf_counter()
    for end in range(1, len(candles) + 1):
        strategy.analyse("PF_XBTUSD", candles[max(0, end - limit) : end], XBT, Decimal(10000))
    return len(candles) / (time.perf_counter() - started)


def batch_indicators(bars: Sequence[ReplayCandle], limit: int = 100) -> float:
    """Ticks per second: every indicator recomputed over the window (the strategy before strategy.rolling)."""
    candles = _candles(bars)
    started = time.perf_counter()
    for end in range(51, len(candles) + 1):
        window = candles[max(0, end - limit) : end]
        donchian(window, 20), atr(window, 14), ema([c.close for c in window], 50)
    return (len(candles) - 50) / (time.perf_counter() - started)


def rolling_indicators(bars: Sequence[ReplayCandle], limit: int = 100, ticks_per_bar: int = 1) -> float:
    """Ticks per second with strategy.rolling; `ticks_per_bar` > 1 is the daemon's case (a 60 s tick, 1 h bars)."""
    candles = _candles(bars)
    ind = DonchianBreakout().indicators
    started = time.perf_counter()
    for end in range(51, len(candles) + 1):
        window = candles[max(0, end - limit) : end]
        for _ in range(ticks_per_bar):
            ind.update("PF_XBTUSD", window)
            ind.donchian("PF_XBTUSD"), ind.atr("PF_XBTUSD"), ind.ema("PF_XBTUSD", window)
    return (len(candles) - 50) * ticks_per_bar / (time.perf_counter() - started)


def engine_rate(bars: Mapping[str, Sequence[ReplayCandle]]) -> tuple[float, int]:
    spec = _spec(bars)
    started = time.perf_counter()
    result = run_backtest(spec)
    elapsed = time.perf_counter() - started
    if result.problems:
        raise SystemExit(f"bench_backtest: the engine was not clean: {result.problems}")
    return result.bars / elapsed, len(result.trades)


def sweep_seconds(workers: int, specs: list[Spec]) -> float:
    started = time.perf_counter()
    rows = grid.run_local(specs, workers)
    assert len(rows) == len(specs)
    return time.perf_counter() - started


def _spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def spin_seconds(workers: int, tasks: int = 16, n: int = 400_000) -> float:
    """Seconds for `workers` processes to finish `tasks` pure-Python loops (1: in this process)."""
    started = time.perf_counter()
    if workers <= 1:
        for _ in range(tasks):
            _spin(n)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(_spin, [n] * tasks))
    return time.perf_counter() - started


def best_speedup(seconds: Callable[[int], float], repeats: int = REPEATS) -> tuple[float, float]:
    """(best seconds on 1 worker, best on 2), the two taking turns so that both meet the same moments."""
    serial = parallel = math.inf
    for _ in range(repeats):
        serial = min(serial, seconds(1))
        parallel = min(parallel, seconds(2))
    return serial, parallel


def run() -> None:
    # The jobs log an event line per decision, order and fill (warnings among them): not bench output.
    events = logging.getLogger(EVENT_LOGGER)
    propagate, sink = events.propagate, logging.NullHandler()  # a handler, or Python's last resort prints them
    events.propagate = False
    events.addHandler(sink)
    try:
        _figures()
    finally:
        events.removeHandler(sink)
        events.propagate = propagate


def _figures() -> None:
    one = walk(ONE_SYMBOL_BARS, seed=31)
    floor = strategy_alone(one)
    rate, trades = engine_rate({"PF_XBTUSD": one})
    print(f"   one symbol, full engine: {rate:,.0f} bars/s ({trades} trades over {ONE_SYMBOL_BARS} bars)")
    print(f"   strategy alone (floor): {floor:,.0f} bars/s; engine is {floor / rate:.1f}x slower than its floor")
    batch, rolling = batch_indicators(one), rolling_indicators(one)
    print(f"   indicators, one tick a bar: rolling {rolling:,.0f}/s vs batch {batch:,.0f}/s = {rolling / batch:.2f}x")
    repeat = rolling_indicators(one[:300], ticks_per_bar=60)
    print(f"   indicators, 60 ticks a bar (the daemon's 60 s tick on 1 h bars): {repeat / batch:.1f}x the batch rate")

    three = {
        "PF_XBTUSD": walk(YEAR_BARS, seed=41),
        "PF_ETHUSD": walk(YEAR_BARS, seed=42, start=Decimal(3000)),
        "PF_SOLUSD": walk(YEAR_BARS, seed=43, start=Decimal(150)),
    }
    started = time.perf_counter()
    rate3, trades3 = engine_rate(three)
    took = time.perf_counter() - started
    print(
        f"   3 symbols, a year ({YEAR_BARS} hourly bars each) end to end (audit included): {took:.1f} s,"
        f" {rate3:,.0f} bar closes/s ({trades3} trades)"
    )

    settings = load_settings(None)
    base = Spec({"PF_XBTUSD": tuple(walk(GRID_BARS, seed=51))}, "1h", Params.from_settings(settings), settings)
    specs = grid.specs_for(base, grid.parse(["channel_bars=10,15,20,30", "take_profit_r=none,1,2,3"]))
    cores = os.cpu_count() or 1
    spin_serial, spin_parallel = best_speedup(spin_seconds)
    serial, parallel = best_speedup(lambda workers: sweep_seconds(workers, specs))
    print(
        f"   grid of {len(specs)} sets x {GRID_BARS} bars, best of {REPEATS}: 1 worker {serial:.1f} s,"
        f" 2 workers {parallel:.1f} s = {serial / parallel:.2f}x throughput (goal >= 1.7x); pure Python on the same"
        f" 2-process pool: {spin_serial / spin_parallel:.2f}x ({cores} CPUs visible, shared with whatever else runs)"
    )
