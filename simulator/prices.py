"""Price paths: a seeded random walk that switches between trending and ranging regimes, or a replay of candles.

The walk draws its noise from the `random.Random` it is given; the arithmetic on prices is Decimal, so a seed
reproduces the path exactly on any machine.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol


class Regime(StrEnum):
    TREND_UP = "trend_up"
    TREND_DOWN = "trend_down"
    RANGE = "range"


@dataclass(frozen=True)
class ReplayCandle:
    time: datetime  # open time
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = Decimal(0)


def gauss(rng: random.Random) -> Decimal:
    # Rounded to 6 places so the Decimal value does not depend on float repr details.
    return Decimal(f"{rng.gauss(0.0, 1.0):.6f}")


# A walk steps by the same dt nearly every time: these are computed once per dt, in bounded caches (`python -m
# simulator` advances by real elapsed time, a new dt every tick). The square root is keyed by dt's exact text
# (Decimal("1") and Decimal("1.0") are equal and hash alike, and their square roots have different exponents, which
# the price's digits would carry); the probability is only ever compared, so its value is enough.
def _sqrt(dt: Decimal) -> Decimal:
    return _sqrt_of(str(dt))


@functools.lru_cache(maxsize=64)
def _sqrt_of(dt: str) -> Decimal:
    return Decimal(dt).sqrt()


@functools.lru_cache(maxsize=64)
def _switch_probability(dt: Decimal, regime_seconds: Decimal) -> Decimal:
    return min(Decimal(1), dt / regime_seconds)


class PricePath(Protocol):
    def step(self, now: datetime, dt: Decimal) -> Decimal:
        """Advance to `now` (`dt` seconds after the previous step) and return the new fair price."""
        ...

    def shock(self, price: Decimal) -> None:
        """Scenario control: jump to `price` (the walk continues from there)."""
        ...


class RandomWalk:
    """Geometric random walk; trending regimes add drift, the ranging regime pulls towards an anchor."""

    TREND_DRIFT = Decimal("0.000003")  # per second, about 1 % an hour
    RANGE_PULL = Decimal(1) / Decimal(1800)  # mean reversion rate per second

    def __init__(
        self, rng: random.Random, start: Decimal, volatility: Decimal, regime_seconds: Decimal = Decimal(14400)
    ) -> None:
        self._rng = rng
        self.price = start
        self.anchor = start
        self.volatility = volatility
        self.regime_seconds = regime_seconds
        self.regime = Regime.RANGE

    def _maybe_switch(self, dt: Decimal) -> None:
        if Decimal(f"{self._rng.random():.9f}") < _switch_probability(dt, self.regime_seconds):
            self.regime = self._rng.choice([Regime.TREND_UP, Regime.TREND_DOWN, Regime.RANGE])
            self.anchor = self.price

    def step(self, now: datetime, dt: Decimal) -> Decimal:
        if dt <= 0:
            return self.price
        self._maybe_switch(dt)
        if self.regime is Regime.TREND_UP:
            drift = self.TREND_DRIFT * dt
        elif self.regime is Regime.TREND_DOWN:
            drift = -self.TREND_DRIFT * dt
        else:
            drift = min(Decimal(1), self.RANGE_PULL * dt) * (self.anchor - self.price) / self.price
        ret = drift + self.volatility * _sqrt(dt) * gauss(self._rng)
        # A floor keeps a pathological seed from walking a price to zero or below.
        self.price = max(self.price * (1 + ret), self.anchor / 100)
        return self.price

    def shock(self, price: Decimal) -> None:
        self.price = price
        self.anchor = price


class ReplayPath:
    """Follows a list of candles: open, then the nearer extreme, the other extreme, and the close."""

    def __init__(self, candles: list[ReplayCandle]) -> None:
        if not candles:
            raise ValueError("a replay needs at least one candle; pass the candles to follow in SimConfig.replay")
        self.candles = sorted(candles, key=lambda c: c.time)
        if len(self.candles) > 1:
            self.width = Decimal(str((self.candles[1].time - self.candles[0].time).total_seconds()))
        else:
            self.width = Decimal(60)
        self._shock: Decimal | None = None
        self.price = self.candles[0].open

    def price_at(self, now: datetime) -> Decimal:
        first = self.candles[0]
        if now <= first.time:
            return first.open
        elapsed = Decimal(str((now - first.time).total_seconds()))
        index = int(elapsed // self.width)
        if index >= len(self.candles):
            return self.candles[-1].close
        candle = self.candles[index]
        frac = (elapsed - index * self.width) / self.width
        first_extreme, second_extreme = (
            (candle.low, candle.high) if candle.close >= candle.open else (candle.high, candle.low)
        )
        quarter = Decimal("0.25")
        if frac < quarter:
            return candle.open + (first_extreme - candle.open) * frac / quarter
        if frac < 3 * quarter:
            return first_extreme + (second_extreme - first_extreme) * (frac - quarter) / (2 * quarter)
        return second_extreme + (candle.close - second_extreme) * (frac - 3 * quarter) / quarter

    def step(self, now: datetime, dt: Decimal) -> Decimal:
        self.price = self.price_at(now) if self._shock is None else self._shock
        return self.price

    def shock(self, price: Decimal) -> None:
        # A replay has no memory to continue from, so a shock holds until cleared by `shock_clear`.
        self._shock = price
        self.price = price

    def shock_clear(self) -> None:
        self._shock = None
