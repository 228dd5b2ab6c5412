"""`lifecycle.joint` tested directly (found by `make mutate`: only the daemon-harness tests of tests/joint reached it):
each joint invariant's finding and its boundaries, the owners of an order, and the grace that streaks carry from
cycle to cycle."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from lifecycle.joint import Finding, JointInputs, JointMemory, JointReport, OrderRow, evaluate
from lifecycle.values import (
    AccountSnapshot,
    MarginSnapshot,
    OrderStatus,
    OrderType,
    PositionSide,
    RegistryPosition,
    Side,
    VenueFill,
    VenueOrder,
    VenuePosition,
)
from specs.reconciliation import JOINT_FIELDS

D = Decimal
T0 = datetime(2026, 1, 1, tzinfo=UTC)
XBT, ETH = "PF_XBTUSD", "PF_ETHUSD"
MARGIN = MarginSnapshot(D(1000), D(1000), D(0), D(0), D(1000), T0)


def held(
    uid: str = "p1",
    *,
    symbol: str = XBT,
    side: PositionSide = PositionSide.LONG,
    state: str = "PROTECTED",
    qty: str = "1",
    sl: str | None = "s1",
    tp: str | None = None,
) -> RegistryPosition:
    return RegistryPosition(uid, symbol, side, state, D(qty), T0, sl, tp)


def vorder(
    oid: str,
    *,
    coid: str | None = None,
    symbol: str = XBT,
    side: Side = Side.SELL,
    kind: OrderType = OrderType.STOP,
    size: str = "1",
    filled: str = "0",
    trigger: str | None = "95",
    reduce_only: bool = True,
    status: OrderStatus = OrderStatus.OPEN,
) -> VenueOrder:
    return VenueOrder(
        oid, coid, symbol, side, kind, D(size), D(filled), None, None if trigger is None else D(trigger),
        reduce_only, status, T0,
    )  # fmt: skip


def on_venue(symbol: str = XBT, size: str = "1") -> VenuePosition:
    return VenuePosition(symbol, PositionSide.LONG, D(size), D(100), T0)


def inputs(
    positions: Sequence[RegistryPosition] = (),
    orders: Sequence[VenueOrder] = (),
    *,
    venue: Sequence[VenuePosition] = (),
    rows: Sequence[OrderRow] = (),
    unbooked: Sequence[VenueFill] = (),
    marks: Mapping[str, Decimal] | None = None,
    placements: Mapping[str, int] | None = None,
    churn_limit: int = 6,
) -> JointInputs:
    snapshot = AccountSnapshot(tuple(venue), tuple(orders), (), MARGIN, T0)
    return JointInputs(
        positions, rows, snapshot, unbooked, marks or {}, placements or {}, churn_limit, max_stop_distance_pct=D(25)
    )


def findings(i: JointInputs, cycles: int = 3) -> tuple[Finding, ...]:
    """What counts once the same situation has lasted `cycles` cycles (past every grace but J4's 2, at 3)."""
    memory: JointMemory | None = None
    report: JointReport | None = None
    for _ in range(cycles):
        report, memory = evaluate(i, memory)
    assert report is not None
    return report.findings


def fields(i: JointInputs) -> list[str]:
    return [f.field for f in findings(i)]


PROTECTED = held()
OWN_STOP = vorder("s1", coid="p1-stop-1")


# --- J1 stray venue orders -----------------------------------------------------------------------------------------


def test_an_order_of_a_terminal_position_resting_on_the_book_is_stray() -> None:
    row = OrderRow("p0-takeprofit-1", "t0", "p0", "CLOSED", "open")
    tp = vorder("t0", coid="p0-takeprofit-1", kind=OrderType.TAKE_PROFIT)
    assert findings(inputs(orders=[tp], rows=[row])) == (
        Finding("stray_venue_orders", "t0", f"{XBT} order of CLOSED p0"),
    )
    # The owner is found by venue order id when the venue reports no client order id.
    assert fields(inputs(orders=[vorder("t0", kind=OrderType.TAKE_PROFIT)], rows=[row])) == ["stray_venue_orders"]
    live_owner = OrderRow("p1-stop-1", "s1", "p1", "PROTECTED", "open")
    assert fields(inputs([PROTECTED], [OWN_STOP], venue=[on_venue()], rows=[live_owner])) == []


def test_a_reduce_only_order_of_no_position_on_a_held_symbol_is_stray() -> None:
    hand = vorder("h1", trigger="90")
    assert fields(inputs([PROTECTED], [OWN_STOP, hand], venue=[on_venue()])) == ["stray_venue_orders"]
    # ...but not on a symbol we do not hold, not when it adds (not reduce-only), not once adopted, not when settled.
    assert fields(inputs([PROTECTED], [OWN_STOP, vorder("h1", symbol=ETH)], venue=[on_venue()])) == []
    assert fields(inputs([PROTECTED], [OWN_STOP, vorder("h1", reduce_only=False)], venue=[on_venue()])) == []
    adopted_tp = held(tp="h1")
    assert fields(inputs([adopted_tp], [OWN_STOP, hand], venue=[on_venue()])) == []
    gone = vorder("h1", status=OrderStatus.CANCELLED)
    assert fields(inputs([PROTECTED], [OWN_STOP, gone], venue=[on_venue()])) == []


def test_a_terminal_position_holds_no_symbol() -> None:
    closed = held(state="CLOSED", sl=None)
    assert fields(inputs([closed], [vorder("h1")])) == []


# --- J2 unprotected exposure -------------------------------------------------------------------------------------


def test_a_held_position_with_its_one_stop_covering_it_is_protected() -> None:
    assert findings(inputs([PROTECTED], [OWN_STOP], venue=[on_venue()], marks={XBT: D(100)})) == ()
    # Its own by client order id (its order row) although not (yet) recorded as its stop.
    row = OrderRow("p1-stop-1", "s1", "p1", "PROTECTED", "open")
    assert fields(inputs([held(sl=None)], [OWN_STOP], venue=[on_venue()], rows=[row])) == []


@pytest.mark.parametrize(
    "orders",
    [
        [],
        [OWN_STOP, vorder("s2", coid="p1-stop-2")],  # two of its own
        [vorder("x", coid="p2-stop-1")],  # another position's
    ],
    ids=["none", "two", "another-positions"],
)
def test_a_held_position_without_exactly_one_own_stop_is_unprotected(orders: list[VenueOrder]) -> None:
    own = sum(1 for o in orders if (o.client_order_id or "").startswith("p1-"))
    rows = [
        OrderRow(str(o.client_order_id), o.order_id, str(o.client_order_id)[:2], "PROTECTED", "open") for o in orders
    ]
    [finding] = findings(inputs([PROTECTED], orders, venue=[on_venue()], rows=rows))
    assert finding == Finding("unprotected_exposure", "p1", f"{XBT}: {own} live stops of its own")


def test_a_stop_covering_less_than_the_position_is_unprotected_and_covering_it_exactly_is_not() -> None:
    partly = vorder("s1", size="2", filled="1.5")
    [finding] = findings(inputs([PROTECTED], [partly], venue=[on_venue()]))
    assert finding == Finding("unprotected_exposure", "p1", "stop covers 0.5 of 1")
    exactly = vorder("s1", size="2", filled="1")
    assert findings(inputs([PROTECTED], [exactly], venue=[on_venue()])) == ()
    more = vorder("s1", size="3", filled="1")
    assert findings(inputs([PROTECTED], [more], venue=[on_venue()])) == ()


def test_a_stop_on_the_wrong_side_of_the_mark_is_unprotected_without_a_mark_unknown() -> None:
    crossed = inputs([PROTECTED], [OWN_STOP], venue=[on_venue()], marks={XBT: D(95)})
    [finding] = findings(crossed)
    assert finding.field == "unprotected_exposure" and "mark" in finding.detail
    assert findings(inputs([PROTECTED], [OWN_STOP], venue=[on_venue()], marks={ETH: D(95)})) == ()
    no_trigger = vorder("s1", trigger=None)
    assert findings(inputs([PROTECTED], [no_trigger], venue=[on_venue()], marks={XBT: D(95)})) == ()


def test_a_short_covered_by_too_little_is_reported_for_its_size_before_its_side() -> None:
    short = held(side=PositionSide.SHORT, qty="2")
    stop = vorder("s1", side=Side.BUY, trigger="90")  # below the mark: crossed for a short, and covers 1 of 2
    [finding] = findings(inputs([short], [stop], venue=[on_venue(size="2")], marks={XBT: D(100)}))
    assert finding.detail == "stop covers 1 of 2"


@pytest.mark.parametrize(
    ("position", "venue"),
    [
        (held(), []),  # the venue holds nothing there
        (held(), [on_venue(size="0")]),
        (held(), [on_venue(ETH)]),
        (held(state="EXITING"), [on_venue()]),  # an exit is under way: not the protector's
        (held(state="PENDING_ENTRY"), [on_venue()]),
        (held(qty="0"), [on_venue()]),
    ],
    ids=["not-held", "zero-size", "other-symbol", "exiting", "pending", "flat"],
)
def test_only_an_exposed_protectable_position_the_venue_holds_needs_a_stop(
    position: RegistryPosition, venue: list[VenuePosition]
) -> None:
    assert "unprotected_exposure" not in fields(inputs([position], [], venue=venue))


# --- J3, J4, J5 ----------------------------------------------------------------------------------------------------


def test_every_unbooked_fill_is_a_finding() -> None:
    fill = VenueFill("f1", "o1", None, XBT, Side.BUY, D("0.5"), D(100), T0)
    assert findings(inputs(unbooked=[fill])) == (Finding("unbooked_fills", "f1", f"{XBT} buy 0.5 @ 100"),)


def test_a_row_recorded_open_must_rest_on_the_book() -> None:
    row = OrderRow("p1-stop-1", "s1", "p1", "PROTECTED", "open")
    assert findings(inputs(rows=[row])) == (
        Finding("order_status_drift", "p1-stop-1", "recorded open, not on the venue's book"),
    )
    assert fields(inputs([PROTECTED], [OWN_STOP], venue=[on_venue()], rows=[row])) == []  # by venue id
    by_client_id = vorder("other-venue-id", coid="p1-stop-1")
    row_no_venue_id = OrderRow("p1-stop-1", None, "p1", "PROTECTED", "open")
    assert fields(inputs([PROTECTED], [by_client_id], venue=[on_venue()], rows=[row_no_venue_id])) == []


@pytest.mark.parametrize("status", ["filled", "cancelled", "rejected"])
def test_a_row_recorded_settled_must_not_rest_on_the_book(status: str) -> None:
    row = OrderRow("p1-stop-1", "s1", "p1", "PROTECTED", status)
    assert findings(inputs([PROTECTED], [OWN_STOP], venue=[on_venue()], rows=[row])) == (
        Finding("order_status_drift", "p1-stop-1", f"recorded {status}, resting on the book"),
    )
    assert findings(inputs(rows=[row])) == ()


def test_a_row_still_being_sent_is_no_drift_either_way() -> None:
    row = OrderRow("p1-stop-1", "s1", "p1", "PROTECTED", "pending")
    assert findings(inputs([PROTECTED], [OWN_STOP], venue=[on_venue()], rows=[row])) == ()
    assert findings(inputs(rows=[row])) == ()


def test_stop_churn_is_more_placements_than_the_limit() -> None:
    assert findings(inputs(placements={"p1": 7, "p2": 6}), cycles=1) == (
        Finding("stop_churn", "p1", "7 stop placements in the last hour (limit 6)"),
    )


# --- grace and streaks -------------------------------------------------------------------------------------------


def test_a_finding_counts_only_past_its_grace_and_its_streak_restarts_when_it_clears() -> None:
    drift = inputs(rows=[OrderRow("c1", "v1", "p1", "PROTECTED", "open")])  # J4: grace 2
    clean = inputs()
    report, memory = evaluate(drift)
    assert (report.findings, len(report.pending)) == ((), 1)
    report, memory = evaluate(drift, memory)
    assert (report.findings, len(report.pending)) == ((), 1)
    report, memory = evaluate(drift, memory)
    assert len(report.findings) == 1 and report.pending == () and report.counters()["order_status_drift"] == 1
    _, memory = evaluate(clean, memory)
    assert memory == JointMemory({})
    report, _ = evaluate(drift, memory)
    assert report.findings == ()  # a new streak


def test_counters_name_every_joint_field() -> None:
    report, _ = evaluate(inputs(placements={"p1": 7}))
    assert report.counters() == {f: int(f == "stop_churn") for f in JOINT_FIELDS}
    assert report.counts == report.counters()


# --- every order and every position is looked at ------------------------------------------------------------------


def test_a_settled_order_listed_first_does_not_hide_a_stray_after_it() -> None:
    gone = vorder("g1", status=OrderStatus.CANCELLED)
    found = findings(inputs([PROTECTED], [gone, OWN_STOP, vorder("h1", trigger="90")], venue=[on_venue()]))
    assert [(f.field, f.key) for f in found] == [("stray_venue_orders", "h1")]


def test_each_position_is_checked_whatever_the_ones_before_it() -> None:
    not_held = held("p0", symbol=ETH, sl=None)  # the venue holds nothing on ETH: skipped
    bare_1 = held("p1", sl=None)
    bare_2 = held("p2", symbol="PF_SOLUSD", sl=None)
    venue = [on_venue(), on_venue("PF_SOLUSD")]
    found = findings(inputs([not_held, bare_1, bare_2], [], venue=venue))
    assert [(f.field, f.key) for f in found] == [("unprotected_exposure", "p1"), ("unprotected_exposure", "p2")]
