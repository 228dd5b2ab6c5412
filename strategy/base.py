"""The pluggable strategy interface and the decision it returns.

A strategy is pure: closed candles, the instrument and the equity in, one `Decision` out. Every decision carries
its inputs and verdict so that the daemon can emit one DECISION_TRACE line per coin per cycle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from lifecycle.values import Candle, Instrument, PositionSide


class Verdict(StrEnum):
    ENTER_LONG = "enter_long"
    ENTER_SHORT = "enter_short"
    HOLD = "hold"  # analysed, no signal
    SKIP = "skip"  # could not analyse or cannot trade (history, instrument, size)


@dataclass(frozen=True)
class Decision:
    symbol: str
    verdict: Verdict
    reason: str
    inputs: Mapping[str, Decimal | int | str] = field(default_factory=dict)
    entry_price: Decimal | None = None
    stop_price: Decimal | None = None
    take_profit_price: Decimal | None = None
    size: Decimal | None = None
    strength: Decimal = Decimal(0)
    """How far past the signal threshold, in ATRs; the margin auction ranks by it."""

    @property
    def is_entry(self) -> bool:
        return self.verdict in (Verdict.ENTER_LONG, Verdict.ENTER_SHORT)

    @property
    def side(self) -> PositionSide | None:
        if self.verdict is Verdict.ENTER_LONG:
            return PositionSide.LONG
        if self.verdict is Verdict.ENTER_SHORT:
            return PositionSide.SHORT
        return None

    def trace_fields(self) -> dict[str, object]:
        """The fields of `Ev.DECISION_TRACE`; `inputs` is one space-free token (`k:v,k:v`)."""
        values = dict(self.inputs)
        for name in ("entry_price", "stop_price", "take_profit_price", "size", "strength"):
            value = getattr(self, name)
            if value is not None and (name != "strength" or self.is_entry):
                values[name] = value
        inputs = ",".join(f"{k}:{_token(v)}" for k, v in values.items())
        return {"symbol": self.symbol, "verdict": self.verdict.value, "reason": self.reason, "inputs": inputs}


def _token(value: Decimal | int | str) -> str:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value).replace(" ", "_")


class Strategy(Protocol):
    name: str

    def analyse(self, symbol: str, candles: Sequence[Candle], instrument: Instrument, equity: Decimal) -> Decision:
        """Decide on closed candles only (oldest first); never raises for thin data, returns SKIP instead."""
        ...

    def exit_reason(self, symbol: str, side: PositionSide, candles: Sequence[Candle]) -> str | None:
        """Why a held `side` position should be exited on these closed candles, or None to keep it."""
        ...
