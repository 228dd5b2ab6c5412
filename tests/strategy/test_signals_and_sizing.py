"""Indicators and sizing with hand-computed values."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strategy.signals import atr, donchian, ema
from strategy.sizing import position_size, round_down, round_up
from tests.strategy.builders import BTC, candle, flat


def test_ema_by_hand() -> None:
    # seed (1+2)/2 = 1.5; k = 2/3: 3·2/3 + 1.5/3 = 2.5; 4·2/3 + 2.5/3 = 3.5
    values = [Decimal(v) for v in (1, 2, 3, 4)]
    assert ema(values, 2).quantize(Decimal("1e-20")) == Decimal("3.5")
    assert ema([Decimal(7)] * 5, 3) == Decimal(7)


def test_ema_refuses_short_input() -> None:
    with pytest.raises(ValueError, match="needs at least 3"):
        ema([Decimal(1)], 3)


def test_atr_uses_the_previous_close_for_gaps() -> None:
    candles = [candle(0, 100), candle(1, 92, high=95, low=90), candle(2, 102, high=103, low=101)]
    # TR1 = max(95-90, |95-100|, |90-100|) = 10; TR2 = max(2, |103-92|, |101-92|) = 11
    assert atr(candles, 2) == Decimal("10.5")
    assert atr(candles, 1) == Decimal(11)


def test_donchian_excludes_the_candle_under_test() -> None:
    candles = [*flat(5), candle(5, 150, high=160, low=140)]
    assert donchian(candles, 5) == (Decimal(101), Decimal(99))


def test_size_exact() -> None:
    # 1% of 10 000 = 100 at risk over a 1 000 stop distance: 0.1 contracts
    result = position_size(Decimal(10000), Decimal(1), Decimal(50000), Decimal(49000), BTC)
    assert result.size == Decimal("0.1")


def test_size_rounds_down_to_the_increment() -> None:
    # 50 / 1 500 = 0.03333… → 0.0333
    result = position_size(Decimal(10000), Decimal("0.5"), Decimal(50000), Decimal(48500), BTC)
    assert result.size == Decimal("0.0333")


def test_size_below_minimum_is_refused_not_rounded_up() -> None:
    result = position_size(
        Decimal(10000), Decimal("0.5"), Decimal(50000), Decimal(48500), replace(BTC, min_size=Decimal("0.05"))
    )
    assert result.size is None
    assert "below the minimum 0.05" in result.reason


def test_zero_distance_and_no_equity_are_refused() -> None:
    assert position_size(Decimal(1000), Decimal(1), Decimal(10), Decimal(10), BTC).size is None
    assert position_size(Decimal(0), Decimal(1), Decimal(10), Decimal(9), BTC).size is None


def test_rounding_helpers() -> None:
    assert round_down(Decimal("104.7"), Decimal("0.5")) == Decimal("104.5")
    assert round_up(Decimal("95.2"), Decimal("0.5")) == Decimal("95.5")
    assert round_up(Decimal("95.5"), Decimal("0.5")) == Decimal("95.5")


@given(
    equity=st.decimals(min_value=1, max_value=10**7, places=2),
    risk=st.decimals(min_value="0.01", max_value=5, places=2),
    entry=st.decimals(min_value=1, max_value=10**5, places=1),
    distance=st.decimals(min_value="0.1", max_value=1000, places=1),
)
def test_size_never_risks_more_than_the_budget(
    equity: Decimal, risk: Decimal, entry: Decimal, distance: Decimal
) -> None:
    result = position_size(equity, risk, entry, entry - distance, BTC)
    budget = equity * risk / 100
    if result.size is not None:
        assert result.size * distance <= budget
        assert (result.size + BTC.size_increment) * distance > budget  # and not needlessly small
        assert result.size % BTC.size_increment == 0
