"""Look-ahead guard: rewrite every candle after bar t; no decision (and no fill) at or before t's close may change.

A backtest that let a future bar reach the strategy, or a price path that peeked at the next bar, would change
an earlier decision here (Freqtrade's users run `lookahead-analysis` for the same question).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

import pytest

from backtest.params import Params
from backtest.run import Result, Spec, run
from lifecycle.events import EVENT_LOGGER
from operations.context import DaemonContext
from settings.config import load_settings
from simulator.prices import ReplayCandle
from tests.backtest.series import HOUR, walk

Decisions = list[tuple[datetime, str, str, str]]


class _Traces(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.pending: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "event", None) == "DECISION_TRACE":
            self.pending.append(dict(getattr(record, "event_fields", {})))


@contextmanager
def _traces() -> Iterator[_Traces]:
    handler = _Traces()
    logger = logging.getLogger(EVENT_LOGGER)
    old = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


def _run(bars: dict[str, list[ReplayCandle]]) -> tuple[Decisions, Result]:
    settings = load_settings(None)
    spec = Spec({s: tuple(b) for s, b in bars.items()}, "1h", Params.from_settings(settings), settings)
    spec = replace(spec, params=spec.params.with_values({"take_profit_r": "2", "channel_bars": "10"}))
    decisions: Decisions = []
    with _traces() as traces:

        def observe(ctx: DaemonContext) -> None:
            now = ctx.clock.now()
            for f in traces.pending:
                decisions.append((now, str(f["symbol"]), str(f["verdict"]), str(f["inputs"])))
            traces.pending.clear()

        result = run(spec, observe)
    return decisions, result


def _rewrite_after(bars: list[ReplayCandle], t: int, seed: int) -> list[ReplayCandle]:
    """Bars 0..t unchanged; every later bar replaced by a different walk (its own seed and drift)."""
    rng = random.Random(seed)
    tail = walk(len(bars) - t - 1, seed=seed, start=bars[t].close, drift=rng.choice([-0.003, 0.003]))
    return bars[: t + 1] + [replace(b, time=bars[t].time + (i + 1) * HOUR) for i, b in enumerate(tail)]


@pytest.mark.parametrize("t", [90, 140])
def test_rewriting_the_future_changes_no_earlier_decision(t: int) -> None:
    base = {"PF_XBTUSD": walk(200, seed=11), "PF_ETHUSD": walk(200, seed=12, start=Decimal(3000))}
    cut = base["PF_XBTUSD"][t].time + HOUR  # the close of bar t: the last decision that may see only bars <= t
    original, original_result = _run(base)
    future = {s: _rewrite_after(b, t, seed=100 + i) for i, (s, b) in enumerate(sorted(base.items()))}
    changed, changed_result = _run(future)

    before = [d for d in original if d[0] <= cut]
    assert any(v.startswith("enter") for _, _, v, _ in before), "no entry before t: the guard would be vacuous"
    assert [d for d in changed if d[0] <= cut] == before
    # ...and the later decisions did see the new bars (else the rewrite proved nothing).
    assert [d for d in changed if d[0] > cut] != [d for d in original if d[0] > cut]

    def fills_until(result: Result) -> list[tuple[str, datetime, Decimal, Decimal]]:
        return sorted((tr.symbol, f.time, f.price, f.qty) for tr in result.trades for f in tr.fills if f.time <= cut)

    assert fills_until(changed_result) == fills_until(original_result)
    equity_until = [p for p in original_result.equity if p.time <= cut]
    assert [p for p in changed_result.equity if p.time <= cut] == equity_until
