"""The default strategy: a Donchian breakout confirmed by an EMA trend filter, with an ATR stop.

Enter long when the last closed candle closes above the highest high of the previous `channel_bars` candles
AND above the EMA; short on the mirror image. The stop sits `atr_stop_multiple` ATRs away, the size risks
`risk_per_trade_pct`% of equity to that stop, and the optional take-profit sits at `take_profit_r` times the risk.
It is a simple trend-following rule, not an edge: see docs/strategy.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from lifecycle.values import Candle, Instrument, PositionSide
from strategy.base import Decision, Verdict
from strategy.exit_rule import DEFAULT_EXIT_BARS, exit_signal
from strategy.rolling import RollingIndicators, Windows
from strategy.sizing import position_size, round_down, round_up, take_profit_at


@dataclass(frozen=True)
class DonchianParams:
    channel_bars: int = 20
    exit_bars: int = DEFAULT_EXIT_BARS  # the opposite break over this shorter channel exits (strategy.exit_rule)
    ema_bars: int = 50
    atr_bars: int = 14
    atr_stop_multiple: Decimal = Decimal(2)
    risk_per_trade_pct: Decimal = Decimal("0.5")
    take_profit_r: Decimal | None = Decimal(2)

    @property
    def history_needed(self) -> int:
        return max(self.channel_bars + 1, self.ema_bars, self.atr_bars + 1)


class DonchianBreakout:
    name = "donchian_breakout"

    def __init__(self, params: DonchianParams | None = None) -> None:
        self.params = params or DonchianParams()
        # Per-symbol indicator state, folded forward one closed candle at a time (strategy.rolling); the values
        # are exactly those of strategy.signals over the candles passed (tests/strategy/test_rolling.py).
        self.indicators = RollingIndicators(
            Windows(self.params.channel_bars, self.params.ema_bars, self.params.atr_bars)
        )

    def exit_reason(self, symbol: str, side: PositionSide, candles: Sequence[Candle]) -> str | None:
        """The opposite Donchian break over the shorter exit channel (strategy.exit_rule)."""
        return exit_signal(side, candles, self.params.exit_bars)

    def analyse(self, symbol: str, candles: Sequence[Candle], instrument: Instrument, equity: Decimal) -> Decision:
        p = self.params
        if not instrument.tradeable:
            return Decision(symbol, Verdict.SKIP, "instrument not tradeable")
        if len(candles) < p.history_needed:
            return Decision(
                symbol, Verdict.SKIP, "insufficient history", {"candles": len(candles), "needed": p.history_needed}
            )
        close = candles[-1].close
        self.indicators.update(symbol, candles)
        high, low = self.indicators.donchian(symbol)
        trend = self.indicators.ema(symbol, candles)
        vol = self.indicators.atr(symbol)
        inputs: dict[str, Decimal | int | str] = {
            "close": close,
            "channel_high": high,
            "channel_low": low,
            "ema": trend.quantize(instrument.tick_size),
            "atr": vol.quantize(instrument.tick_size),
        }
        if vol <= 0:
            return Decision(symbol, Verdict.SKIP, "zero volatility (ATR 0)", inputs)
        if close > high:
            if close <= trend:
                return Decision(symbol, Verdict.HOLD, "breakout up against the EMA trend", inputs)
            return self._enter(symbol, Verdict.ENTER_LONG, close, vol, (close - high) / vol, instrument, equity, inputs)
        if close < low:
            if close >= trend:
                return Decision(symbol, Verdict.HOLD, "breakout down against the EMA trend", inputs)
            return self._enter(symbol, Verdict.ENTER_SHORT, close, vol, (low - close) / vol, instrument, equity, inputs)
        return Decision(symbol, Verdict.HOLD, "inside the channel", inputs)

    def _enter(
        self,
        symbol: str,
        verdict: Verdict,
        entry: Decimal,
        vol: Decimal,
        strength: Decimal,
        instrument: Instrument,
        equity: Decimal,
        inputs: dict[str, Decimal | int | str],
    ) -> Decision:
        p = self.params
        long = verdict is Verdict.ENTER_LONG
        tick = instrument.tick_size
        # Stops round AWAY from the entry: a wider stop gives a smaller size, never a larger risk.
        distance = p.atr_stop_multiple * vol
        stop = round_down(entry - distance, tick) if long else round_up(entry + distance, tick)
        if stop <= 0:
            return Decision(symbol, Verdict.SKIP, "stop would be at or below zero", inputs)
        take_profit = None if p.take_profit_r is None else take_profit_at(entry, stop, p.take_profit_r, tick, long)
        sized = position_size(equity, p.risk_per_trade_pct, entry, stop, instrument)
        if sized.size is None:
            return Decision(symbol, Verdict.SKIP, sized.reason, {**inputs, "equity": equity})
        direction = "up" if long else "down"
        return Decision(
            symbol,
            verdict,
            f"breakout {direction} with the EMA trend; {sized.reason}",
            {**inputs, "equity": equity},
            entry_price=entry,
            stop_price=stop,
            take_profit_price=take_profit,
            size=sized.size,
            strength=strength.quantize(Decimal("0.0001")),
        )
