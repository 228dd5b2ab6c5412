"""The default strategy's exit signal: the opposite Donchian break over a shorter channel (Turtle-style).

A long is exited when the last closed candle closes below the lowest low of the previous `exit_bars` candles; a
short when it closes above the highest high. The shorter channel (10 against the entry's 20) gives a trend room to
breathe while still taking a reversal before the ATR stop does. The stop-loss stays in place until the exit fills:
the exit is an extra way out, never a replacement for protection.
"""

from __future__ import annotations

from collections.abc import Sequence

from lifecycle.values import Candle, PositionSide
from strategy.signals import donchian

DEFAULT_EXIT_BARS = 10


def exit_signal(side: PositionSide, candles: Sequence[Candle], exit_bars: int = DEFAULT_EXIT_BARS) -> str | None:
    """Why a `side` position should be exited on these closed candles, or None (also when history is too short)."""
    if len(candles) < exit_bars + 1:
        return None
    high, low = donchian(candles, exit_bars)
    close = candles[-1].close
    if side is PositionSide.LONG and close < low:
        return f"close {close} below the {exit_bars}-bar low {low}"
    if side is PositionSide.SHORT and close > high:
        return f"close {close} above the {exit_bars}-bar high {high}"
    return None
