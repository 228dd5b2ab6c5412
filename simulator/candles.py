"""One-minute candles per symbol and price type, aggregated on request to Kraken's chart timeframes."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from decimal import Decimal

PRICE_TYPES = ("trade", "mark", "spot")
TIMEFRAMES: dict[str, int] = {
    "1m": 60,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "4h": 14400,
    "12h": 43200,
    "1d": 86400,
    "1w": 604800,
}
MAX_CANDLES = 2000  # what Kraken's charts endpoint returns at most per call


@dataclass
class Bar:
    time_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


class CandleBook:
    def __init__(self, keep_minutes: int | None = None) -> None:
        """`keep_minutes`: keep only the newest one-minute bars of each series (a long paper run would otherwise
        grow by every bar of every symbol and price type, ~19 KB a minute with the default instruments); None keeps
        every bar (backtests and backfills read months)."""
        self._bars: dict[tuple[str, str], list[Bar]] = {}
        self._times: dict[tuple[str, str], list[int]] = {}  # bar open times, for bisecting long runs
        self._keep = keep_minutes

    def record(self, symbol: str, price_type: str, time_ms: int, price: Decimal, volume: Decimal) -> None:
        minute = time_ms - time_ms % 60_000
        key = (symbol, price_type)
        bars = self._bars.get(key)
        if bars is None:
            bars = self._bars[key] = []
            self._times[key] = []
        if bars and bars[-1].time_ms == minute:  # the common case: one more price inside the current minute
            bar = bars[-1]
            if price > bar.high:
                bar.high = price
            elif price < bar.low:
                bar.low = price
            bar.close = price
            bar.volume += volume
        elif not bars or bars[-1].time_ms < minute:
            times = self._times[key]
            bars.append(Bar(minute, price, price, price, price, volume))
            times.append(minute)
            if self._keep is not None and len(bars) > self._keep + self._keep // 8 + 1:
                del bars[: len(bars) - self._keep]  # in batches: one list shift per keep/8 bars, not per bar
                del times[: len(times) - self._keep]
        # A record older than the last bar (never produced by a forward-moving clock) is dropped.

    def since(self, symbol: str, price_type: str, since_ms: int) -> list[Bar]:
        """The one-minute bars opening at or after `since_ms`."""
        key = (symbol, price_type)
        return self._bars.get(key, [])[bisect_left(self._times.get(key, []), since_ms) :]

    def candles(
        self, symbol: str, price_type: str, timeframe: str, from_s: int | None = None, to_s: int | None = None
    ) -> list[Bar]:
        """Every bar of the range (no cap: `page` applies Kraken's)."""
        width_ms = TIMEFRAMES[timeframe] * 1000
        key = (symbol, price_type)
        bars, times = self._bars.get(key, []), self._times.get(key, [])
        # Only the minutes that can reach the answer are aggregated (a week of candles is 10k bars a symbol).
        span = MAX_CANDLES * width_ms + 604_800_000
        lo = bisect_left(times, from_s * 1000 - width_ms) if from_s is not None else 0
        hi = bisect_right(times, to_s * 1000 + width_ms) if to_s is not None else len(times)
        if from_s is None:
            lo = max(lo, bisect_left(times, (times[hi - 1] if hi else 0) - span))
        elif to_s is None:
            hi = min(hi, bisect_right(times, from_s * 1000 + span))
        out: list[Bar] = []
        for bar in bars[lo:hi]:
            bucket = bar.time_ms - bar.time_ms % width_ms if width_ms != 604_800_000 else _week_start(bar.time_ms)
            if out and out[-1].time_ms == bucket:
                agg = out[-1]
                agg.high = max(agg.high, bar.high)
                agg.low = min(agg.low, bar.low)
                agg.close = bar.close
                agg.volume += bar.volume
            else:
                out.append(Bar(bucket, bar.open, bar.high, bar.low, bar.close, bar.volume))
        if from_s is not None:
            out = [b for b in out if b.time_ms >= from_s * 1000]
        if to_s is not None:
            out = [b for b in out if b.time_ms <= to_s * 1000]
        return out

    def page(
        self, symbol: str, price_type: str, timeframe: str, from_s: int | None = None, to_s: int | None = None
    ) -> tuple[list[Bar], bool]:
        """At most `MAX_CANDLES` bars, and whether the range held more (Kraken's `more_candles`): from `from_s`
        the oldest come first, without it the newest."""
        out = self.candles(symbol, price_type, timeframe, from_s, to_s)
        more = len(out) > MAX_CANDLES
        return (out[:MAX_CANDLES] if from_s is not None else out[-MAX_CANDLES:]), more


def _week_start(time_ms: int) -> int:
    # Epoch day 0 (1970-01-01) was a Thursday; Kraken's weekly candles open on Monday.
    day_ms = 86_400_000
    days = time_ms // day_ms
    return (days - (days + 3) % 7) * day_ms
