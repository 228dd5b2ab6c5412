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
    run_snapshot_calls()
    run_budgets()


def run_snapshot_calls() -> None:
    rows = snapshot_calls()
    base_calls = rows[0][1]
    for positions, calls, seconds in rows:
        print(f"   snapshot @ {positions:>3} positions: {calls} REST calls ({calls / base_calls:.2f}x of 1), "
              f"{seconds * 1000:.0f} ms")  # fmt: skip


# ---------------------------------------------------------------------- rate budgets over a busy hour
BUSY_SYMBOLS = ("PF_XBTUSD", "PF_ETHUSD", "PF_SOLUSD", "PF_XRPUSD")
UNKNOWN_OUTCOMES_PER_HOUR = 6


def _worst_window(points: list[tuple[float, int]], seconds: float) -> int:
    """The largest sum of costs inside any window of `seconds` (points sorted by time)."""
    worst = total = start = 0
    for end in range(len(points)):
        total += points[end][1]
        while points[end][0] - points[start][0] >= seconds:
            total -= points[start][1]
            start += 1
        worst = max(worst, total)
    return worst


def busy_hour(*, resolve_from_send: bool) -> tuple[int, int, int, int]:
    """One simulated hour of the daemon's schedule at its default intervals (tick and reconcile every 60 s,
    protect every 30 s) through `CcxtVenue` over HTTP, busier than a normal day: every minute an entry with its
    stop and take-profit, a stop edit each protect run, an exit with its cancels, and six evidence lookups an
    hour. Returns (worst 10-s derivatives cost, worst 10-min history tokens, requests refused by the venue,
    lookups the client budget deferred)."""
    from exchange.budget import BudgetDeferred
    from lifecycle.values import OrderRequest, OrderType, Side

    clock = FakeClock()
    sim = Simulator(SimConfig(seed=5, history_minutes=5, starting_usd=Decimal(10_000_000)), clock=clock)
    _a_day_of_history(sim, clock)
    start = clock.now()
    with SimulatorServer(sim, api_key=_KEY, api_secret=_SECRET, port=0) as server:
        venue = CcxtVenue(
            api_key=_KEY, api_secret=_SECRET, base_url=server.base_url, enable_rate_limit=False,
            breaker=CircuitBreaker(clock), clock=clock,
        )  # fmt: skip
        venue.instruments()
        cursor = clock.now()
        stops: dict[str, str] = {}
        n = deferred = 0
        for second in range(3600):
            if second % 60 == 0:  # tick: margin, then an entry with its stop and take-profit
                venue.margin()
                symbol = BUSY_SYMBOLS[n % len(BUSY_SYMBOLS)]
                n += 1
                mark = sim.quote(symbol).mark
                size = (Decimal(2000) / mark).quantize(sim.instruments[symbol].size_increment)
                venue.place_order(OrderRequest(symbol, Side.BUY, OrderType.MARKET, size, f"e{n}"))
                stop = venue.place_order(
                    OrderRequest(
                        symbol,
                        Side.SELL,
                        OrderType.STOP,
                        size,
                        f"s{n}",
                        trigger_price=mark * Decimal("0.9"),
                        reduce_only=True,
                    )
                )
                venue.place_order(OrderRequest(symbol, Side.SELL, OrderType.TAKE_PROFIT, size, f"t{n}",
                                               trigger_price=mark * Decimal("1.1"), reduce_only=True))  # fmt: skip
                if stop.order is not None:
                    stops[f"e{n}"] = stop.order.order_id
            if second % 60 == 1:  # reconcile: one snapshot
                snap = venue.snapshot(cursor)
                cursor = max([cursor, *(f.time for f in snap.fills)])
            if second % 30 == 2 and stops:  # protect: read, then move one stop
                venue.positions()
                orders = {o.order_id: o for o in venue.open_orders()}
                oid = stops[sorted(stops)[-1]]
                if oid in orders and orders[oid].trigger_price is not None:
                    trigger = orders[oid].trigger_price
                    assert trigger is not None
                    venue.edit_order(oid, trigger_price=trigger + 1, limit_price=None)
            if second % 60 == 30 and len(stops) > 2:  # an exit: cancel the oldest position's orders, close it
                oldest = sorted(stops)[0]
                stops.pop(oldest)
                for order in venue.open_orders():
                    if order.client_order_id in (f"s{oldest[1:]}", f"t{oldest[1:]}"):
                        venue.cancel_order(order.order_id)
            if second % (3600 // UNKNOWN_OUTCOMES_PER_HOUR) == 45:  # an ambiguous send resolved by evidence
                # half of them reached the venue, half never did (the costly case: every source is read)
                cid = f"e{n}" if second % 1200 == 45 else f"lost{second}"
                try:
                    venue.find_order(cid, sent_after=clock.now() if resolve_from_send else None)
                except BudgetDeferred:
                    deferred += 1
            clock.advance(1)
        points = {"derivatives": [], "history": []}  # type: dict[str, list[tuple[float, int]]]
        refused = 0
        for record in sim.request_log:
            if record.extra.get("rate_limited"):
                refused += 1
            elif "cost" in record.extra:
                at = (record.time - start).total_seconds()
                points[record.extra["bucket"]].append((at, int(record.extra["cost"])))
    return _worst_window(points["derivatives"], 10), _worst_window(points["history"], 600), refused, deferred


def _a_day_of_history(sim: Simulator, clock: FakeClock) -> None:
    """The previous 24 h as an active account leaves them: 3,000 limit orders placed and cancelled (6,000
    `/orders` events), so a lookup over the whole lookback has pages to read."""
    day = 86400
    clock.set(clock.now() - timedelta(seconds=day))
    bid = sim.quote("PF_XBTUSD").bid
    for i in range(3000):
        placed = sim.place_order(symbol="PF_XBTUSD", side="buy", order_type="lmt", size=Decimal("0.001"),
                                 limit_price=bid - 5000, cli_ord_id=f"old{i}")  # fmt: skip
        if placed.order is not None:
            sim.cancel_order(placed.order.order_id)
        clock.advance(day / 3000)


def run_budgets() -> None:
    derivatives, history, refused, deferred = busy_hour(resolve_from_send=True)
    _, history_full, _, _ = busy_hour(resolve_from_send=False)
    print(f"   busy hour, worst 10 s window: {derivatives} of 500 derivatives units ({derivatives / 500:.0%}); "
          f"worst 10 min window: {history} of 100 history tokens ({history / 100:.0%}); "
          f"refused by the venue: {refused}; deferred by the client: {deferred}")  # fmt: skip
    print(f"   evidence lookups reading history from the send vs the 7-day lookback: {history} vs {history_full} "
          f"tokens per 10 min ({history / max(1, history_full):.2f}x)")  # fmt: skip
