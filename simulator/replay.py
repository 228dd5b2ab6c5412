"""Historical bars fed to the engine for backtests: a price path that visits each bar's four prices, and a venue
whose candles are the bars closed so far.

Within a bar the engine steps four times, a quarter bar apart: open, first extreme, second extreme, close, so the
engine's own candle for the bar has exactly the stored open, high, low and close, and every trigger sees both
extremes. Which extreme comes first is the conservative choice for the position held when the bar opens: a long
sees the low first, a short the high first, so a bar that touches both the stop and the take-profit fills the
stop. A flat account gets the usual path (low first on an up bar, high first on a down bar).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from lifecycle.clock import to_ms
from lifecycle.values import Candle
from simulator.engine import Simulator
from simulator.prices import ReplayCandle
from simulator.venue import SimVenue

HeldSign = Callable[[], int]
"""+1 while the replayed symbol is held long on the venue, -1 short, 0 flat."""


class BarReplay:
    """A `PricePath` over stored bars of one width; before the first bar its open, after the last its close."""

    def __init__(self, bars: Sequence[ReplayCandle], width_s: int, held: HeldSign) -> None:
        if not bars:
            raise ValueError("a bar replay needs at least one bar")
        self.bars = list(bars)
        self.opens = [to_ms(b.time) for b in self.bars]
        self.width_ms = width_s * 1000
        self.held = held
        self._candles = [Candle(b.time, b.open, b.high, b.low, b.close, b.volume) for b in self.bars]
        self.price = self.bars[0].open
        # The order of the extremes is chosen once per bar: a stop filled at the first extreme flattens the
        # account, and re-asking then would let the same bar swap its path half way through.
        self._order: tuple[int, bool] | None = None  # (bar index, low first)
        self._shock: Decimal | None = None

    def step(self, now: datetime, dt: Decimal) -> Decimal:
        if self._shock is not None:
            self.price = self._shock
            return self.price
        now_ms = to_ms(now)
        index = bisect_right(self.opens, now_ms) - 1
        if index < 0:
            self.price = self.bars[0].open
            return self.price
        bar = self.bars[index]
        offset = now_ms - self.opens[index]
        if offset >= self.width_ms:  # after the last bar, or inside a gap of the stored series: hold the close
            self.price = bar.close
            return self.price
        quarter = offset * 4 // self.width_ms
        if quarter == 0:
            self.price = bar.open
        elif quarter == 3:
            self.price = bar.close
        else:
            low_first = self._low_first(index, bar)
            first, second = (bar.low, bar.high) if low_first else (bar.high, bar.low)
            self.price = first if quarter == 1 else second
        return self.price

    def _low_first(self, index: int, bar: ReplayCandle) -> bool:
        if self._order is None or self._order[0] != index:
            sign = self.held()
            low_first = sign > 0 if sign != 0 else bar.close >= bar.open
            self._order = (index, low_first)
        return self._order[1]

    def shock(self, price: Decimal) -> None:
        self._shock = price
        self.price = price

    def between(self, start_ms: int, end_ms: int, now_ms: int) -> list[Candle]:
        """The bars opening in [start_ms, end_ms] (end_ms <= now_ms); one still forming at `now_ms` shows only
        its open (all that is known of it then)."""
        lo = bisect_left(self.opens, start_ms)
        hi = bisect_right(self.opens, end_ms)
        out = self._candles[lo:hi]
        if hi > lo and now_ms - self.opens[hi - 1] < self.width_ms:
            last = self.bars[hi - 1]
            out[-1] = Candle(last.time, last.open, last.open, last.open, last.open, Decimal(0))
        return out


def install(sim: Simulator, bars: Mapping[str, Sequence[ReplayCandle]], width_s: int) -> dict[str, BarReplay]:
    """Replace the engine's price paths of these symbols by bar replays (the engine must not have stepped yet
    beyond its warm-up instant). Returns the replays by symbol."""
    replays: dict[str, BarReplay] = {}
    for symbol, series in bars.items():
        if symbol not in sim.instruments:
            raise ValueError(f"{symbol} is not a simulator instrument; valid: {sorted(sim.instruments)}")
        replay = BarReplay(series, width_s, _held_sign(sim, symbol))
        # The engine builds its paths from SimConfig; a backtest's path needs the engine itself (the held side),
        # so it is swapped in here, within the simulator package, before any step is taken.
        sim._paths[symbol] = replay
        replays[symbol] = replay
    return replays


def _held_sign(sim: Simulator, symbol: str) -> HeldSign:
    def sign() -> int:
        for pos in sim.positions():
            if pos.symbol == symbol:
                return 1 if pos.size > 0 else -1 if pos.size < 0 else 0
        return 0

    return sign


class ReplayVenue(SimVenue):
    """SimVenue whose candles of the replayed timeframe come from the replay itself: only bars opened by the
    engine's clock, so nothing after `now` can reach the strategy, and no per-minute re-aggregation per tick."""

    def __init__(self, sim: Simulator, replays: dict[str, BarReplay], timeframe: str) -> None:
        super().__init__(sim)
        self.replays = replays
        self.timeframe = timeframe

    def candles(self, symbol: str, timeframe: str, since: datetime | None = None, limit: int = 100) -> list[Candle]:
        replay = self.replays.get(symbol)
        if replay is None or timeframe != self.timeframe:
            return super().candles(symbol, timeframe, since, limit)
        # What the ccxt adapter returns (exchange.ccxt_venue.candles): the charts window by time (`limit` bars back
        # from now, or on from `since`, never past now), then its newest `limit` bars, the forming one included.
        now_ms = to_ms(self.sim.now()) // 1000 * 1000
        width_ms = replay.width_ms
        if since is None:
            bars = replay.between(now_ms - width_ms * limit, now_ms, now_ms)
        else:
            start_ms = to_ms(since) // 1000 * 1000
            bars = replay.between(start_ms, min(start_ms + width_ms * limit - 1000, now_ms), now_ms)
        return bars[-limit:] if limit else bars
