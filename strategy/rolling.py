"""Indicators kept per symbol and updated per new closed candle, equal to `strategy.signals` on the same window.

The daemon ticks many times per bar (a 60 s tick on 1 h candles) and a backtest once per bar; recomputing every
indicator over the whole window on every tick is what this replaces. Each value is the batch function's, exactly:

- Donchian: the highest high / lowest low of the `bars` candles before the last, from monotonic deques that
  each new candle enters once and leaves once (max and min are exact, so nothing can drift).
- ATR: each candle's true range is computed once, when it arrives; the last `period` of them are summed in the
  order `signals.atr` sums them, so the Decimal result is the same to the last digit.
- EMA: `signals.ema` seeds from the simple mean of the window's FIRST `period` closes, and the daemon's window
  (the last `candle_limit` candles) moves by one candle every bar, so no O(1) update reproduces it exactly. It is
  computed once per new window and reused by every later tick that sees the same closes.

Continuity: the state remembers the candles it folded in last; a call whose candles do not continue them (a
revised candle, a gap, another symbol's history) rebuilds the state from that call's candles.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from lifecycle.values import Candle
from strategy.signals import ema, true_range


@dataclass(frozen=True)
class Windows:
    channel_bars: int
    ema_bars: int
    atr_bars: int

    @property
    def tail(self) -> int:
        """How many of the newest candles Donchian and ATR depend on."""
        return max(self.channel_bars + 1, self.atr_bars + 1)


@dataclass
class _Rolling:
    windows: Windows
    index: int = -1  # index of the newest candle folded in (0-based, since the last rebuild)
    recent: deque[Candle] = field(default_factory=deque)  # the newest `tail` candles, for the continuity check
    highs: deque[tuple[int, Decimal]] = field(default_factory=deque)  # decreasing, candles before the newest
    lows: deque[tuple[int, Decimal]] = field(default_factory=deque)  # increasing, candles before the newest
    ranges: deque[Decimal] = field(default_factory=deque)  # true ranges of the newest `atr_bars` candles
    ema_key: tuple[Decimal, ...] = ()
    ema_value: Decimal | None = None

    def fold(self, candle: Candle) -> None:
        w = self.windows
        previous = self.recent[-1] if self.recent else None
        if previous is not None:
            # The candle that was newest now belongs to the channel window (Donchian excludes the tested one).
            i = self.index
            while self.highs and self.highs[-1][1] <= previous.high:
                self.highs.pop()
            self.highs.append((i, previous.high))
            while self.lows and self.lows[-1][1] >= previous.low:
                self.lows.pop()
            self.lows.append((i, previous.low))
            self.ranges.append(true_range(candle, previous.close))
            if len(self.ranges) > w.atr_bars:
                self.ranges.popleft()
        self.index += 1
        first = self.index - w.channel_bars  # the oldest index of the channel window
        while self.highs and self.highs[0][0] < first:
            self.highs.popleft()
        while self.lows and self.lows[0][0] < first:
            self.lows.popleft()
        self.recent.append(candle)
        if len(self.recent) > w.tail:
            self.recent.popleft()

    def continues(self, candles: Sequence[Candle]) -> int | None:
        """How many of `candles` are new, if they continue what was folded in; None when they do not."""
        if not self.recent:
            return None
        last_time = self.recent[-1].time
        # The newest folded candle's position in the new list (searching from the end: usually 0 or 1 from it).
        for pos in range(len(candles) - 1, -1, -1):
            if candles[pos].time <= last_time:
                break
        else:
            return None
        if candles[pos].time != last_time:
            return None
        overlap = min(len(self.recent), pos + 1)
        if list(candles[pos + 1 - overlap : pos + 1]) != list(self.recent)[-overlap:]:
            return None
        if overlap < min(self.windows.tail, len(candles)) and pos + 1 > overlap:
            return None  # the new list reaches further back than what was checked: rebuild to be exact
        return len(candles) - pos - 1


class RollingIndicators:
    """Per-symbol indicator state. `update(symbol, candles)` folds in what is new; the getters read the result."""

    def __init__(self, windows: Windows) -> None:
        self.windows = windows
        self._series: dict[str, _Rolling] = {}
        self.rebuilds = 0  # how often a call did not continue the previous one (tests, bench)

    def update(self, symbol: str, candles: Sequence[Candle]) -> None:
        state = self._series.get(symbol)
        fresh = state.continues(candles) if state is not None else None
        if state is None or fresh is None:
            state = _Rolling(self.windows)
            self._series[symbol] = state
            self.rebuilds += 1
            fresh = len(candles)
        for candle in candles[len(candles) - fresh :]:
            state.fold(candle)

    def donchian(self, symbol: str) -> tuple[Decimal, Decimal]:
        state = self._series[symbol]
        return state.highs[0][1], state.lows[0][1]

    def atr(self, symbol: str) -> Decimal:
        ranges = self._series[symbol].ranges
        return sum(ranges, Decimal(0)) / self.windows.atr_bars

    def ema(self, symbol: str, candles: Sequence[Candle]) -> Decimal:
        state = self._series[symbol]
        key = tuple(c.close for c in candles)
        if state.ema_value is None or key != state.ema_key:
            state.ema_key, state.ema_value = key, ema(key, self.windows.ema_bars)
        return state.ema_value
