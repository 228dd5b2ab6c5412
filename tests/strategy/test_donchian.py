"""The default strategy on hand-built candles: breakout up, down, flat, against the trend, thin data."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from lifecycle.events import Ev, emit
from strategy.base import Strategy, Verdict
from strategy.donchian import DonchianBreakout, DonchianParams
from tests.strategy.builders import BTC, candle, flat

EQUITY = Decimal(10000)
# 59 flat candles (TR 2 each) then the candle under test (TR 11): ATR(14) = (13·2 + 11) / 14 = 37/14
UP = [*flat(59), candle(59, 110, high=111, low=100)]
DOWN = [*flat(59), candle(59, 90, high=100, low=89)]


def test_is_a_strategy() -> None:
    strategy: Strategy = DonchianBreakout()
    assert strategy.name == "donchian_breakout"


def test_breakout_up_with_trend_enters_long() -> None:
    d = DonchianBreakout().analyse("PF_XBTUSD", UP, BTC, EQUITY)
    assert d.verdict is Verdict.ENTER_LONG
    # stop 110 − 2·37/14 = 104.71… rounded down to the 0.5 tick = 104.5; risk 50 / 5.5 = 9.0909…
    assert d.entry_price == Decimal(110)
    assert d.stop_price == Decimal("104.5")
    assert d.size == Decimal("9.0909")
    assert d.take_profit_price == Decimal(121)  # 110 + 2 · 5.5
    assert d.strength == (Decimal(9) / (Decimal(37) / 14)).quantize(Decimal("0.0001"))


def test_breakout_down_with_trend_enters_short() -> None:
    d = DonchianBreakout().analyse("PF_XBTUSD", DOWN, BTC, EQUITY)
    assert d.verdict is Verdict.ENTER_SHORT
    assert d.stop_price == Decimal("95.5")  # 90 + 5.28… rounded UP
    assert d.size == Decimal("9.0909")
    assert d.take_profit_price == Decimal(79)


def test_flat_market_holds_inside_the_channel() -> None:
    d = DonchianBreakout().analyse("PF_XBTUSD", flat(60), BTC, EQUITY)
    assert (d.verdict, d.reason) == (Verdict.HOLD, "inside the channel")
    assert d.size is None


def test_breakout_against_the_trend_holds() -> None:
    candles = [*flat(30, level=200), *[candle(30 + i, 100) for i in range(29)], candle(59, 110, high=111, low=100)]
    d = DonchianBreakout().analyse("PF_XBTUSD", candles, BTC, EQUITY)
    assert d.verdict is Verdict.HOLD
    assert d.reason == "breakout up against the EMA trend"
    assert Decimal(d.inputs["ema"]) > Decimal(110)


def test_insufficient_history_skips() -> None:
    d = DonchianBreakout().analyse("PF_XBTUSD", UP[-30:], BTC, EQUITY)
    assert (d.verdict, d.reason) == (Verdict.SKIP, "insufficient history")
    assert d.inputs == {"candles": 30, "needed": 50}


def test_untradeable_instrument_skips() -> None:
    d = DonchianBreakout().analyse("PF_XBTUSD", UP, replace(BTC, tradeable=False), EQUITY)
    assert d.verdict is Verdict.SKIP


def test_size_below_minimum_skips_with_reason() -> None:
    d = DonchianBreakout().analyse("PF_XBTUSD", UP, replace(BTC, min_size=Decimal(10)), EQUITY)
    assert d.verdict is Verdict.SKIP
    assert "below the minimum 10" in d.reason


def test_no_take_profit_when_disabled() -> None:
    d = DonchianBreakout(DonchianParams(take_profit_r=None)).analyse("PF_XBTUSD", UP, BTC, EQUITY)
    assert d.verdict is Verdict.ENTER_LONG and d.take_profit_price is None


def test_decision_renders_one_trace_line() -> None:
    d = DonchianBreakout().analyse("PF_XBTUSD", UP, BTC, EQUITY)
    line = str(emit(Ev.DECISION_TRACE, None, **d.trace_fields()))
    assert line.startswith("DECISION_TRACE symbol=PF_XBTUSD verdict=enter_long reason=")
    inputs = str(d.trace_fields()["inputs"])
    assert " " not in inputs
    assert "stop_price:104.5" in inputs and "size:9.0909" in inputs and "channel_high:101" in inputs
