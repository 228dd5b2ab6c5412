"""The rolling indicators equal the batch ones (strategy.signals) on the same candles, and the strategy's decisions
with them equal its decisions with the batch functions, over random series fed the way the daemon feeds them:
a sliding window, several ticks per bar, the odd revised candle, a gap, a shorter window, another symbol."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from lifecycle.values import Candle, Instrument
from strategy.donchian import DonchianBreakout, DonchianParams
from strategy.rolling import RollingIndicators, Windows
from strategy.signals import atr, donchian, ema

T0 = datetime(2026, 1, 1, tzinfo=UTC)
XBT = Instrument("PF_XBTUSD", "BTC", Decimal(1), Decimal("0.0001"), Decimal("0.0001"), Decimal(1), Decimal(50))


def series(rng: random.Random, n: int, decimals: int) -> list[Candle]:
    price = 50000.0
    out = []
    for i in range(n):
        o = price
        c = o * (1 + rng.gauss(rng.choice([-0.002, 0.0, 0.002]), 0.01))
        h = max(o, c) * (1 + abs(rng.gauss(0, 0.004)))
        low = min(o, c) * (1 - abs(rng.gauss(0, 0.004)))
        q = Decimal(1).scaleb(-decimals)
        o_, h_, l_, c_ = (Decimal(repr(x)).quantize(q) for x in (o, h, low, c))
        out.append(Candle(T0 + timedelta(hours=i), o_, h_, l_, c_, Decimal(rng.randint(0, 9))))
        price = c
    return out


class _Batch:
    """The indicators as the strategy computed them before: every value from the whole window, every call."""

    def __init__(self, windows: Windows) -> None:
        self.windows = windows
        self.candles: Sequence[Candle] = ()

    def update(self, symbol: str, candles: Sequence[Candle]) -> None:
        self.candles = candles

    def donchian(self, symbol: str) -> tuple[Decimal, Decimal]:
        return donchian(self.candles, self.windows.channel_bars)

    def atr(self, symbol: str) -> Decimal:
        return atr(self.candles, self.windows.atr_bars)

    def ema(self, symbol: str, candles: Sequence[Candle]) -> Decimal:
        return ema([c.close for c in candles], self.windows.ema_bars)


def windows_as_fed(rng: random.Random, candles: list[Candle], limit: int) -> list[tuple[str, list[Candle]]]:
    """What the tick hands the strategy: the last `limit` closed candles, repeated within a bar, with surprises."""
    feeds: list[tuple[str, list[Candle]]] = []
    history = list(candles)
    for end in range(1, len(history) + 1):
        for _ in range(rng.choice([1, 1, 2, 3])):  # several ticks per bar see the same candles
            window = history[max(0, end - limit) : end]
            roll = rng.random()
            if roll < 0.03 and len(window) > 3:  # the venue revised a recent closed candle
                k = rng.randrange(len(window) - min(len(window), 25), len(window))
                c = window[k]
                history[max(0, end - limit) + k] = window[k] = Candle(
                    c.time, c.open, c.high + 1, c.low, c.close, c.volume
                )
            elif roll < 0.05 and len(window) > 10:  # a gap in what the venue returned
                del window[rng.randrange(len(window) - 5)]
            elif roll < 0.07:  # a shorter window than usual
                window = window[rng.randrange(len(window)) :]
            feeds.append(("PF_XBTUSD", window))
            if rng.random() < 0.1:
                feeds.append(("PF_ETHUSD", window[: max(1, len(window) // 2)]))  # another symbol's state
    return feeds


@pytest.mark.parametrize("seed", range(12))
def test_rolling_values_equal_the_batch_functions(seed: int) -> None:
    rng = random.Random(seed)
    w = Windows(rng.choice([5, 10, 20]), rng.choice([8, 21, 50]), rng.choice([3, 7, 14]))
    candles = series(rng, 260, rng.choice([0, 1, 4, 8]))
    rolling = RollingIndicators(w)
    need = max(w.channel_bars + 1, w.ema_bars, w.atr_bars + 1)
    checked = 0
    for symbol, window in windows_as_fed(rng, candles, rng.choice([need, need + 7, 100])):
        if len(window) < need:
            continue
        rolling.update(symbol, window)
        assert rolling.donchian(symbol) == donchian(window, w.channel_bars)
        assert rolling.atr(symbol) == atr(window, w.atr_bars)
        assert rolling.ema(symbol, window) == ema([c.close for c in window], w.ema_bars)
        checked += 1
    assert checked > 150
    assert rolling.rebuilds < checked / 3, "the state rebuilt on most calls: nothing was incremental"


@pytest.mark.parametrize("seed", range(8))
def test_decisions_are_identical_to_the_batch_strategy(seed: int) -> None:
    rng = random.Random(1000 + seed)
    params = DonchianParams(
        channel_bars=rng.choice([10, 20]), ema_bars=rng.choice([20, 50]), take_profit_r=rng.choice([None, Decimal(2)])
    )
    new, old = DonchianBreakout(params), DonchianBreakout(params)
    old.indicators = _Batch(new.indicators.windows)  # type: ignore[assignment]
    entries = 0
    for symbol, window in windows_as_fed(rng, series(rng, 300, 0), 100):
        a = new.analyse(symbol, window, XBT, Decimal(10000))
        b = old.analyse(symbol, window, XBT, Decimal(10000))
        assert a == b
        entries += a.is_entry
    assert entries > 0, "no entry decision compared: the series never broke out"
