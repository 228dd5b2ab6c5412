"""Kraken's REST rate budgets in the simulator, seen through the real ccxt client and raw signed requests.

Derivatives: 500 cost units per 10 s (sendorder/editorder/cancelorder 10, reads 2, fills with lastFillTime 25),
refused with `apiLimitExceeded`. History: 100 tokens per 10 min, refused with HTTP 429 and `rate-limit-reset`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import ccxt
import pytest

from lifecycle.clock import FakeClock
from simulator.engine import SimConfig, Simulator
from simulator.ratelimit import Bucket, RateLimits, account_log_cost, cost
from simulator.server import SimulatorServer
from tests.simulator.conftest import API_KEY, make_client, signed


def test_costs_follow_krakens_table() -> None:
    d = "/derivatives/api/v3/"
    assert cost("POST", d + "sendorder", "symbol=PF_XBTUSD") == (Bucket.DERIVATIVES, 10)
    assert cost("POST", d + "editorder", "") == (Bucket.DERIVATIVES, 10)
    assert cost("GET", d + "accounts", "") == (Bucket.DERIVATIVES, 2)
    assert cost("GET", d + "fills", "") == (Bucket.DERIVATIVES, 2)
    assert cost("GET", d + "fills", "lastFillTime=2026-01-01T00:00:00.000Z") == (Bucket.DERIVATIVES, 25)
    assert cost("POST", d + "cancelallorders", "") == (Bucket.DERIVATIVES, 25)
    body = 'json={"batchOrder":[{"order":"cancel","order_id":"a"},{"order":"cancel","order_id":"b"}]}'
    assert cost("POST", d + "batchorder", "", body) == (Bucket.DERIVATIVES, 11)
    assert cost("GET", "/api/history/v2/orders", "count=1000") == (Bucket.HISTORY, 1)
    assert cost("GET", "/api/history/v3/account-log", "") == (Bucket.HISTORY, 3)  # default count 500
    assert [account_log_cost(n) for n in (25, 26, 1000, 1001, 5001)] == [1, 2, 3, 6, 10]
    assert (
        cost("GET", d + "tickers", "") is None
        and cost("GET", "/api/history/v3/market/PF_XBTUSD/executions", "") is None
    )


def test_derivatives_budget_refuses_with_api_limit_exceeded_then_refills(ex: Any, sim: Simulator) -> None:
    for _ in range(250):  # 250 x 2 = the whole 500-unit bucket at one instant
        ex.privateGetAccounts()
    with pytest.raises(ccxt.RateLimitExceeded, match="apiLimitExceeded"):
        ex.privateGetOpenorders()
    assert sim.budget.refused[Bucket.DERIVATIVES] == 1
    assert isinstance(sim.clock, FakeClock)
    sim.clock.advance(0.04)  # 500 units / 10 s = 2 units per 40 ms: exactly one more read
    ex.privateGetOpenorders()
    with pytest.raises(ccxt.RateLimitExceeded):
        ex.privateGetOpenorders()


def test_fills_with_last_fill_time_costs_25(ex: Any, sim: Simulator) -> None:
    for _ in range(20):
        ex.privateGetFills({"lastFillTime": "2026-03-02T12:00:00.000Z"})
    with pytest.raises(ccxt.RateLimitExceeded):
        ex.privateGetFills({"lastFillTime": "2026-03-02T12:00:00.000Z"})
    assert sim.budget.refused[Bucket.DERIVATIVES] == 1


def test_history_budget_answers_429_with_rate_limit_reset(ex: Any, sim: Simulator, server: Any, secret: str) -> None:
    for _ in range(100):
        ex.historyGetOrders()
    status, body = signed(server, secret, "GET", "/api/history/v2/triggers")
    assert status == 429 and body == b"Rate limited."
    refused = [r for r in sim.request_log if r.extra.get("rate_limited") == "history"]
    assert len(refused) == 1
    with pytest.raises(ccxt.RateLimitExceeded):
        ex.historyGetOrders()
    from urllib.error import HTTPError
    from urllib.request import Request, urlopen

    from simulator.auth import endpoint_path, sign

    path = "/api/history/v3/account-log"
    headers = {"APIKey": API_KEY, "Authent": sign("", endpoint_path(path), secret)}
    req = Request(server.base_url + path, headers=headers)  # noqa: S310 - loopback only
    with pytest.raises(HTTPError) as caught:
        urlopen(req, timeout=5)  # noqa: S310 - loopback only
    assert caught.value.code == 429 and caught.value.headers["rate-limit-reset"] == "18"  # 3 tokens at 1 per 6 s
    assert caught.value.headers["Content-Type"] == "text/plain"


def test_public_endpoints_cost_nothing(ex: Any, sim: Simulator) -> None:
    for _ in range(300):
        ex.publicGetTickers()
    ex.privateGetAccounts()
    assert sim.budget.refused == {Bucket.DERIVATIVES: 0, Bucket.HISTORY: 0}


def test_budgets_are_configurable(secret: str) -> None:
    relaxed = Simulator(
        SimConfig(seed=3, history_minutes=5, rate_limits=RateLimits(enabled=False)),
        clock=FakeClock(datetime(2026, 3, 2, tzinfo=UTC)),
    )
    with SimulatorServer(relaxed, api_key=API_KEY, api_secret=secret) as srv:
        client = make_client(srv, secret)
        for _ in range(260):
            client.privateGetAccounts()
    assert relaxed.budget.refused[Bucket.DERIVATIVES] == 0
