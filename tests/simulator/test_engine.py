"""Engine unit tests: matching, triggers, reduce-only, netting, margin, partial fills, determinism."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifecycle.clock import from_ms
from simulator import prices
from simulator.engine import Simulator, SimulatorError
from simulator.faults import FaultKind
from simulator.models import HistoryKind, OrderState
from simulator.prices import RandomWalk, Regime, ReplayCandle
from tests.simulator.conftest import START, make_sim

XBT = "PF_XBTUSD"
D = Decimal


def market(sim: Simulator, side: str, size: str, symbol: str = XBT, **kw: object) -> object:
    return sim.place_order(symbol=symbol, side=side, order_type="mkt", size=D(size), **kw)  # type: ignore[arg-type]


def test_instruments_have_kraken_precision_fields(sim: Simulator) -> None:
    assert len(sim.instruments) >= 6
    assert {"PF_XBTUSD", "PF_ETHUSD", "PF_SOLUSD"} <= set(sim.instruments)
    for symbol, spec in sim.instruments.items():
        assert symbol.startswith("PF_") and symbol.endswith("USD")
        q = sim.quote(symbol)
        assert spec.is_on_tick(q.mark) and spec.is_on_tick(q.bid) and spec.is_on_tick(q.ask)
        assert q.bid < q.ask


def test_market_buy_fills_at_ask_and_opens_long(sim: Simulator) -> None:
    q = sim.quote(XBT)
    out = sim.place_order(symbol=XBT, side="buy", order_type="mkt", size=D("0.01"))
    assert out.status == "placed" and out.order is not None
    assert out.order.state is OrderState.FILLED
    assert [f.price for f in out.fills] == [q.ask]
    [pos] = sim.positions()
    assert pos.size == D("0.01") and pos.entry_price == q.ask
    assert sim.open_orders() == []


def test_large_market_order_walks_levels_in_several_executions(sim: Simulator) -> None:
    q = sim.quote(XBT)
    size = q.level_size * 2 + D("0.0005")
    out = sim.place_order(symbol=XBT, side="buy", order_type="mkt", size=size)
    assert len(out.fills) == 3
    assert [f.size for f in out.fills] == [q.level_size, q.level_size, D("0.0005")]
    prices = [f.price for f in out.fills]
    assert prices == sorted(prices) and prices[0] == q.ask and prices[2] > prices[0]  # slippage
    assert len({f.fill_id for f in out.fills}) == 3
    assert sum(f.size for f in out.fills) == size


def test_market_protection_cancels_what_lies_beyond_one_percent() -> None:
    sim = make_sim(level_notional_usd=D(1000))  # thin book: each level holds ~1000 USD
    q = sim.quote(XBT)
    out = sim.place_order(symbol=XBT, side="buy", order_type="mkt", size=D(5))
    assert out.order is not None and out.order.state is OrderState.CANCELLED
    limit = sim.protected_price(XBT, "buy")
    assert all(q.ask <= f.price <= limit for f in out.fills)
    assert D(0) < out.order.filled < D(5)


def test_a_thinned_book_fills_a_market_order_and_a_triggered_stop_partly_until_restored(sim: Simulator) -> None:
    # set_depth (DST's thin-book event): 3 levels of 0.0002 hold 0.0006; the rest of an IOC is cancelled, a market
    # stop that triggers fills the same part, and the configured depth comes back with None.
    sim.set_depth(XBT, D("0.0002"), 3)
    assert sim.quote(XBT).level_size == D("0.0002")
    entry = market(sim, "buy", "0.0010")
    assert entry.order is not None and entry.order.state is OrderState.CANCELLED  # type: ignore[attr-defined]
    assert entry.order.filled == D("0.0006")  # type: ignore[attr-defined]
    assert [f.size for f in entry.fills] == [D("0.0002")] * 3  # type: ignore[attr-defined]
    [pos] = sim.positions()
    assert pos.size == D("0.0006")
    stop = sim.place_order(symbol=XBT, side="sell", order_type="stp", size=D("0.0006"),
                           stop_price=sim.instruments[XBT].round_price(sim.quote(XBT).mark * D("0.99")),
                           reduce_only=True)  # fmt: skip
    assert stop.order is not None
    sim.set_depth(XBT, D("0.0001"), 1)
    sim.set_mark(XBT, sim.quote(XBT).mark * D("0.95"))
    [pos] = sim.positions()
    assert pos.size == D("0.0005")  # one level of 0.0001 taken; the rest of the triggered stop cancelled
    assert sim.open_orders() == []
    sim.set_depth(XBT, None)
    assert sim.quote(XBT).level_size > D("0.0001")
    exit_ = market(sim, "sell", "0.0005", reduce_only=True)
    assert exit_.order is not None and exit_.order.state is OrderState.FILLED  # type: ignore[attr-defined]
    assert sim.positions() == []


def test_limit_order_rests_then_fills_as_maker_when_price_crosses(sim: Simulator) -> None:
    q = sim.quote(XBT)
    limit = q.bid - 500
    out = sim.place_order(symbol=XBT, side="buy", order_type="lmt", size=D("0.01"), limit_price=limit)
    assert out.order is not None and out.order.state is OrderState.OPEN and out.fills == ()
    sim.set_mark(XBT, limit - 100)
    [fill] = sim.all_fills()
    assert fill.price == limit and fill.fill_type == "maker"
    assert sim.open_orders() == []


def test_resting_limit_larger_than_a_level_fills_partially_over_steps(sim: Simulator) -> None:
    q = sim.quote(XBT)
    size = q.level_size * 2
    out = sim.place_order(symbol=XBT, side="buy", order_type="lmt", size=size, limit_price=q.bid - 300)
    assert out.order is not None
    sim.set_mark(XBT, q.bid - 1000)
    [open_order] = sim.open_orders()
    assert open_order.filled == sim.quote(XBT).level_size < size  # one level's worth per step
    sim.advance(5)  # later steps take more while the price stays through the limit
    assert sum(f.size for f in sim.all_fills()) == size
    assert len(sim.all_fills()) >= 2


def test_crossing_limit_executes_immediately_as_taker(sim: Simulator) -> None:
    q = sim.quote(XBT)
    out = sim.place_order(symbol=XBT, side="sell", order_type="lmt", size=D("0.02"), limit_price=q.bid - 50)
    assert out.order is not None and out.order.state is OrderState.FILLED
    assert all(f.fill_type == "taker" and f.price >= q.bid - 50 for f in out.fills)


def test_post_only_that_would_cross_is_rejected(sim: Simulator) -> None:
    q = sim.quote(XBT)
    out = sim.place_order(symbol=XBT, side="buy", order_type="post", size=D("0.01"), limit_price=q.ask + 10)
    assert out.status == "postWouldExecute" and not out.accepted
    assert sim.order_log == []


def test_ioc_that_cannot_fill_is_rejected(sim: Simulator) -> None:
    q = sim.quote(XBT)
    out = sim.place_order(symbol=XBT, side="buy", order_type="ioc", size=D("0.01"), limit_price=q.bid - 100)
    assert out.status == "iocWouldNotExecute"


@pytest.mark.parametrize("signal", ["mark", "last", "index"])
def test_stop_triggers_only_on_its_own_signal(signal: str) -> None:
    sim = make_sim()
    market(sim, "buy", "0.01")
    mark = sim.quote(XBT).mark
    stop = mark - 1000
    out = sim.place_order(
        symbol=XBT, side="sell", order_type="stp", size=D("0.01"), stop_price=stop, trigger_signal=signal,
        reduce_only=True,
    )  # fmt: skip
    assert out.order is not None and out.order.state is OrderState.OPEN
    other = "mark" if signal == "last" else "last"
    # Move only the other signal through the stop: nothing happens.
    sim.set_prices(XBT, **{other: stop - 50})
    assert len(sim.open_orders()) == 1
    sim.set_prices(XBT, **{signal: stop - 50})
    assert sim.open_orders() == []
    assert sim.positions() == []
    kinds = [e.kind for e in sim.history()]
    assert HistoryKind.TRIGGER_PLACED in kinds and HistoryKind.TRIGGER_ACTIVATED in kinds


def test_take_profit_triggers_from_the_favourable_side(sim: Simulator) -> None:
    market(sim, "buy", "0.01")
    mark = sim.quote(XBT).mark
    sim.place_order(
        symbol=XBT, side="sell", order_type="take_profit", size=D("0.01"), stop_price=mark + 1000,
        trigger_signal="mark", reduce_only=True,
    )  # fmt: skip
    sim.set_mark(XBT, mark - 2000)
    assert len(sim.open_orders()) == 1  # a fall does not take profit
    sim.set_mark(XBT, mark + 1500)
    assert sim.open_orders() == [] and sim.positions() == []


def test_stop_limit_rests_as_a_limit_after_triggering(sim: Simulator) -> None:
    market(sim, "buy", "0.01")
    mark = sim.quote(XBT).mark
    sim.place_order(
        symbol=XBT, side="sell", order_type="stp", size=D("0.01"), stop_price=mark - 1000,
        limit_price=mark - 900, trigger_signal="mark", reduce_only=True,
    )  # fmt: skip
    sim.set_mark(XBT, mark - 1200)  # gaps below the stop-limit's limit: triggers, cannot fill, rests
    [order] = sim.open_orders()
    assert order.triggered and order.order_type == "lmt" and order.filled == 0


def test_reduce_only_rejected_without_a_position_and_shrunk_to_it(sim: Simulator) -> None:
    out = market(sim, "sell", "0.01", reduce_only=True)
    assert out.status == "wouldNotReducePosition"  # type: ignore[attr-defined]
    market(sim, "buy", "0.01")
    out = market(sim, "buy", "0.01", reduce_only=True)
    assert out.status == "wouldNotReducePosition"  # type: ignore[attr-defined]
    out = market(sim, "sell", "0.05", reduce_only=True)
    assert out.status == "placed" and out.reduced_quantity == D("0.04")  # type: ignore[attr-defined]
    assert sim.positions() == []


def test_reduce_only_stop_without_position_is_cancelled_when_it_triggers(sim: Simulator) -> None:
    mark = sim.quote(XBT).mark
    sim.place_order(
        symbol=XBT, side="sell", order_type="stp", size=D("0.01"), stop_price=mark - 500,
        trigger_signal="mark", reduce_only=True,
    )  # fmt: skip
    sim.set_mark(XBT, mark - 600)
    assert sim.open_orders() == [] and sim.positions() == [] and sim.all_fills() == []


def test_netting_one_position_per_symbol_with_flip_and_realised_pnl(sim: Simulator) -> None:
    spec = sim.instruments[XBT]
    market(sim, "buy", "0.02")
    first = sim.all_fills()[0].price
    sim.set_mark(XBT, first + 1000)
    market(sim, "sell", "0.05")
    [pos] = sim.positions()
    assert pos.size == D("-0.03")
    close_price = sim.all_fills()[-1].price
    assert pos.entry_price == close_price  # the flipped remainder opened at the fill price
    fees = sum(f.size * f.price * sim.config.taker_fee for f in sim.all_fills())
    realised = D("0.02") * (close_price - first) * spec.contract_size
    assert sim.balance == sim.config.starting_usd + realised - fees


def test_average_entry_when_adding_to_a_position(sim: Simulator) -> None:
    market(sim, "buy", "0.01")
    sim.set_mark(XBT, sim.quote(XBT).mark + 2000)
    market(sim, "buy", "0.03")
    a, b = sim.all_fills()
    [pos] = sim.positions()
    assert pos.entry_price == (a.size * a.price + b.size * b.price) / (a.size + b.size)


def test_margin_accounting_follows_krakens_flex_definitions(sim: Simulator) -> None:
    market(sim, "buy", "0.1")
    q = sim.quote(XBT)
    sim.place_order(symbol="PF_ETHUSD", side="buy", order_type="lmt", size=D("1"), limit_price=D(1000))
    acct = sim.account()
    [pos] = sim.positions()
    spec = sim.instruments[XBT]
    eth = sim.instruments["PF_ETHUSD"]
    assert acct.pnl == pos.size * (q.mark - pos.entry_price)
    assert acct.initial_margin == pos.size * q.mark * spec.initial_margin
    assert acct.maintenance_margin == pos.size * q.mark * spec.maintenance_margin
    assert acct.initial_margin_with_orders == acct.initial_margin + D(1000) * eth.initial_margin
    assert acct.portfolio_value == acct.balance_value + acct.pnl
    assert acct.margin_equity == acct.collateral_value + acct.total_unrealized
    assert acct.available_margin == acct.margin_equity - acct.initial_margin_with_orders


def test_leverage_preference_raises_initial_margin(sim: Simulator) -> None:
    market(sim, "buy", "0.1")
    before = sim.account().initial_margin
    sim.set_leverage(XBT, D(5))
    assert sim.account().initial_margin == before * 10  # 1/5 instead of 1/50
    with pytest.raises(SimulatorError):
        sim.set_leverage(XBT, D(500))


def test_insufficient_funds_is_rejected_with_krakens_status(sim: Simulator) -> None:
    out = market(sim, "buy", "100")
    assert out.status == "insufficientAvailableFunds"  # type: ignore[attr-defined]
    assert sim.positions() == [] and sim.order_log == []


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"size": D("0.00001")}, "invalidSize"),
        ({"size": D(0)}, "invalidSize"),
        ({"order_type": "lmt", "limit_price": D("60000.5")}, "invalidPrice"),
        ({"order_type": "fok"}, "invalidOrderType"),
        ({"side": "up"}, "invalidSide"),
        ({"cli_ord_id": "x" * 101}, "clientOrderIdTooBig"),
    ],
)
def test_invalid_orders_get_krakens_status_strings(sim: Simulator, kwargs: dict[str, object], status: str) -> None:
    args: dict[str, object] = {"symbol": XBT, "side": "buy", "order_type": "mkt", "size": D("0.01")}
    args.update(kwargs)
    out = sim.place_order(**args)  # type: ignore[arg-type]
    assert out.status == status and not out.accepted
    assert [e.kind for e in sim.history()] == [HistoryKind.ORDER_REJECTED]


def test_unknown_contract_and_missing_price_raise_kraken_errors(sim: Simulator) -> None:
    with pytest.raises(SimulatorError) as info:
        sim.place_order(symbol="PF_NOPEUSD", side="buy", order_type="mkt", size=D(1))
    assert info.value.code == "contractNotFound"
    with pytest.raises(SimulatorError) as info:
        sim.place_order(symbol=XBT, side="buy", order_type="lmt", size=D(1))
    assert info.value.code == "requiredArgumentMissing"


def test_suspended_market_rejects(sim: Simulator) -> None:
    sim.suspend(XBT)
    assert market(sim, "buy", "0.01").status == "marketSuspended"  # type: ignore[attr-defined]
    sim.suspend(XBT, False)
    assert market(sim, "buy", "0.01").status == "placed"  # type: ignore[attr-defined]


def test_client_order_id_is_globally_unique(sim: Simulator) -> None:
    """Kraken's spec (trading/public.yml, sendorder `cliOrdId`): "must be globally unique" -- open, filled or
    cancelled. A rejected order never took the id, so it stays free."""
    q = sim.quote(XBT)
    sim.place_order(symbol=XBT, side="buy", order_type="lmt", size=D("0.01"), limit_price=q.bid - 100, cli_ord_id="a")
    dup = sim.place_order(symbol=XBT, side="buy", order_type="lmt", size=D("0.01"), limit_price=q.bid, cli_ord_id="a")
    assert dup.status == "clientOrderIdAlreadyExist"
    filled = market(sim, "buy", "0.01", cli_ord_id="b")
    again = market(sim, "buy", "0.01", cli_ord_id="b")
    assert filled.status == "placed" and again.status == "clientOrderIdAlreadyExist"  # type: ignore[attr-defined]
    cancelled = sim.place_order(
        symbol=XBT, side="buy", order_type="lmt", size=D("0.01"), limit_price=q.bid - 300, cli_ord_id="c"
    )
    assert cancelled.order is not None
    sim.cancel_order(cancelled.order.order_id)
    reused = sim.place_order(
        symbol=XBT, side="buy", order_type="lmt", size=D("0.01"), limit_price=q.bid - 300, cli_ord_id="c"
    )
    assert reused.status == "clientOrderIdAlreadyExist"
    refused = market(sim, "buy", "1000", cli_ord_id="d")
    assert refused.status == "insufficientAvailableFunds"  # type: ignore[attr-defined]
    assert market(sim, "buy", "0.01", cli_ord_id="d").status == "placed"  # type: ignore[attr-defined]
    assert [o.cli_ord_id for o in sim.order_log].count("b") == 1  # a blind re-send cannot double an order


def test_filled_order_leaves_orders_status_after_five_seconds(sim: Simulator) -> None:
    out = market(sim, "buy", "0.01")
    oid = out.order.order_id  # type: ignore[attr-defined]
    assert [o.order_id for o in sim.orders_status([oid])] == [oid]
    sim.advance(4)
    assert len(sim.orders_status([oid])) == 1
    sim.advance(2)
    assert sim.orders_status([oid]) == []


def test_fills_are_newest_first_paged_by_last_fill_time() -> None:
    sim = make_sim(fills_page=5)
    for _ in range(12):
        market(sim, "buy", "0.001")
        sim.advance(1)
    page = sim.fills()
    assert len(page) == 5 and [f.time for f in page] == sorted((f.time for f in page), reverse=True)
    older = sim.fills(page[-1].time)
    assert older[0].fill_id == page[-1].fill_id  # inclusive boundary: page by fill id, not by time alone
    assert older[-1].time < page[-1].time


def test_cancel_edit_and_cancel_statuses(sim: Simulator) -> None:
    q = sim.quote(XBT)
    out = sim.place_order(symbol=XBT, side="buy", order_type="lmt", size=D("0.01"), limit_price=q.bid - 100)
    oid = out.order.order_id  # type: ignore[union-attr]
    status, old, new = sim.edit_order(oid, size=D("0.02"), limit_price=q.bid - 200)
    assert status == "edited" and old is not None and new is not None
    assert (old.size, new.size, new.limit_price) == (D("0.01"), D("0.02"), q.bid - 200)
    assert sim.edit_order(oid, limit_price=D("1.5"))[0] == "invalidPrice"
    assert sim.edit_order(oid, stop_price=D(1))[0] == "orderForEditNotAStop"
    assert sim.cancel_order(oid)[0] == "cancelled"
    assert sim.cancel_order(oid)[0] == "notFound"
    assert sim.edit_order(oid, size=D("0.03"))[0] == "orderForEditNotFound"
    filled = market(sim, "buy", "0.01")
    assert sim.cancel_order(filled.order.order_id)[0] == "filled"  # type: ignore[attr-defined]
    assert sim.cancel_order("nope")[0] == "notFound"


def test_cancel_silently_and_direct_positions(sim: Simulator) -> None:
    mark = sim.quote(XBT).mark
    sim.open_position_direct(XBT, "long", D("0.5"), mark)
    [pos] = sim.positions()
    assert pos.size == D("0.5") and pos.entry_price == mark
    stop = sim.place_order(
        symbol=XBT, side="sell", order_type="stp", size=D("0.5"), stop_price=mark - 1000, reduce_only=True
    )
    assert sim.cancel_silently(stop.order.order_id)  # type: ignore[union-attr]
    assert sim.open_orders() == []
    assert sim.history()[-1].reason == "cancelled_by_admin"
    sim.close_position_direct(XBT)
    assert sim.positions() == []
    assert [o.source for o in sim.order_log] == ["manual", "api", "manual"]


def test_cancel_stop_fault_drops_a_stop_during_advance() -> None:
    sim = make_sim()
    market(sim, "buy", "0.01")
    mark = sim.quote(XBT).mark
    sim.place_order(symbol=XBT, side="sell", order_type="stp", size=D("0.01"), stop_price=mark - 5000, reduce_only=True)
    sim.faults.add(FaultKind.CANCEL_STOP, count=1, probability=0.5)
    sim.advance(30)
    assert sim.open_orders() == []
    assert len(sim.faults.fired) == 1


def test_liquidation_when_equity_falls_below_maintenance() -> None:
    sim = make_sim(starting_usd=D(1000))
    mark = sim.quote(XBT).mark
    market(sim, "buy", "0.7")  # ~45k notional on 1k collateral
    sim.set_mark(XBT, mark - 1500)
    assert sim.positions() == []
    assert sim.all_fills()[-1].fill_type == "liquidation"


def test_dead_man_switch_cancels_all_orders(sim: Simulator) -> None:
    q = sim.quote(XBT)
    sim.place_order(symbol=XBT, side="buy", order_type="lmt", size=D("0.01"), limit_price=q.bid - 1000)
    sim.set_dead_man_switch(10)
    sim.advance(9)
    assert len(sim.open_orders()) == 1
    sim.advance(2)
    assert sim.open_orders() == []


def test_stale_view_serves_an_earlier_state(sim: Simulator) -> None:
    market(sim, "buy", "0.01")
    sim.advance(10)
    market(sim, "buy", "0.01")
    assert sim.view().positions[0].size == D("0.02")
    assert sim.view(lag_seconds=5).positions[0].size == D("0.01")


def test_candles_are_built_from_the_path(sim: Simulator) -> None:
    sim.advance(600)
    bars = sim.candles.candles(XBT, "trade", "1m")
    assert len(bars) >= 30 + 10
    for bar in bars:
        assert bar.low <= min(bar.open, bar.close) and bar.high >= max(bar.open, bar.close)
    five = sim.candles.candles(XBT, "mark", "5m")
    assert all(b.time_ms % 300_000 == 0 for b in five)
    assert five[-1].close == sim.quote(XBT).mark


def run_scenario(seed: int) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    sim = make_sim(seed)
    for i in range(5):
        sim.advance(37)
        market(sim, "buy" if i % 2 else "sell", "0.01", cli_ord_id=f"c{i}")
    sim.advance(120)
    fills: list[tuple[object, ...]] = [(f.fill_id, f.price, f.size, f.time) for f in sim.all_fills()]
    path: list[tuple[object, ...]] = [(b.time_ms, b.close) for b in sim.candles.candles(XBT, "trade", "1m")]
    return fills, path


def test_same_seed_same_history_different_seed_different() -> None:
    assert run_scenario(3) == run_scenario(3)
    assert run_scenario(3) != run_scenario(4)


def test_random_walk_visits_every_regime_and_stays_positive() -> None:
    walk = RandomWalk(random.Random(5), D("0.15"), D("0.003"), regime_seconds=D(300))
    regimes = set()
    for i in range(2000):
        price = walk.step(START + timedelta(seconds=10 * i), D(10))
        regimes.add(walk.regime)
        assert price > 0
    assert regimes == set(Regime)


def test_replay_follows_candles() -> None:
    candles = [
        ReplayCandle(START + timedelta(minutes=i), D(100 + i), D(102 + i), D(99 + i), D(101 + i)) for i in range(10)
    ]
    sim = make_sim(history_minutes=0, replay={"PF_SOLUSD": candles}, last_noise_bps=D(0), index_noise_bps=D(0))
    sim.advance(60 * 10)
    bars = sim.candles.candles("PF_SOLUSD", "mark", "1m")
    for bar, want in zip(bars[1:9], candles[1:9], strict=True):
        assert (bar.high, bar.low) == (want.high, want.low)
        assert abs(bar.open - want.open) <= D(1)


@given(sizes=st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=8), sides=st.randoms())
def test_position_equals_signed_sum_of_fills(sizes: list[int], sides: object) -> None:
    sim = make_sim(history_minutes=0)
    for n in sizes:
        side = "buy" if sides.random() < 0.5 else "sell"  # type: ignore[attr-defined]
        market(sim, side, str(D(n) / 1000))
        sim.advance(3)
    net = sum((f.size if f.side == "buy" else -f.size) for f in sim.all_fills())
    held = sum(p.size for p in sim.positions())
    assert held == net
    assert len({f.fill_id for f in sim.all_fills()}) == len(sim.all_fills())


def test_candle_windows_agree_with_the_full_aggregation() -> None:
    sim = make_sim(history_minutes=600)
    full = sim.candles.candles(XBT, "trade", "15m")
    assert len(full) >= 40
    middle = full[10]
    window = sim.candles.candles(XBT, "trade", "15m", middle.time_ms // 1000 - 7, full[20].time_ms // 1000)
    assert [(b.time_ms, b.open, b.high, b.low, b.close) for b in window] == [
        (b.time_ms, b.open, b.high, b.low, b.close) for b in full[10:21]
    ]
    weekly = sim.candles.candles(XBT, "mark", "1w")
    assert all(from_ms(b.time_ms).weekday() == 0 for b in weekly)  # Kraken's weeks open on Monday


def test_random_walk_steps_by_equal_dts_of_different_digits_as_computed_fresh() -> None:
    """The walks remember each dt's square root; Decimal("1") and Decimal("1.0") are equal and hash alike, but their
    roots carry different exponents into a trending walk's first price. After any walk stepped by one, a walk
    stepping by the other must get the price it gets with the root computed afresh, digit for digit."""
    for first, second in ((D(1), D("1.0")), (D("1.0"), D(1)), (D("0.25"), D("0.250"))):
        prices._sqrt_of.cache_clear()
        RandomWalk(random.Random(1), D(150), D("0.0002")).step(START, first)  # another walk fills the memo
        after_memo = _trending(second)
        prices._sqrt_of.cache_clear()
        assert str(after_memo) == str(_trending(second)), (first, second)


def _trending(dt: Decimal) -> Decimal:
    walk = RandomWalk(random.Random(9), D(65000), D("0.00015"))
    walk.regime = Regime.TREND_UP  # a trend's drift keeps the noise term's exponent in the first price
    return walk.step(START, dt)


def test_a_walk_stepped_by_ever_different_intervals_keeps_no_memory_per_step() -> None:
    # `python -m simulator` advances by the real time elapsed between its ticks, so the last chunk of each advance
    # is a new dt every time. What the walk remembers per dt (its square root, the regime switch probability) must
    # stay bounded: the first version kept every square root ever taken, some hundred bytes a tick, for ever.
    import gc
    import tracemalloc
    from datetime import UTC, datetime

    walk = RandomWalk(random.Random(3), D(40000), D("0.0002"))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(200):
        walk.step(now, D(1) + D(i) / 1000)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(5000):
            walk.step(now, D("0.5") + D(i) / 1_000_000)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 100_000, f"{grown} bytes kept after 5,000 steps of distinct intervals"
