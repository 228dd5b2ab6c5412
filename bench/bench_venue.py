"""REST calls per `CcxtVenue.snapshot` at 1, 10 and 100 open positions (must not grow).

Real ccxt over HTTP to the simulator on 127.0.0.1, counted from the simulator's request log. The simulator is
given 100 instruments so that 100 positions are 100 distinct symbols.
"""

from __future__ import annotations

import base64
import time
from datetime import timedelta
from decimal import Decimal

from exchange.breaker import CircuitBreaker
from exchange.ccxt_venue import CcxtVenue
from lifecycle.clock import FakeClock
from simulator.engine import SimConfig, Simulator
from simulator.instruments import InstrumentSpec
from simulator.server import SimulatorServer

POSITION_COUNTS = (1, 10, 100)
_KEY = "bench-key"
_SECRET = base64.b64encode(b"bench-secret-" * 4).decode()


def many_instruments(n: int) -> tuple[InstrumentSpec, ...]:
    return tuple(InstrumentSpec(f"PF_Q{i:03d}USD", f"Q{i:03d}", Decimal("0.01"), 2, Decimal(100)) for i in range(n))


def snapshot_calls(counts: tuple[int, ...] = POSITION_COUNTS) -> list[tuple[int, int, float]]:
    """(positions, REST calls, seconds) for one snapshot at each position count."""
    clock = FakeClock()
    sim = Simulator(SimConfig(seed=1, instruments=many_instruments(max(counts)), history_minutes=5), clock=clock)
    out: list[tuple[int, int, float]] = []
    with SimulatorServer(sim, api_key=_KEY, api_secret=_SECRET, port=0) as server:
        venue = CcxtVenue(
            api_key=_KEY,
            api_secret=_SECRET,
            base_url=server.base_url,
            enable_rate_limit=False,
            breaker=CircuitBreaker(clock),
            clock=clock,
        )
        opened = 0
        specs = list(sim.instruments)
        for target in counts:
            while opened < target:
                sim.open_position_direct(specs[opened], "long", Decimal(1))
                opened += 1
            sim.advance(1)
            before = len(sim.request_log)
            started = time.perf_counter()
            snap = venue.snapshot(clock.now() - timedelta(milliseconds=1))
            elapsed = time.perf_counter() - started
            if len(snap.positions) != target:
                raise AssertionError(f"expected {target} positions, the snapshot holds {len(snap.positions)}")
            out.append((target, len(sim.request_log) - before, elapsed))
    return out


def run() -> None:
    rows = snapshot_calls()
    base_calls = rows[0][1]
    for positions, calls, seconds in rows:
        print(f"   snapshot @ {positions:>3} positions: {calls} REST calls ({calls / base_calls:.2f}x of 1), "
              f"{seconds * 1000:.0f} ms")  # fmt: skip
