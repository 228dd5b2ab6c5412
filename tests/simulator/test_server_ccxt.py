"""The HTTP server driven by the real ccxt `krakenfutures` client over 127.0.0.1."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from urllib.request import urlopen

import ccxt
import pytest

from lifecycle.clock import to_ms
from simulator.engine import Simulator
from simulator.server import SimulatorServer
from tests.simulator.conftest import make_client, make_sim, signed

BTC = "BTC/USD:USD"
XBT = "PF_XBTUSD"


def test_load_markets_maps_ids_to_unified_symbols(ex: Any, sim: Simulator) -> None:
    markets = ex.markets
    assert markets[BTC]["id"] == XBT
    assert {m["id"] for m in markets.values()} == set(sim.instruments)
    for market in markets.values():
        spec = sim.instruments[market["id"]]
        assert market["swap"] and market["linear"] and market["settle"] == "USD"
        assert Decimal(str(market["precision"]["price"])) == spec.tick_size
        assert Decimal(str(market["precision"]["amount"])) == spec.size_increment


def test_fetch_tickers_and_ticker(ex: Any, sim: Simulator) -> None:
    tickers = ex.fetch_tickers()
    assert set(tickers) == set(ex.markets)
    q = sim.quote(XBT)
    t = ex.fetch_ticker(BTC)
    assert (t["bid"], t["ask"], t["last"], t["markPrice"]) == (float(q.bid), float(q.ask), float(q.last), float(q.mark))
    with pytest.raises(ccxt.BadSymbol):
        ex.publicGetTickersSymbol({"symbol": "PF_NOPEUSD"})


def test_fetch_ohlcv_trade_and_mark(ex: Any, sim: Simulator) -> None:
    sim.advance(600)
    since = to_ms(sim.now()) - 20 * 60_000
    candles = ex.fetch_ohlcv(BTC, "1m", since=since, limit=10)
    assert len(candles) == 10 and candles[0][0] == since
    want = sim.candles.candles(XBT, "trade", "1m", since // 1000)[:10]
    assert [c[4] for c in candles] == [float(b.close) for b in want]
    marks = ex.fetch_ohlcv(BTC, "5m", since=since, params={"price": "mark"})
    assert marks and all(c[0] % 300_000 == 0 for c in marks)


def test_fetch_order_book(ex: Any, sim: Simulator) -> None:
    book = ex.fetch_order_book(BTC)
    q = sim.quote(XBT)
    assert book["bids"][0][0] == float(q.bid) and book["asks"][0][0] == float(q.ask)


def test_fetch_balance_reads_the_flex_account(ex: Any, sim: Simulator) -> None:
    bal = ex.fetch_balance()
    assert bal["USD"]["total"] == float(sim.config.starting_usd)
    flex = bal["info"]["accounts"]["flex"]
    assert flex["availableMargin"] == float(sim.account().available_margin)
    ex.create_order(BTC, "market", "buy", 0.1)
    flex = ex.fetch_balance()["info"]["accounts"]["flex"]
    acct = sim.account()
    assert flex["initialMargin"] == pytest.approx(float(acct.initial_margin))
    assert flex["marginEquity"] == pytest.approx(float(acct.margin_equity))
    assert flex["portfolioValue"] == pytest.approx(float(acct.portfolio_value))


def test_market_order_and_positions(ex: Any, sim: Simulator) -> None:
    q = sim.quote(XBT)
    order = ex.create_order(BTC, "market", "buy", 0.01)
    assert order["status"] == "closed" and order["filled"] == 0.01 and order["average"] == float(q.ask)
    [pos] = ex.fetch_positions()
    assert (pos["symbol"], pos["side"], pos["contracts"], pos["entryPrice"]) == (BTC, "long", 0.01, float(q.ask))
    assert [o.order_id for o in sim.order_log] == [order["id"]]


def test_large_market_order_reports_several_executions(ex: Any, sim: Simulator) -> None:
    level = sim.quote(XBT).level_size
    order = ex.create_order(BTC, "market", "buy", float(level * 2 + Decimal("0.001")))
    assert order["status"] == "closed" and len(order["trades"]) == 3


def test_limit_order_with_client_id_and_duplicate(ex: Any, sim: Simulator) -> None:
    price = float(sim.quote(XBT).bid - 500)
    order = ex.create_order(BTC, "limit", "buy", 0.0123456, price, {"clientOrderId": "bot-1"})
    assert order["status"] == "open" and order["amount"] == 0.0123 and order["clientOrderId"] == "bot-1"
    with pytest.raises(ccxt.DuplicateOrderId):
        ex.create_order(BTC, "limit", "buy", 0.01, price, {"clientOrderId": "bot-1"})
    [open_order] = ex.fetch_open_orders()
    assert open_order["id"] == order["id"] and open_order["info"]["limitPrice"] == price
    fetched = ex.fetch_order(order["id"])
    assert fetched["status"] == "open" and fetched["clientOrderId"] == "bot-1"


def test_stop_and_take_profit_orders(ex: Any, sim: Simulator) -> None:
    ex.create_order(BTC, "market", "buy", 0.02)
    mark = float(sim.quote(XBT).mark)
    stop = ex.create_order(BTC, "market", "sell", 0.02, None, {"stopLossPrice": mark - 1000, "triggerSignal": "mark"})
    tp = ex.create_order(BTC, "market", "sell", 0.02, None, {"takeProfitPrice": mark + 1000})
    assert stop["status"] == "open" and stop["triggerPrice"] == mark - 1000 and stop["reduceOnly"] is True
    assert tp["triggerPrice"] == mark + 1000
    types = sorted(o["type"] for o in ex.fetch_open_orders())
    assert types == ["stop", "take_profit"]
    assert ex.fetch_order(stop["id"])["triggerPrice"] == mark - 1000
    sim.set_mark(XBT, Decimal(str(mark)) - 1500)
    assert ex.fetch_positions() == []
    closed = ex.fetch_closed_orders(params={"trigger": True})
    assert stop["id"] in {o["id"] for o in closed}


def test_reduce_only_that_would_not_reduce_raises(ex: Any) -> None:
    with pytest.raises(ccxt.ExchangeError, match="wouldNotReducePosition"):
        ex.create_order(BTC, "market", "sell", 0.01, None, {"reduceOnly": True})


def test_insufficient_funds_raises(ex: Any) -> None:
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order(BTC, "market", "buy", 1000)


def test_filled_order_vanishes_from_fetch_order_after_five_seconds(ex: Any, sim: Simulator) -> None:
    order = ex.create_order(BTC, "market", "buy", 0.01)
    assert ex.fetch_order(order["id"])["status"] == "closed"
    sim.advance(6)
    with pytest.raises(ccxt.OrderNotFound):
        ex.fetch_order(order["id"])
    assert ex.fetch_open_orders() == []
    closed = ex.fetch_closed_orders()
    assert order["id"] in {o["id"] for o in closed}


def test_orders_status_by_post_too(server: SimulatorServer, secret: str, ex: Any, sim: Simulator) -> None:
    order = ex.create_order(BTC, "limit", "buy", 0.01, float(sim.quote(XBT).bid - 500))
    ex.create_order(BTC, "limit", "buy", 0.01, float(sim.quote(XBT).bid - 600))
    status, body = signed(server, secret, "POST", "/derivatives/api/v3/orders/status", body=f"orderIds={order['id']}")
    assert status == 200
    assert [o["order"]["orderId"] for o in json.loads(body)["orders"]] == [order["id"]]


def test_cancel_and_edit_order(ex: Any, sim: Simulator) -> None:
    price = float(sim.quote(XBT).bid - 500)
    order = ex.create_order(BTC, "limit", "buy", 0.01, price)
    edited = ex.edit_order(order["id"], BTC, "limit", "buy", 0.02, price - 100)
    assert edited["amount"] == 0.02 and edited["status"] == "open"
    with pytest.raises(ccxt.InvalidOrder):
        ex.edit_order(order["id"], BTC, "limit", "buy", 0.02, price - 100.5)  # not on the tick
    assert ex.cancel_order(order["id"])["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):
        ex.cancel_order(order["id"])
    with pytest.raises(ccxt.OrderNotFound):
        ex.edit_order(order["id"], BTC, "limit", "buy", 0.03, price)
    canceled = ex.fetch_canceled_orders()
    assert order["id"] in {o["id"] for o in canceled if o["status"] == "canceled"}


def test_fetch_my_trades_pages_with_last_fill_time(ex: Any, sim: Simulator) -> None:
    for _ in range(105):
        ex.create_order(BTC, "market", "buy", 0.0001)
        sim.advance(1)
    first = ex.fetch_my_trades()
    assert len(first) == 100
    times = [t["timestamp"] for t in first]
    assert times == sorted(times)  # ccxt sorts ascending; the venue sent newest first
    older = ex.fetch_my_trades(params={"lastFillTime": first[0]["datetime"]})
    ids = {t["id"] for t in first} | {t["id"] for t in older}
    assert len(ids) == 105 == len(sim.all_fills())
    assert ids == {f.fill_id for f in sim.all_fills()}


def test_batch_orders_and_cancels(ex: Any, sim: Simulator) -> None:
    bid = float(sim.quote(XBT).bid)
    results = ex.create_orders(
        [
            {"symbol": BTC, "type": "limit", "side": "buy", "amount": 0.01, "price": bid - 500,
             "params": {"clientOrderId": "a b+c&d"}},
            {"symbol": BTC, "type": "market", "side": "buy", "amount": 1000},
        ]
    )  # fmt: skip
    statuses = sorted(str(r["status"]) for r in results)
    assert statuses == ["open", "rejected"]
    [placed] = [r for r in results if r["status"] == "open"]
    assert placed["clientOrderId"] == "a b+c&d"
    canceled = ex.cancel_orders([placed["id"]])
    assert canceled[0]["status"] == "canceled" and sim.open_orders() == []


def test_cancel_all_and_dead_man_switch(ex: Any, sim: Simulator) -> None:
    bid = float(sim.quote(XBT).bid)
    for i in range(3):
        ex.create_order(BTC, "limit", "buy", 0.01, bid - 500 - i)
    assert len(ex.cancel_all_orders(BTC)) == 3 and sim.open_orders() == []
    ex.create_order(BTC, "limit", "buy", 0.01, bid - 500)
    ex.cancel_all_orders_after(10_000)
    sim.advance(11)
    assert ex.fetch_open_orders() == []


def test_leverage_preferences(ex: Any, sim: Simulator) -> None:
    ex.set_leverage(5, BTC)
    assert ex.fetch_leverage(BTC)["longLeverage"] == 5
    ex.create_order(BTC, "market", "buy", 0.01)
    [pos] = ex.fetch_positions()
    assert pos["leverage"] == 5 and pos["marginMode"] == "isolated"


def test_public_trades_history(ex: Any) -> None:
    order = ex.create_order(BTC, "market", "sell", 0.01)
    [trade] = ex.fetch_trades(BTC)
    assert trade["side"] == "sell" and trade["amount"] == 0.01 and trade["id"] == order["trades"][0]["id"]


def test_history_v3_is_served_as_well_as_v2(ex: Any) -> None:
    ex.create_order(BTC, "market", "buy", 0.01)
    v2 = ex.historyGetOrders()
    v3 = ex.historyGetOrders({"version": "v3"})
    assert v2["elements"] == v3["elements"] and len(v2["elements"]) == 2  # placed + full_fill


def test_unknown_path_is_404_and_unknown_contract_is_kraken_error(server: SimulatorServer, ex: Any) -> None:
    with pytest.raises(Exception) as info:
        urlopen(server.base_url + "/derivatives/api/v3/nope", timeout=3)  # noqa: S310 - loopback only
    assert getattr(info.value, "code", None) == 404
    with pytest.raises(ccxt.BadSymbol):
        ex.privatePostSendorder({"symbol": "PF_NOPEUSD", "side": "buy", "size": "1", "orderType": "mkt"})
    with pytest.raises(ccxt.BadRequest):
        ex.privatePostSendorder({"symbol": XBT, "side": "buy"})  # requiredArgumentMissing


def test_request_log_records_every_call(ex: Any, sim: Simulator) -> None:
    ex.fetch_balance()
    ex.create_order(BTC, "market", "buy", 0.01)
    paths = [(r.method, r.path, r.status) for r in sim.request_log]
    assert paths[-2:] == [
        ("GET", "/derivatives/api/v3/accounts", 200),
        ("POST", "/derivatives/api/v3/sendorder", 200),
    ]
    assert "size=0.01" in sim.request_log[-1].query


def test_request_log_can_be_bounded(secret: str) -> None:
    sim = make_sim(request_log_limit=5)
    with SimulatorServer(sim, api_key="sim-key", api_secret=secret) as srv:
        client = make_client(srv, secret)
        for _ in range(12):
            client.fetch_balance()
    assert 5 <= len(sim.request_log) <= 10
    assert all(r.path.endswith("/accounts") for r in sim.request_log)
