"""A backtest through the daemon's own jobs: clean audit, money that adds up, the conservative intrabar path."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from backtest.params import Params
from backtest.report import build, open_value
from backtest.run import Spec, run
from exchange.errors import VenueUnavailable
from lifecycle.account_log import AccountLogEntry
from lifecycle.clock import FakeClock
from settings.config import load_settings
from simulator.prices import ReplayCandle
from simulator.replay import ReplayVenue
from store.audit import run_audit
from store.registry import Registry
from tests.backtest.series import HOUR, START, walk

D = Decimal


def spec(bars: dict[str, list[ReplayCandle]], **params: str) -> Spec:
    settings = load_settings(None)
    return Spec(
        bars={s: tuple(b) for s, b in bars.items()},
        timeframe="1h",
        params=Params.from_settings(settings).with_values(params),
        settings=settings,
    )


def test_backtest_trades_through_the_jobs_and_ends_clean(tmp_path: Path) -> None:
    kept = tmp_path / "run.db"
    series = {"PF_XBTUSD": walk(250, seed=3), "PF_ETHUSD": walk(250, seed=4, start=D(3000))}
    s = replace(spec(series, take_profit_r="2"), registry_path=kept)
    result = run(s)
    assert result.problems == []
    assert result.audit == "registry audit clean"
    assert len(result.trades) >= 4, "the walk should give the breakout strategy some trades"
    assert {t.symbol for t in result.trades} == {"PF_XBTUSD", "PF_ETHUSD"}
    # The kept registry is the daemon's own: its audit passes on a fresh open, and holds every traded position.
    registry = Registry.open(kept, FakeClock())
    try:
        assert run_audit(registry.db).ok
        assert len([p for p in registry.positions() if registry.fills(p.uid)]) == len(result.trades)
    finally:
        registry.close()


def test_net_pnl_is_the_ledger_at_the_fee_rate(tmp_path: Path) -> None:
    """The account's equity change (the engine's balance, which took each fee) equals the ledger's trades booked by
    lifecycle.accounting with the fees and funding the daemon's account-log job attributed, plus what is open at the
    last close: fees and funding are neither lost nor double counted, and the fees are the run's rate of every
    fill's notional."""
    bars = walk(300, seed=5)
    s = replace(spec({"PF_XBTUSD": bars}, take_profit_r="1.5"), fee_rate=D("0.001"))
    result = run(s)
    report = build(result)
    assert report.closed.trades >= 2
    assert report.fees == sum(f.qty * f.price * D("0.001") for t in result.trades for f in t.fills)
    assert report.funding != 0
    assert open_value(result, {"PF_XBTUSD": bars[-1].close}) == report.net_pnl
    without_fees = build(run(replace(s, fee_rate=D(0))))
    assert without_fees.fees == 0
    assert without_fees.net_pnl > report.net_pnl


def _breakout_then(last: ReplayCandle, flat: int = 60) -> list[ReplayCandle]:
    """`flat` quiet bars around 100 then a breakout bar up, then `last` (times are set here)."""
    bars = [ReplayCandle(START + i * HOUR, D(100), D(101), D(99), D(100 + i % 2)) for i in range(flat)]
    bars += [ReplayCandle(START + flat * HOUR, D(100), D(110), D(100), D(110))]
    t = START + (flat + 1) * HOUR
    return [*bars, replace(last, time=t), ReplayCandle(t + HOUR, last.close, last.close, last.close, last.close)]


def test_a_bar_touching_stop_and_take_profit_fills_the_stop() -> None:
    """After a long breakout entry (stop below, TP above), a DOWN bar whose range covers both: a path that takes
    the bar's direction (high first on a down bar) would fill the TP; the stated conservative path fills the stop."""
    # close < open: a down bar; it closes inside the channel, so no new entry follows it
    whipsaw = ReplayCandle(START, D(110), D(200), D(20), D(100))
    result = run(spec({"PF_XBTUSD": _breakout_then(whipsaw)}, take_profit_r="2"))
    assert result.problems == []
    (trade,) = result.trades
    assert trade.side == "long"
    entry = next(f for f in trade.fills if f.is_entry)
    exit_fill = next(f for f in trade.fills if not f.is_entry)
    assert trade.stop_price is not None and trade.stop_price < entry.price
    assert exit_fill.price <= trade.stop_price, "the stop, not the take-profit, closed the position"


def test_a_short_sees_the_high_first() -> None:
    """The mirror: a short after a breakout down, then an UP bar covering both levels: the stop (above) fills."""
    bars = [ReplayCandle(START + i * HOUR, D(100), D(101), D(99), D(100 + i % 2)) for i in range(60)]
    bars += [ReplayCandle(START + 60 * HOUR, D(100), D(100), D(90), D(90))]
    bars += [ReplayCandle(START + 61 * HOUR, D(90), D(180), D(10), D(100))]  # close > open: an up bar
    bars += [ReplayCandle(START + 62 * HOUR, D(100), D(100), D(100), D(100))]
    result = run(spec({"PF_XBTUSD": bars}, take_profit_r="2"))
    assert result.problems == []
    (trade,) = result.trades
    assert trade.side == "short"
    exit_fill = next(f for f in trade.fills if not f.is_entry)
    assert trade.stop_price is not None and exit_fill.price >= trade.stop_price


def test_equity_is_marked_every_bar_and_exposure_counts_held_bars() -> None:
    bars = walk(200, seed=9)
    result = run(spec({"PF_XBTUSD": bars}, take_profit_r="2"))
    assert len(result.equity) == 200
    assert [p.time for p in result.equity] == [bars[0].time + (i + 1) * HOUR for i in range(200)]
    report = build(result)
    held = sum(p.exposed for p in result.equity)
    assert report.exposure_pct == D(held * 100) / 200
    assert result.equity[-1].hold == D(10000) * bars[-1].close / bars[0].close
    q = D("1e-12")
    assert report.buy_and_hold_pct.quantize(q) == ((bars[-1].close / bars[0].close - 1) * 100).quantize(q)
    assert timedelta(hours=199) == result.end - result.start


class _LogUnreadable(ReplayVenue):
    """The engine's venue whose account log never answers (the rest as in a backtest)."""

    def account_log(self, after_id: int | None, limit: int = 500) -> list[AccountLogEntry]:
        raise VenueUnavailable("account log down")


def test_a_run_whose_account_log_cannot_be_read_is_not_reported_as_clean() -> None:
    """Fees and funding reach the report only through the account-log job: a run that could not read the log to its
    end has no money view to stand on, and says so (the CLI then exits non-zero) rather than reporting no fees."""
    s = spec({"PF_XBTUSD": walk(120, seed=5)}, take_profit_r="1.5")
    result = run(s, venue=lambda sim, replays, timeframe: _LogUnreadable(sim, replays, timeframe))
    assert result.problems == ["the account log could not be read to its end: fees and funding incomplete"]
    assert run(s).problems == []
