"""The order stream's tests: the real ccxt.pro client against the simulator's websocket feeds on 127.0.0.1.

Everything has a deadline (`wait_until`, `asyncio.wait_for`) and every thread is stopped in teardown."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal

import pytest

from lifecycle.clock import FakeClock
from lifecycle.values import VenueFill, VenueOrder
from simulator.engine import SimConfig, Simulator
from simulator.server import SimulatorServer

API_KEY = "stream-test-key-0123456789"
API_SECRET = base64.b64encode(b"stream-test-secret-" * 4).decode()
XBT = "PF_XBTUSD"


def wait_until(predicate: Callable[[], bool], timeout_s: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.01)


class Recorder:
    """A StreamHandler that records what the stream hands over."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.fills: list[VenueFill] = []
        self.orders: list[VenueOrder] = []
        self.venue_cancels = 0
        self.gaps: list[str] = []

    def on_fills(self, fills: Sequence[VenueFill]) -> bool:
        with self.lock:
            self.fills.extend(fills)
        return True

    def on_orders(self, orders: Sequence[VenueOrder], venue_cancels: int) -> None:
        with self.lock:
            self.orders.extend(orders)
            self.venue_cancels += venue_cancels

    def on_gap(self, reason: str) -> None:
        with self.lock:
            self.gaps.append(reason)

    def fill_ids(self) -> list[str]:
        with self.lock:
            return [f.fill_id for f in self.fills]


@pytest.fixture
def server() -> Iterator[SimulatorServer]:
    sim = Simulator(SimConfig(seed=3, history_minutes=5), clock=FakeClock())
    with SimulatorServer(sim, api_key=API_KEY, api_secret=API_SECRET) as srv:
        srv.ws.heartbeat_s = 0.1
        yield srv


def market(sim: Simulator, side: str = "buy", size: str = "0.01", coid: str | None = None) -> str:
    out = sim.place_order(symbol=XBT, side=side, order_type="mkt", size=Decimal(size), cli_ord_id=coid)
    assert out.accepted and out.fills
    return out.fills[0].fill_id
