"""Hand-built candles and instruments for the strategy tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from lifecycle.values import Candle, Instrument

T0 = datetime(2026, 1, 1, tzinfo=UTC)

BTC = Instrument(
    symbol="PF_XBTUSD",
    base="BTC",
    tick_size=Decimal("0.5"),
    size_increment=Decimal("0.0001"),
    min_size=Decimal("0.0001"),
    contract_size=Decimal(1),
    max_leverage=Decimal(50),
)


def candle(i: int, close: int | str, high: int | str | None = None, low: int | str | None = None) -> Candle:
    c = Decimal(close)
    h = Decimal(high) if high is not None else c + 1
    lo = Decimal(low) if low is not None else c - 1
    return Candle(T0 + timedelta(hours=i), c, h, lo, c, Decimal(10))


def flat(n: int, level: int = 100) -> list[Candle]:
    """n candles closing at `level`, each with a true range of exactly 2."""
    return [candle(i, level) for i in range(n)]
