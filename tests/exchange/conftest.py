"""Fixtures: one simulator per test, seen either in process (SimVenue) or over HTTP through real ccxt (CcxtVenue)."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from exchange.breaker import CircuitBreaker
from exchange.ccxt_venue import CcxtVenue
from exchange.venue import Venue
from lifecycle.clock import FakeClock
from simulator.engine import SimConfig, Simulator
from simulator.server import SimulatorServer

API_KEY = "test-public-key-AAAAsentinel"
API_SECRET = base64.b64encode(b"test-secret-sentinel-" * 3).decode()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> Simulator:
    return Simulator(SimConfig(seed=7, history_minutes=45), clock=clock)  # short warm-up: fast tests


@pytest.fixture
def server(sim: Simulator) -> Iterator[SimulatorServer]:
    with SimulatorServer(sim, api_key=API_KEY, api_secret=API_SECRET, port=0) as srv:
        yield srv


def make_ccxt_venue(
    server: SimulatorServer,
    clock: FakeClock,
    *,
    secret: str = API_SECRET,
    timeout_seconds: float = 5.0,
    breaker: CircuitBreaker | None = None,
) -> CcxtVenue:
    return CcxtVenue(
        api_key=API_KEY,
        api_secret=secret,
        base_url=server.base_url,
        timeout_seconds=timeout_seconds,
        enable_rate_limit=False,
        breaker=breaker or CircuitBreaker(clock, failure_threshold=5, open_seconds=60),
        clock=clock,
    )


@pytest.fixture
def ccxt_venue(server: SimulatorServer, clock: FakeClock) -> CcxtVenue:
    return make_ccxt_venue(server, clock)


@pytest.fixture(params=["sim", "ccxt"])
def venue(request: pytest.FixtureRequest, sim: Simulator, clock: FakeClock) -> Iterator[Venue]:
    if request.param == "sim":
        from simulator.venue import SimVenue

        yield SimVenue(sim)
        return
    with SimulatorServer(sim, api_key=API_KEY, api_secret=API_SECRET, port=0) as srv:
        yield make_ccxt_venue(srv, clock)
