"""Quantities are stored as integer units so that SQL aggregates over the fill ledger are exact."""

from __future__ import annotations

from decimal import Decimal

QTY_SCALE = 10**8  # one unit = 1e-8 contracts; finer than any Kraken Futures size increment


class PrecisionError(ValueError):
    pass


def qty_to_units(qty: Decimal) -> int:
    scaled = qty * QTY_SCALE
    if scaled != scaled.to_integral_value():
        raise PrecisionError(f"quantity {qty} is finer than the registry's 1e-8 unit")
    return int(scaled)


def units_to_qty(units: int) -> Decimal:
    return (Decimal(units) / QTY_SCALE).normalize()
