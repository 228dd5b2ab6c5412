"""Simulator throughput: orders matched per second in process (baseline) vs ccxt round trips over HTTP."""

from __future__ import annotations

import base64
import os
import time
from decimal import Decimal

import ccxt

from lifecycle.clock import FakeClock
from simulator.engine import SimConfig, Simulator
from simulator.ratelimit import RateLimits
from simulator.server import SimulatorServer

IN_PROCESS_ORDERS = 2000
HTTP_ROUND_TRIPS = 300


def _sim() -> Simulator:
    # the engine's and the server's own speed: Kraken's rate budgets (on by default) would refuse the burst
    config = SimConfig(seed=1, history_minutes=10, starting_usd=Decimal(10**9), rate_limits=RateLimits(enabled=False))
    return Simulator(config, clock=FakeClock())


def in_process_rate() -> float:
    sim = _sim()
    started = time.perf_counter()
    for i in range(IN_PROCESS_ORDERS):
        out = sim.place_order(
            symbol="PF_XBTUSD", side="buy" if i % 2 else "sell", order_type="mkt", size=Decimal("0.001")
        )
        assert out.status == "placed"
    return IN_PROCESS_ORDERS / (time.perf_counter() - started)


def http_rate() -> float:
    sim = _sim()
    secret = base64.b64encode(os.urandom(64)).decode()
    with SimulatorServer(sim, api_key="bench", api_secret=secret) as srv:
        ex = ccxt.krakenfutures({"apiKey": "bench", "secret": secret, "enableRateLimit": False})
        ex.urls["api"].update(srv.ccxt_urls())
        ex.load_markets()
        started = time.perf_counter()
        for i in range(HTTP_ROUND_TRIPS):
            ex.create_order("BTC/USD:USD", "market", "buy" if i % 2 else "sell", 0.001)
        elapsed = time.perf_counter() - started
    assert len(sim.order_log) == HTTP_ROUND_TRIPS
    return HTTP_ROUND_TRIPS / elapsed


def run() -> None:
    baseline = in_process_rate()
    over_http = http_rate()
    print(f"   in-process market orders matched: {baseline:,.0f}/s ({IN_PROCESS_ORDERS} orders)")
    print(f"   ccxt create_order round trips over HTTP: {over_http:,.0f}/s ({HTTP_ROUND_TRIPS} orders)")
    print(f"   ratio in-process / HTTP: {baseline / over_http:.1f}x")


if __name__ == "__main__":
    run()
