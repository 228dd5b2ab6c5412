"""The strategy and risk knobs one backtest runs with, and the `key=value` overrides a grid varies.

Starts from the daemon's config (`[risk]`), so a backtest without a grid trades exactly as the configured daemon
would; the Donchian window lengths (not in the config) keep the strategy's defaults unless a grid sets them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from settings.config import Settings
from strategy.donchian import DonchianBreakout, DonchianParams

_DEFAULTS = DonchianParams()


class ParamsError(Exception):
    """A parameter name or value that cannot be used; the message names it and what is expected."""


@dataclass(frozen=True)
class Params:
    channel_bars: int = _DEFAULTS.channel_bars
    ema_bars: int = _DEFAULTS.ema_bars
    atr_bars: int = _DEFAULTS.atr_bars
    atr_stop_multiple: Decimal = _DEFAULTS.atr_stop_multiple
    risk_per_trade_pct: Decimal = _DEFAULTS.risk_per_trade_pct
    take_profit_r: Decimal | None = _DEFAULTS.take_profit_r

    @classmethod
    def from_settings(cls, settings: Settings) -> Params:
        risk = settings.risk
        return cls(
            atr_stop_multiple=risk.atr_stop_multiple,
            risk_per_trade_pct=risk.risk_per_trade_pct,
            take_profit_r=risk.take_profit_r,
        )

    def donchian(self) -> DonchianParams:
        return DonchianParams(
            channel_bars=self.channel_bars,
            ema_bars=self.ema_bars,
            atr_bars=self.atr_bars,
            atr_stop_multiple=self.atr_stop_multiple,
            risk_per_trade_pct=self.risk_per_trade_pct,
            take_profit_r=self.take_profit_r,
        )

    def strategy(self) -> DonchianBreakout:
        return DonchianBreakout(self.donchian())

    def as_dict(self) -> dict[str, str]:
        return {f.name: "none" if getattr(self, f.name) is None else str(getattr(self, f.name)) for f in _FIELDS}

    def with_values(self, values: Mapping[str, str]) -> Params:
        """These parameters with `name -> text` overrides, each checked (ParamsError names the bad one)."""
        changes: dict[str, object] = {}
        for name, text in values.items():
            if name not in _NAMES:
                raise ParamsError(f"unknown parameter {name!r}: use one of {', '.join(sorted(_NAMES))}")
            changes[name] = _parse(name, text)
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


_FIELDS = dataclasses.fields(Params)
_NAMES = {f.name for f in _FIELDS}
_INTS = {"channel_bars": (1, 1000), "ema_bars": (1, 1000), "atr_bars": (1, 1000)}
_DECIMALS = {
    "atr_stop_multiple": (Decimal(0), Decimal(20)),
    "risk_per_trade_pct": (Decimal(0), Decimal(10)),
    "take_profit_r": (Decimal(0), Decimal(20)),
}


def _parse(name: str, text: str) -> int | Decimal | None:
    if name in _INTS:
        lo, hi = _INTS[name]
        try:
            number = int(text)
        except ValueError:
            raise ParamsError(f"{name}={text!r}: expected a whole number from {lo} to {hi}") from None
        if not lo <= number <= hi:
            raise ParamsError(f"{name}={text!r}: expected a whole number from {lo} to {hi}")
        return number
    if name == "take_profit_r" and text.strip().lower() == "none":
        return None
    low, high = _DECIMALS[name]
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or not low < value <= high:
        extra = " (or none)" if name == "take_profit_r" else ""
        raise ParamsError(f"{name}={text!r}: expected a number above {low} and at most {high}{extra}")
    return value
