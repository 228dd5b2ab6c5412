"""Indicator arithmetic in Decimal: EMA, true range / ATR, Donchian channel. No floats anywhere."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from itertools import pairwise

from lifecycle.values import Candle


def ema(values: Sequence[Decimal], period: int) -> Decimal:
    """Exponential moving average seeded with the simple mean of the first `period` values."""
    if period < 1 or len(values) < period:
        raise ValueError(f"EMA({period}) needs at least {period} values, got {len(values)}")
    k = Decimal(2) / Decimal(period + 1)
    avg = sum(values[:period], Decimal(0)) / period
    for v in values[period:]:
        avg = v * k + avg * (1 - k)
    return avg


def true_range(candle: Candle, prev_close: Decimal) -> Decimal:
    return max(candle.high - candle.low, abs(candle.high - prev_close), abs(candle.low - prev_close))


def atr(candles: Sequence[Candle], period: int) -> Decimal:
    """Simple mean of the last `period` true ranges (needs period + 1 candles for the previous closes)."""
    if period < 1 or len(candles) < period + 1:
        raise ValueError(f"ATR({period}) needs at least {period + 1} candles, got {len(candles)}")
    recent = candles[-(period + 1) :]
    ranges = [true_range(c, p.close) for p, c in pairwise(recent)]
    return sum(ranges, Decimal(0)) / period


def donchian(candles: Sequence[Candle], bars: int) -> tuple[Decimal, Decimal]:
    """Highest high and lowest low of the `bars` candles BEFORE the last one (the last is the one tested)."""
    if bars < 1 or len(candles) < bars + 1:
        raise ValueError(f"Donchian({bars}) needs at least {bars + 1} candles, got {len(candles)}")
    window = candles[-(bars + 1) : -1]
    return max(c.high for c in window), min(c.low for c in window)
