"""One test per injected fault kind, asserting the symptom the real ccxt client shows."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from lifecycle.clock import FakeClock
from simulator.engine import Simulator
from simulator.faults import FaultKind, FaultPlan
from simulator.server import SimulatorServer
from tests.simulator.conftest import make_client, make_sim

BTC = "BTC/USD:USD"
XBT = "PF_XBTUSD"


def sendorders(sim: Simulator) -> list[int]:
    return [r.status for r in sim.request_log if r.path.endswith("/sendorder")]


def test_http_500_server_error_is_exchange_error_and_nothing_executes(ex: Any, sim: Simulator) -> None:
    sim.faults.add(FaultKind.HTTP_500, "sendorder")
    with pytest.raises(ccxt.ExchangeError, match="Server Error"):
        ex.create_order(BTC, "market", "buy", 0.01)
    assert sim.order_log == [] and sendorders(sim) == [500]
    ex.create_order(BTC, "market", "buy", 0.01)  # count=1: the next one goes through
    assert len(sim.order_log) == 1


@pytest.mark.parametrize("kind", [FaultKind.HTTP_502, FaultKind.HTTP_503])
def test_http_502_503_text_bodies_are_exchange_not_available(ex: Any, sim: Simulator, kind: FaultKind) -> None:
    sim.faults.add(kind, "accounts")
    with pytest.raises(ccxt.ExchangeNotAvailable):
        ex.fetch_balance()
    assert ex.fetch_balance()["USD"]["total"] == float(sim.config.starting_usd)


def test_timeout_before_execution(server: SimulatorServer, secret: str, sim: Simulator) -> None:
    client = make_client(server, secret, timeout_ms=300)
    client.load_markets()
    sim.faults.add(FaultKind.TIMEOUT, "sendorder", delay=5.0)
    started = time.monotonic()
    with pytest.raises(ccxt.RequestTimeout):
        client.create_order(BTC, "market", "buy", 0.01)
    assert time.monotonic() - started < 2.0
    assert sim.order_log == [] and sim.positions() == []


def test_timeout_after_the_order_was_accepted(server: SimulatorServer, secret: str, sim: Simulator) -> None:
    client = make_client(server, secret, timeout_ms=300)
    client.load_markets()
    sim.faults.add(FaultKind.TIMEOUT_AFTER_ACCEPT, "sendorder", delay=5.0)
    with pytest.raises(ccxt.RequestTimeout):
        client.create_order(BTC, "market", "buy", 0.01, None, {"clientOrderId": "intent-1"})
    [accepted] = sim.order_log
    assert accepted.cli_ord_id == "intent-1"
    [pos] = client.fetch_positions()  # the order stands: look it up, never re-send blindly
    assert pos["contracts"] == 0.01
    assert "intent-1" in {t["info"]["cliOrdId"] for t in client.fetch_my_trades()}


def test_injected_sleep_is_interrupted_when_the_server_stops(secret: str) -> None:
    sim = make_sim()
    server = SimulatorServer(sim, api_key="sim-key", api_secret=secret).start()
    client = make_client(server, secret, timeout_ms=200)
    client.load_markets()
    sim.faults.add(FaultKind.TIMEOUT, "accounts", delay=30.0)
    with pytest.raises(ccxt.RequestTimeout):
        client.fetch_balance()
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 5.0


def test_429_json_is_ddos_protection(ex: Any, sim: Simulator) -> None:
    sim.faults.add(FaultKind.RATE_LIMIT_429, "openpositions")
    with pytest.raises(ccxt.DDoSProtection):
        ex.fetch_positions()


def test_200_api_limit_exceeded_is_rate_limit_exceeded(ex: Any, sim: Simulator) -> None:
    sim.faults.add(FaultKind.API_LIMIT_EXCEEDED, "sendorder")
    with pytest.raises(ccxt.RateLimitExceeded):
        ex.create_order(BTC, "market", "buy", 0.01)
    assert sim.order_log == []


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ("insufficientAvailableFunds", ccxt.InsufficientFunds),
        ("wouldNotReducePosition", ccxt.ExchangeError),
        ("invalidSize", ccxt.InvalidOrder),
        ("invalidPrice", ccxt.InvalidOrder),
        ("marketSuspended", ccxt.ExchangeNotAvailable),
        ("postWouldExecute", ccxt.OrderImmediatelyFillable),
        ("clientOrderIdAlreadyExist", ccxt.DuplicateOrderId),
    ],
)
def test_reject_with_krakens_status_string(ex: Any, sim: Simulator, status: str, error: type[Exception]) -> None:
    sim.faults.add(FaultKind.REJECT, "sendorder", status=status)
    with pytest.raises(error, match=status):
        ex.create_order(BTC, "market", "buy", 0.01, None, {"clientOrderId": "r-1"})
    assert sim.order_log == []
    rejected = ex.fetch_canceled_orders()
    assert [o["clientOrderId"] for o in rejected if o["status"] == "rejected"] == ["r-1"]


def test_silent_rejection_statuses_come_back_as_rejected_orders(ex: Any, sim: Simulator) -> None:
    sim.faults.add(FaultKind.REJECT, "sendorder", status="wouldCauseLiquidation")
    order = ex.create_order(BTC, "market", "buy", 0.01)
    assert order["status"] == "rejected" and order["id"] is None  # no exception: check status after create


def test_stale_snapshot_serves_positions_from_before_the_fill(ex: Any, sim: Simulator) -> None:
    ex.create_order(BTC, "market", "buy", 0.01)
    sim.advance(2)
    sim.faults.add(FaultKind.STALE_SNAPSHOT, "openpositions", lag_seconds=10)
    assert ex.fetch_positions() == []  # lagging: the fill is visible, the position not yet
    assert len(ex.fetch_my_trades()) == 1
    assert len(ex.fetch_positions()) == 1


def test_stale_open_orders(ex: Any, sim: Simulator) -> None:
    order = ex.create_order(BTC, "limit", "buy", 0.01, float(sim.quote(XBT).bid - 500))
    sim.advance(3)
    ex.cancel_order(order["id"])
    sim.faults.add(FaultKind.STALE_SNAPSHOT, "openorders", lag_seconds=2)
    assert [o["id"] for o in ex.fetch_open_orders()] == [order["id"]]  # already cancelled, still listed
    assert ex.fetch_open_orders() == []


def test_duplicate_fill_delivery(ex: Any, sim: Simulator) -> None:
    ex.create_order(BTC, "market", "buy", 0.01)
    ex.create_order(BTC, "market", "buy", 0.02)
    sim.faults.add(FaultKind.DUPLICATE_FILLS, "fills")
    trades = ex.fetch_my_trades()
    assert len(trades) == 4 and len({t["id"] for t in trades}) == 2


def test_out_of_order_fill_delivery(ex: Any, sim: Simulator) -> None:
    for _ in range(6):
        ex.create_order(BTC, "market", "buy", 0.001)
        sim.advance(1)
    sim.faults.add(FaultKind.REORDER_FILLS, "fills")
    raw = ex.privateGetFills()["fills"]
    times = [f["fillTime"] for f in raw]
    assert times != sorted(times, reverse=True)
    assert {f["fill_id"] for f in raw} == {f.fill_id for f in sim.all_fills()}


def test_lowercase_symbol_drift_defeats_ccxt_market_lookup(ex: Any, sim: Simulator) -> None:
    ex.create_order(BTC, "market", "buy", 0.01)
    sim.faults.add(FaultKind.LOWERCASE_SYMBOL, "openpositions")
    [pos] = ex.fetch_positions()
    assert pos["symbol"] == "pf_xbtusd"
    [pos] = ex.fetch_positions()
    assert pos["symbol"] == BTC


def test_garbage_body_on_200_looks_like_an_empty_book_to_ccxt(ex: Any, sim: Simulator) -> None:
    ex.create_order(BTC, "limit", "buy", 0.01, float(sim.quote(XBT).bid - 500))
    sim.faults.add(FaultKind.GARBAGE_BODY, "openorders")
    assert ex.fetch_open_orders() == []  # no error raised: a reader must not trust this
    assert len(ex.fetch_open_orders()) == 1


def test_empty_body_on_positions_raises(ex: Any, sim: Simulator) -> None:
    sim.faults.add(FaultKind.EMPTY_BODY, "openpositions")
    with pytest.raises(ccxt.ExchangeNotAvailable):
        ex.fetch_positions()  # the one ccxt method that guards against a missing key


def test_garbage_after_an_accepted_order(ex: Any, sim: Simulator) -> None:
    sim.faults.add(FaultKind.GARBAGE_BODY, "sendorder")
    # ccxt 4.5.90 fails inside parse_order with a bare TypeError, not a ccxt error: an adapter must treat
    # any exception from create_order as UNKNOWN...
    with pytest.raises(TypeError):
        ex.create_order(BTC, "market", "buy", 0.01)
    assert len(sim.order_log) == 1  # ...because the venue accepted the order


def test_stop_silently_cancelled_by_the_venue(ex: Any, sim: Simulator) -> None:
    ex.create_order(BTC, "market", "buy", 0.01)
    mark = float(sim.quote(XBT).mark)
    stop = ex.create_order(BTC, "market", "sell", 0.01, None, {"stopLossPrice": mark - 2000})
    sim.faults.add(FaultKind.CANCEL_STOP, count=1)
    sim.advance(1)
    assert ex.fetch_open_orders() == []
    canceled = ex.fetch_canceled_orders(params={"trigger": True})
    assert stop["id"] in {o["id"] for o in canceled}


def test_fill_during_the_cancel_window(ex: Any, sim: Simulator) -> None:
    order = ex.create_order(BTC, "limit", "buy", 0.01, float(sim.quote(XBT).bid - 500))
    sim.faults.add(FaultKind.FILL_ON_CANCEL, "cancelorder")
    with pytest.raises(ccxt.OrderNotFound):
        ex.cancel_order(order["id"])  # cancelStatus "filled"
    [trade] = ex.fetch_my_trades()
    assert trade["order"] == order["id"] and trade["amount"] == 0.01
    assert len(ex.fetch_positions()) == 1


def test_endpoint_filter_count_skip_and_probability(ex: Any, sim: Simulator) -> None:
    sim.faults.add(FaultKind.HTTP_503, "accounts", count=2, skip=1)
    ex.fetch_positions()  # other endpoint: untouched
    ex.fetch_balance()  # skipped
    for _ in range(2):
        with pytest.raises(ccxt.ExchangeNotAvailable):
            ex.fetch_balance()
    ex.fetch_balance()  # exhausted
    assert [f.kind for f in sim.faults.fired] == [FaultKind.HTTP_503] * 2


def test_probability_is_seeded() -> None:
    def pattern(seed: int) -> list[bool]:
        plan = FaultPlan(seed)
        plan.add(FaultKind.HTTP_500, "x", count=None, probability=0.5)
        now = FakeClock().now()
        return [bool(plan.draw("GET", "/a/x", now)) for _ in range(40)]

    assert pattern(1) == pattern(1)
    assert pattern(1) != pattern(2)
    assert 5 < sum(pattern(1)) < 35


def test_fault_options_are_validated() -> None:
    plan = FaultPlan(0)
    with pytest.raises(ValueError, match="unknown fault option"):
        plan.add(FaultKind.TIMEOUT, "x", dealy=3)
    with pytest.raises(ValueError, match="probability"):
        plan.add(FaultKind.TIMEOUT, "x", probability=2)
    fault = plan.add(FaultKind.TIMEOUT, "x", delay=10_000)
    assert fault.delay == 30.0
    plan.clear()
    assert plan.active == []


def test_faults_do_not_perturb_prices() -> None:
    def closes(with_faults: bool) -> list[Decimal]:
        sim = make_sim()
        mark = sim.quote(XBT).mark
        for _ in range(5):
            sim.place_order(symbol=XBT, side="buy", order_type="stp", size=Decimal("0.01"), stop_price=mark * 2)
        if with_faults:
            sim.faults.add(FaultKind.CANCEL_STOP, count=None, probability=0.1)
        sim.advance(120)
        assert len(sim.open_orders()) == (0 if with_faults else 5)
        return [b.close for b in sim.candles.candles(XBT, "trade", "1m")]

    assert closes(True) == closes(False)
