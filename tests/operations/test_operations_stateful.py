"""Hypothesis stateful test over operations/ with the simulator in process (issue #5, "How it is checked").

Any interleaving of venue events — fills with and without our ids (manual adds and closes), silent cancels of our
stops, price moves and gaps through stops (the venue fills the stop: a liquidation-like exit we did not send) — and
daemon steps (tick with entries, the fill poll, protect, reconcile) keeps, on a real SQLite registry:
- no live venue order owned by a terminal position;
- after a protect step, every exposed position the venue holds has exactly one live stop of its own, on the
  protective side of the mark, covering its quantity;
- after the fill poll and reconciliation, every venue fill of our orders is in the ledger;
- after protect and reconciliation, no order row says `open` for an order the venue no longer has on its book;
- the registry audit stays clean.
"""

from __future__ import annotations

import tempfile
from decimal import Decimal
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from lifecycle.clock import FakeClock
from lifecycle.escalation import Escalator
from lifecycle.killswitch import KillSwitch
from lifecycle.values import OrderStatus
from operations import exits, protection
from operations.context import DaemonContext, Limits
from operations.safety import Safety
from scheduler.jobs import reconcile, tick
from simulator.engine import SimConfig, Simulator
from simulator.venue import SimVenue
from specs.lifecycle import PROTECTABLE_STATES, TERMINAL_STATES, State
from store.audit import run_audit
from store.registry import Registry
from tests.daemon.harness import ScriptedStrategy

XBT = "PF_XBTUSD"
ETH = "PF_ETHUSD"
SYMBOLS = (XBT, ETH)


class OperationsMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory(prefix="ops-stateful-")
        self.clock = FakeClock()
        self.sim = Simulator(SimConfig(seed=5, history_minutes=120), clock=self.clock)
        self.venue = SimVenue(self.sim)
        self.registry = Registry.open(Path(self.tmp.name) / "registry.db", self.clock)
        self.strategy = ScriptedStrategy()
        self.ctx = DaemonContext(
            registry=self.registry,
            venue=self.venue,
            clock=self.clock,
            limits=Limits(symbols=SYMBOLS, timeframe="1m", take_profit=True, take_profit_r=Decimal(2)),
            instruments=self.venue.instruments(),
            strategy=self.strategy,
            safety=Safety(KillSwitch(Decimal(80), Decimal(5), 2), Escalator()),
        )
        self.protected_since_change = False

    def teardown(self) -> None:
        self.registry.db.close()
        self.tmp.cleanup()

    # --- daemon steps --------------------------------------------------------------------------------------

    @rule(symbol=st.sampled_from(SYMBOLS), side=st.sampled_from(["long", "short"]))
    def enter(self, symbol: str, side: str) -> None:
        self.strategy.entries = {symbol: side}
        self.clock_advance(60)
        tick.run(self.ctx)
        self.strategy.entries = {}
        self.protected_since_change = False

    @rule()
    def fill_poll(self) -> None:
        exits.run(self.ctx)
        self.protected_since_change = False

    @rule()
    def protect(self) -> None:
        protection.run(self.ctx)
        self.protected_since_change = True

    @rule()
    def protect_then_reconcile_twice(self) -> None:
        # A vanished take-profit's row is settled by protect (its replacement's planner), a stray by reconciliation:
        # after both, the rows follow the venue.
        protection.run(self.ctx)
        reconcile.run(self.ctx)
        self.clock_advance(5)
        reconcile.run(self.ctx)
        self.protected_since_change = False
        self.assert_fills_booked()
        self.assert_rows_follow_the_venue()

    # --- venue events ----------------------------------------------------------------------------------------

    @rule(symbol=st.sampled_from(SYMBOLS))
    def manual_close(self, symbol: str) -> None:
        self.sim.close_position_direct(symbol)
        self.protected_since_change = False

    @rule(symbol=st.sampled_from(SYMBOLS), fraction=st.sampled_from([Decimal("0.5"), Decimal(1)]))
    def manual_add(self, symbol: str, fraction: Decimal) -> None:
        held = [p for p in self.sim.positions() if p.symbol == symbol]
        if not held:
            return
        side = "long" if held[0].size > 0 else "short"
        size = (abs(held[0].size) * fraction).quantize(self.ctx.instruments[symbol].size_increment)
        if size > 0:
            self.sim.open_position_direct(symbol, side, size)
        self.protected_since_change = False

    @rule(data=st.data())
    def silent_cancel(self, data: st.DataObject) -> None:
        orders = [o for o in self.sim.open_orders()]
        if orders:
            self.sim.cancel_silently(data.draw(st.sampled_from(sorted(o.order_id for o in orders))))
        self.protected_since_change = False

    @rule(symbol=st.sampled_from(SYMBOLS), move=st.sampled_from(["-0.15", "-0.03", "0.03", "0.15"]))
    def price_gap(self, symbol: str, move: str) -> None:
        mark = self.venue.tickers()[symbol].mark
        self.sim.set_mark(symbol, mark * (1 + Decimal(move)))
        self.clock_advance(1)
        self.protected_since_change = False

    def clock_advance(self, seconds: float) -> None:
        self.sim.advance(seconds)

    # --- invariants --------------------------------------------------------------------------------------------

    @invariant()
    def no_live_order_of_a_terminal_position(self) -> None:
        live = {o.order_id for o in self.sim.open_orders()}
        for pos in self.registry.positions(TERMINAL_STATES):
            for order in self.registry.orders(pos.uid):
                assert order.venue_order_id not in live, f"{order.client_order_id} of {pos.state} {pos.uid} is live"

    @precondition(lambda self: self.protected_since_change)
    @invariant()
    def exposed_positions_have_one_protective_stop(self) -> None:
        marks = {k: t.mark for k, t in self.venue.tickers().items()}
        held = {p.symbol for p in self.sim.positions() if p.size != 0}
        for pos in self.registry.active_positions():
            if pos.state not in PROTECTABLE_STATES or pos.symbol_key not in held:
                continue
            if pos.state == State.OPEN:
                continue  # reported unprotectable (crossed level, dust): no stop may be sent, by design
            stops = [
                o
                for o in self.sim.open_orders()
                if o.symbol == pos.symbol_key and o.order_type == "stp" and o.order_id == pos.sl_order_id
            ]
            assert len(stops) == 1, f"{pos.uid} {pos.state}: {len(stops)} stops"
            stop = stops[0]
            assert stop.stop_price is not None
            long = pos.side == "long"
            assert (stop.stop_price < marks[pos.symbol_key]) if long else (stop.stop_price > marks[pos.symbol_key])

    @invariant()
    def audit_clean(self) -> None:
        report = run_audit(self.registry.db)
        assert report.violations_total == 0, report.fields()

    def assert_fills_booked(self) -> None:
        ours = {o.client_order_id for p in self.registry.positions() for o in self.registry.orders(p.uid)}
        fills = [f for f in self.venue.fills_since(None) if f.client_order_id in ours]
        known = self.registry.fill_ids_known([f.fill_id for f in fills])
        assert [f.fill_id for f in fills if f.fill_id not in known] == []

    def assert_rows_follow_the_venue(self) -> None:
        live = {o.order_id for o in self.venue.open_orders() if o.status is OrderStatus.OPEN}
        for order in self.registry.unresolved_orders():
            if order.status == "open" and order.venue_order_id:
                assert order.venue_order_id in live, f"{order.client_order_id} recorded open, not on the book"


OperationsMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=20, deadline=None)
TestOperations = OperationsMachine.TestCase
