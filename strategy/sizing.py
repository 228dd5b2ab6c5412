"""Risk-based position size: risk a fixed share of equity between entry and stop, rounded DOWN to the venue."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from lifecycle.values import Instrument


@dataclass(frozen=True)
class SizeResult:
    size: Decimal | None  # None when refused
    reason: str


def round_down(value: Decimal, increment: Decimal) -> Decimal:
    return (value / increment).to_integral_value(rounding=ROUND_FLOOR) * increment


def round_up(value: Decimal, increment: Decimal) -> Decimal:
    return (value / increment).to_integral_value(rounding=ROUND_CEILING) * increment


def take_profit_at(entry: Decimal, stop: Decimal, r_multiple: Decimal, tick: Decimal, long: bool) -> Decimal | None:
    """The target `r_multiple` times the entry-to-stop risk beyond the entry, rounded TOWARD the entry (a nearer
    target is still reached when the exact one would be); None when that is at or below zero."""
    reward = r_multiple * abs(entry - stop)
    target = round_down(entry + reward, tick) if long else round_up(entry - reward, tick)
    return target if target > 0 else None


def position_size(
    equity: Decimal, risk_pct: Decimal, entry: Decimal, stop: Decimal, instrument: Instrument
) -> SizeResult:
    """Contracts such that hitting the stop loses at most `risk_pct`% of equity.

    Rounding down keeps the loss at or under the budget; a size under the venue minimum is refused rather than
    rounded up, because rounding up would risk more than the budget."""
    distance = abs(entry - stop)
    if equity <= 0:
        return SizeResult(None, "no equity")
    if distance == 0:
        return SizeResult(None, "stop distance is zero")
    risk = equity * risk_pct / 100
    raw = risk / (distance * instrument.contract_size)
    size = round_down(raw, instrument.size_increment)
    if size < instrument.min_size or size <= 0:
        return SizeResult(None, f"size {size} below the minimum {instrument.min_size}")
    return SizeResult(size, f"risk {risk.quantize(Decimal('0.01'))} over stop distance {distance}")
