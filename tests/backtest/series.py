"""Seeded bar series and real candle-store files for the backtest tests."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from lifecycle.clock import to_ms
from simulator.prices import ReplayCandle
from store.candles import StoredCandle
from tools.backfill_historical_data import candle_store

START = datetime(2026, 1, 5, tzinfo=UTC)
HOUR = timedelta(hours=1)


def walk(
    n: int, *, seed: int = 1, start: Decimal = Decimal(50000), drift: float = 0.0004, first: datetime = START
) -> list[ReplayCandle]:
    """A trending random walk of hourly bars with wicks, on PF_XBTUSD's 1-USD tick."""
    rng = random.Random(seed)
    price = float(start)
    bars = []
    for i in range(n):
        o = price
        c = o * (1 + rng.gauss(drift, 0.01))
        h = max(o, c) * (1 + abs(rng.gauss(0, 0.003)))
        low = min(o, c) * (1 - abs(rng.gauss(0, 0.003)))
        bars.append(ReplayCandle(first + i * HOUR, *(Decimal(round(x)) for x in (o, h, low, c))))
        price = c
    return bars


def write_store(path: Path, series: dict[str, Sequence[ReplayCandle]], timeframe: str = "1h") -> Path:
    """A candle store as tools.backfill_historical_data writes it (its own schema code)."""
    with candle_store(path, write=True):
        for symbol, bars in series.items():
            rows = [
                {"symbol": symbol, "timeframe": timeframe, "open_ms": to_ms(b.time), "open": str(b.open),
                 "high": str(b.high), "low": str(b.low), "close": str(b.close), "volume": str(b.volume)}
                for b in bars
            ]  # fmt: skip
            StoredCandle.insert_many(rows).execute()
    return path
