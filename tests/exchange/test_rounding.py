"""Sizes truncate down to the increment, prices round to the tick, too-small sizes are refused before sending."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.errors import OrderNotSent, OrderRejected
from exchange.rounding import InvalidPrice, SizeBelowMinimum, round_price, round_size
from lifecycle.values import Instrument

XBT = Instrument("PF_XBTUSD", "BTC", Decimal(1), Decimal("0.0001"), Decimal("0.0001"), Decimal(1), Decimal(50))
ETH = Instrument("PF_ETHUSD", "ETH", Decimal("0.1"), Decimal("0.001"), Decimal("0.01"), Decimal(1), Decimal(50))


def test_examples_match_ccxt_on_the_wire() -> None:
    # the same numbers the reference saw ccxt send: 0.0123456 -> 0.0123, 60000.7 -> 60001
    assert round_size(Decimal("0.0123456"), XBT) == Decimal("0.0123")
    assert round_price(Decimal("60000.7"), XBT) == Decimal(60001)
    assert round_price(Decimal("60000.5"), XBT) == Decimal(60001)
    assert round_price(Decimal("3200.04"), ETH) == Decimal("3200.0")


def test_too_small_is_refused_with_a_typed_error() -> None:
    with pytest.raises(SizeBelowMinimum, match=r"below the minimum 0\.01") as info:
        round_size(Decimal("0.0099"), ETH)
    assert isinstance(info.value, OrderNotSent) and not isinstance(info.value, OrderRejected)
    with pytest.raises(InvalidPrice):
        round_price(Decimal("0.4"), XBT)


@given(st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(1000), places=8))
def test_size_never_grows_and_is_on_the_increment(size: Decimal) -> None:
    fitted = round_size(size, XBT)
    assert fitted <= size
    assert size - fitted < XBT.size_increment
    assert fitted % XBT.size_increment == 0


@given(st.decimals(min_value=Decimal(1), max_value=Decimal(10**6), places=4))
def test_price_is_on_tick_within_half_a_tick(price: Decimal) -> None:
    fitted = round_price(price, ETH)
    assert fitted % ETH.tick_size == 0
    assert abs(fitted - price) <= ETH.tick_size / 2
