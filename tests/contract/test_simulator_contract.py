"""The simulator against Kraken's published schemas: every response shape it serves, through the real ccxt client
over HTTP (and raw signed requests where ccxt would hide the envelope), validated by tests/contract/schemas.py.

A populated account first (positions, a resting limit partly filled, a stop and a take-profit, an edited stop,
a cancelled order, a rejection, an hour of funding), so every list holds every kind of element."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from lifecycle.clock import FakeClock
from simulator.engine import SimConfig, Simulator
from simulator.server import SimulatorServer
from tests.contract import schemas as S
from tests.contract.checks import READ_CHECKS, Check, problems
from tests.simulator.conftest import API_KEY, make_client, signed

XBT = "PF_XBTUSD"
BTC = "BTC/USD:USD"


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[Simulator, SimulatorServer, Any, str]]:
    import base64
    import os

    secret = base64.b64encode(os.urandom(64)).decode()
    config = SimConfig(seed=21, history_minutes=2100, history_step_seconds=60)  # > 2000 one-minute candles
    sim = Simulator(config, clock=FakeClock(datetime(2026, 3, 2, 12, 59, tzinfo=UTC)))
    with SimulatorServer(sim, api_key=API_KEY, api_secret=secret) as server:
        ex = make_client(server, secret)
        ex.load_markets()
        quote = sim.quote(XBT)
        ex.create_order(BTC, "market", "buy", 0.05, None, {"clientOrderId": "entry"})
        stop = ex.create_order(
            BTC,
            "market",
            "sell",
            0.05,
            None,
            {"stopLossPrice": float(quote.mark - 2000), "reduceOnly": True, "clientOrderId": "sl"},
        )
        ex.create_order(
            BTC,
            "market",
            "sell",
            0.05,
            None,
            {"takeProfitPrice": float(quote.mark + 2000), "reduceOnly": True, "clientOrderId": "tp"},
        )
        ex.edit_order(stop["id"], BTC, "market", "sell", None, None,
                      {"stopPrice": float(quote.mark - 1900)})  # fmt: skip
        size = float(quote.level_size + Decimal("0.1"))
        ex.create_order(BTC, "limit", "buy", size, float(quote.bid - 50), {"clientOrderId": "part"})
        sim.set_prices(XBT, last=quote.bid - 300)  # one book level of the limit fills
        sim.set_prices(XBT, last=quote.last)
        gone = ex.create_order(BTC, "limit", "buy", 0.01, float(quote.bid - 3000), {"clientOrderId": "gone"})
        ex.cancel_order(gone["id"])
        with pytest.raises(ccxt.InsufficientFunds):
            ex.create_order(BTC, "market", "buy", 500, None, {"clientOrderId": "too-big"})
        sim.advance(90)  # across 13:00: funding
        yield sim, server, ex, secret


@pytest.mark.parametrize("check", READ_CHECKS, ids=lambda c: c.name)
def test_read_endpoints_match_the_spec(world: tuple[Simulator, SimulatorServer, Any, str], check: Check) -> None:
    _, _, ex, _ = world
    payload = check.call(ex)
    assert problems(check.model, payload) == []


def test_the_lists_hold_every_kind_of_element(world: tuple[Simulator, SimulatorServer, Any, str]) -> None:
    _, _, ex, _ = world
    kinds = {o["orderType"] for o in ex.privateGetOpenorders()["openOrders"]}
    assert kinds == {"lmt", "stop", "take_profit"}
    orders = {k for e in ex.historyGetOrders({"count": 1000})["elements"] for k in e["event"]}
    assert orders == {"OrderPlaced", "OrderUpdated", "OrderRejected", "OrderCancelled"}
    triggers = {k for e in ex.historyGetTriggers({"count": 1000})["elements"] for k in e["event"]}
    assert triggers == {"OrderTriggerPlaced", "OrderTriggerUpdated"}
    infos = {e["info"] for e in ex.historyGetAccountLog()["logs"]}
    assert infos == {"futures trade", "funding rate change"}


def test_order_answers_match_the_spec(world: tuple[Simulator, SimulatorServer, Any, str]) -> None:
    sim, _, ex, _ = world
    quote = sim.quote(XBT)
    sent = ex.privatePostSendorder({"orderType": "lmt", "symbol": XBT, "side": "buy", "size": 0.01,
                                    "limitPrice": float(quote.bid - 4000), "cliOrdId": "contract-1"})  # fmt: skip
    assert problems(S.SendOrderResponse, sent) == []
    refused = ex.privatePostSendorder({"orderType": "lmt", "symbol": XBT, "side": "buy", "size": 0.01,
                                       "limitPrice": float(quote.bid - 4000), "cliOrdId": "x" * 101})  # fmt: skip
    assert problems(S.SendOrderResponse, refused) == [] and refused["sendStatus"]["status"] == "clientOrderIdTooBig"
    oid = sent["sendStatus"]["order_id"]
    edited = ex.privatePostEditorder({"orderId": oid, "size": 0.02, "qtyMode": "ABSOLUTE"})
    assert problems(S.EditOrderResponse, edited) == []
    cancelled = ex.privatePostCancelorder({"order_id": oid})
    assert problems(S.CancelOrderResponse, cancelled) == []
    again = ex.privatePostCancelorder({"order_id": oid})
    assert problems(S.CancelOrderResponse, again) == [] and again["cancelStatus"]["status"] == "notFound"
    market = ex.privatePostSendorder({"orderType": "mkt", "symbol": XBT, "side": "buy", "size": 0.01})
    assert problems(S.SendOrderResponse, market) == [] and market["sendStatus"]["status"] == "placed"
    stop = ex.privatePostSendorder({"orderType": "stp", "symbol": XBT, "side": "sell", "size": 0.01,
                                    "stopPrice": float(quote.mark - 3000), "reduceOnly": "true"})  # fmt: skip
    assert problems(S.SendOrderResponse, stop) == []
    sid = stop["sendStatus"]["order_id"]
    moved = ex.privatePostEditorder({"orderId": sid, "stopPrice": float(quote.mark - 2900)})
    assert problems(S.EditOrderResponse, moved) == [] and moved["editStatus"]["status"] == "edited"
    gone = ex.privatePostCancelorder({"order_id": sid})
    assert problems(S.CancelOrderResponse, gone) == []


def test_error_envelopes_match_the_spec(world: tuple[Simulator, SimulatorServer, Any, str]) -> None:
    _, server, _, secret = world
    status, body = signed(server, secret, "POST", "/derivatives/api/v3/sendorder", "symbol=PF_XBTUSD")
    assert status == 200 and problems(S.ErrorResponse, json.loads(body)) == []
    status, body = signed(server, secret, "GET", "/derivatives/api/v3/tickers/PF_NOPEUSD")
    # the spec: an unknown symbol on tickers/{symbol} is HTTP 404 with an error body
    assert status == 404 and problems(S.ErrorResponse, json.loads(body)) == []


def test_candles_capped_say_more_candles(world: tuple[Simulator, SimulatorServer, Any, str]) -> None:
    sim, _, ex, _ = world
    now_s = int(sim.now().timestamp())
    wide = ex.chartsGetPriceTypeSymbolInterval(
        {"price_type": "trade", "symbol": XBT, "interval": "1m", "from": now_s - 5 * 86400, "to": now_s}
    )
    assert problems(S.CandlesResponse, wide) == []
    assert wide["more_candles"] is True and len(wide["candles"]) == 2000
    narrow = ex.chartsGetPriceTypeSymbolInterval(
        {"price_type": "trade", "symbol": XBT, "interval": "1m", "from": now_s - 600, "to": now_s}
    )
    assert narrow["more_candles"] is False


def test_over_budget_answers_match_the_spec(world: tuple[Simulator, SimulatorServer, Any, str]) -> None:
    sim, server, ex, secret = world
    level = sim.budget.buckets
    from simulator.ratelimit import Bucket

    level[Bucket.DERIVATIVES].level = 0.0
    level[Bucket.HISTORY].level = 0.0
    with pytest.raises(ccxt.RateLimitExceeded):
        ex.privateGetAccounts()
    status, body = signed(server, secret, "GET", "/derivatives/api/v3/accounts")
    assert status == 200 and problems(S.ErrorResponse, json.loads(body)) == []
    assert json.loads(body)["error"] == "apiLimitExceeded"
    status, body = signed(server, secret, "GET", "/api/history/v3/account-log")
    assert status == 429 and body == b"Rate limited."  # the spec's RateLimited: text/plain
    level[Bucket.DERIVATIVES].level = float(sim.config.rate_limits.derivatives_units)
    level[Bucket.HISTORY].level = float(sim.config.rate_limits.history_tokens)


# last in the module: it cancels the shared account's XBT orders
def test_batch_cancel_all_dead_man_and_leverage_answers_match_the_spec(
    world: tuple[Simulator, SimulatorServer, Any, str],
) -> None:
    sim, _, ex, _ = world
    quote = sim.quote(XBT)
    batch = ex.privatePostBatchorder(
        {
            "batchOrder": [
                {"order": "send", "order_tag": "1", "orderType": "lmt", "symbol": XBT, "side": "buy", "size": 0.01,
                 "limitPrice": float(quote.bid - 5000), "cliOrdId": "batch-1"},
                {"order": "send", "order_tag": "2", "orderType": "stp", "symbol": XBT, "side": "sell", "size": 0.01,
                 "stopPrice": float(quote.mark - 5000), "cliOrdId": "batch-2"},
            ]
        }
    )  # fmt: skip
    assert problems(S.BatchOrderResponse, batch) == []
    placed = [r["order_id"] for r in batch["batchStatus"]]
    cancel = ex.privatePostBatchorder({"batchOrder": [{"order": "cancel", "order_id": placed[0]}]})
    assert problems(S.BatchOrderResponse, cancel) == [] and cancel["batchStatus"][0]["status"] == "cancelled"
    everything = ex.privatePostCancelallorders({"symbol": XBT})
    assert problems(S.CancelAllOrdersResponse, everything) == []
    assert everything["cancelStatus"]["status"] == "cancelled"
    kinds = {"order" if "order" in e else "orderTrigger" for e in everything["cancelStatus"]["orderEvents"]}
    assert kinds == {"order", "orderTrigger"}  # a resting limit and stops were among them
    nothing = ex.privatePostCancelallorders({"symbol": XBT})
    assert problems(S.CancelAllOrdersResponse, nothing) == []
    assert nothing["cancelStatus"]["status"] == "noOrdersToCancel"
    switch = ex.privatePostCancelallordersafter({"timeout": 60})
    assert problems(S.DeadManSwitchResponse, switch) == []
    ex.privatePostCancelallordersafter({"timeout": 0})
    ex.privatePutLeveragepreferences({"symbol": XBT, "maxLeverage": 10})
    prefs = ex.privateGetLeveragepreferences()
    assert problems(S.LeveragePreferencesResponse, prefs) == [] and prefs["leveragePreferences"]
