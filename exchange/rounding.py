"""Fit sizes and prices to an instrument's increments before anything is sent.

Sizes are truncated down (never send more than was asked for); prices are rounded to the nearest tick
(half up, like ccxt's TICK_SIZE rounding, so our numbers and the ones on the wire agree). A size that
truncates below the instrument's minimum is refused here with a typed error, before the venue sees it.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from exchange.errors import OrderNotSent
from lifecycle.values import Instrument


class SizeBelowMinimum(OrderNotSent):
    """The requested size, truncated to the size increment, is below the instrument's minimum. Not sent."""


class InvalidPrice(OrderNotSent):
    """A price that is not positive after rounding to the tick. Not sent."""


def _quantize(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    if step <= 0:
        raise ValueError(f"increment must be positive, got {step}")
    steps = (value / step).to_integral_value(rounding=rounding)
    return (steps * step).normalize()


def round_size(size: Decimal, instrument: Instrument) -> Decimal:
    """Truncate to the size increment; raise `SizeBelowMinimum` when the result is below the minimum."""
    fitted = _quantize(size, instrument.size_increment, ROUND_DOWN)
    minimum = max(instrument.min_size, instrument.size_increment)
    if fitted < minimum:
        raise SizeBelowMinimum(
            f"order size {size} for {instrument.symbol} is below the minimum {minimum} once truncated to the "
            f"size increment {instrument.size_increment} (got {fitted}); nothing was sent. Raise the size or "
            f"skip this order.",
            venue_status="sizeBelowMinimum",
        )
    return fitted


def round_price(price: Decimal, instrument: Instrument) -> Decimal:
    """Round to the nearest tick; raise `InvalidPrice` when the result is not positive."""
    fitted = _quantize(price, instrument.tick_size, ROUND_HALF_UP)
    if fitted <= 0:
        raise InvalidPrice(
            f"price {price} for {instrument.symbol} rounds to {fitted} at tick {instrument.tick_size}; "
            f"nothing was sent. Check the price computation (it must be positive).",
            venue_status="invalidPrice",
        )
    return fitted
