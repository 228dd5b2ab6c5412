"""Reconciliation behaviours no test pinned (found by mutation testing, issue 15)."""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from datetime import timedelta

import pytest

from lifecycle.reconcile import (
    AdoptPending,
    ApplyFill,
    CloseFlat,
    ClosePhantom,
    ImportOrphan,
    Issue,
    IssueDeduper,
    MissingStop,
    OrderRef,
    QtyMismatch,
    ReconcileMemory,
    Reconciliation,
    ReconciliationReport,
    RelinkStop,
    reconcile,
)
from lifecycle.values import AccountSnapshot, OrderStatus, PositionSide, RegistryPosition, Side
from tests.reconcile.builders import NOW, T0, D, fill, limit, pos, snap, stop, vpos

ORDERS = {"p1-entry": OrderRef("p1", "entry", "o-entry"), "p1-stop": OrderRef("p1", "stop", "sl-1")}


def run(registry: list[RegistryPosition], s: AccountSnapshot, memory: ReconcileMemory | None = None) -> Reconciliation:
    return reconcile(registry, frozenset(), ORDERS, s, NOW, memory)


def twice(registry: list[RegistryPosition], s: AccountSnapshot) -> Reconciliation:
    return run(registry, s, run(registry, s).memory)


def test_an_orphan_smaller_than_one_contract_keeps_its_side() -> None:
    for side in (PositionSide.SHORT, PositionSide.LONG):
        second = twice([], snap((vpos(side=side, size="0.5"),)))
        assert second.actions == (ImportOrphan("PF_XBTUSD", side, D("0.5"), D("50000")),)
        assert second.issues[0].detail == f"{side.value} 0.5"


def test_an_orphan_of_exactly_one_contract_keeps_its_side() -> None:
    for side in (PositionSide.SHORT, PositionSide.LONG):
        second = twice([], snap((vpos(side=side, size="1"),)))
        assert second.actions == (ImportOrphan("PF_XBTUSD", side, D("1"), D("50000")),)


def test_a_pending_entry_whose_fill_is_already_in_the_ledger_is_adopted_not_closed_as_phantom() -> None:
    # The ledger already holds the entry (remaining 1) and no new fill arrives: adopt it with no fills to record,
    # on the first sighting and on the second; never the phantom path.
    registry = [pos("p1", state="PENDING_ENTRY", qty="1", sl=None)]
    s = snap((vpos(size="1"),))
    first = run(registry, s)
    assert first.actions[0] == AdoptPending("p1", ())
    assert first.report.pending_adopted == 1 and first.report.phantom == 0
    second = run(registry, s, first.memory)
    assert second.actions[0] == AdoptPending("p1", ())
    assert second.report.phantom == 0


# --- more behaviours found by `make mutate` ----------------------------------------------------------------------

ORDERS_X = {
    **ORDERS,
    "p1-exit": OrderRef("p1", "exit", "o-exit"),
    "p2-entry": OrderRef("p2", "entry", "o2-entry"),
    "p2-exit": OrderRef("p2", "exit", "o2-exit"),
}


def run_x(
    registry: list[RegistryPosition],
    s: AccountSnapshot,
    memory: ReconcileMemory | None = None,
    orders: dict[str, OrderRef] | None = None,
) -> Reconciliation:
    return reconcile(registry, frozenset(), ORDERS_X if orders is None else orders, s, NOW, memory)


def test_a_pending_entry_filled_and_exited_within_one_cycle_is_adopted_and_closed_flat() -> None:
    entry = fill("f1", "o-entry", "p1-entry", Side.BUY, "1")
    exit_ = fill("f2", "o-exit", "p1-exit", Side.SELL, "1", minute=1)
    result = run_x([pos("p1", state="PENDING_ENTRY", qty="0", sl=None)], snap(fills=(entry, exit_)))
    assert result.actions == (AdoptPending("p1", (entry,)), ApplyFill("p1", exit_, False), CloseFlat("p1"))


def test_a_pending_entry_adopted_while_the_venue_shows_nothing_waits_for_the_next_cycle() -> None:
    entry = fill("f1", "o-entry", "p1-entry", Side.BUY, "1")
    result = run_x([pos("p1", state="PENDING_ENTRY", qty="0", sl=None)], snap(fills=(entry,)))
    assert result.actions == (AdoptPending("p1", (entry,)),)
    assert result.report.qty_mismatch == 0


def test_a_position_exactly_the_young_grace_old_can_be_a_phantom_and_a_younger_one_cannot() -> None:
    old = pos("p1", created=NOW - timedelta(seconds=30))
    assert twice([old], snap()).actions == (ClosePhantom("p1"),)
    young = pos("p1", created=NOW - timedelta(seconds=29.5))
    assert twice([young], snap()).actions == ()


def test_a_young_pending_entry_is_never_phantom() -> None:
    young = pos("p1", state="PENDING_ENTRY", qty="0", sl=None, created=NOW - timedelta(seconds=10))
    first = run(young_list := [young], snap())
    assert first.actions == () and first.suspected == ()
    assert run(young_list, snap(), first.memory).actions == ()


def test_an_exit_overfilled_by_the_venue_is_a_mismatch_not_a_phantom() -> None:
    over = fill("f1", "o-exit", "p1-exit", Side.SELL, "1.5")
    result = run_x([pos("p1")], snap(fills=(over,)))
    assert result.actions == (ApplyFill("p1", over, False), QtyMismatch("p1", D("-0.5"), D("0")))


def test_an_exposed_position_flat_by_the_ledger_while_the_venue_lags_gets_no_stop_demand() -> None:
    exit_ = fill("f1", "o-exit", "p1-exit", Side.SELL, "1")
    result = run_x([pos("p1", sl=None)], snap((vpos(),), fills=(exit_,)))
    assert not any(isinstance(a, MissingStop | RelinkStop) for a in result.actions)
    # The door closes it; what the venue still shows is a first orphan sighting, confirmed only by a second snapshot.
    assert result.report.qty_mismatch == 0
    assert result.suspected == (("orphaned", "PF_XBTUSD", ""),)


def test_a_live_entry_order_known_only_by_its_client_id_keeps_the_entry_in_flight() -> None:
    orders = {"p1-entry": OrderRef("p1", "entry", None)}
    registry = [pos("p1", state="ENTRY_OPEN", qty="0", sl=None)]
    s = snap(orders=(limit("o-unrecorded", "p1-entry"),))
    assert twice(registry, s).actions == ()
    assert run_x(registry, s, run_x(registry, s, orders=orders).memory, orders=orders).actions == ()


def test_a_finished_order_listed_before_the_live_entry_does_not_hide_it() -> None:
    done = replace(limit("o-old", "x-old"), status=OrderStatus.CANCELLED)
    registry = [pos("p1", state="ENTRY_OPEN", qty="0", sl=None)]
    assert twice(registry, snap(orders=(done, limit("o-entry", "p1-entry")))).actions == ()


def test_an_entry_in_flight_is_never_a_mismatch_while_the_venue_fills_it() -> None:
    registry = [pos("p1", state="ENTRY_OPEN", qty="0", sl=None)]
    result = run_x(registry, snap((vpos(size="0.5"),), (limit("o-entry", "p1-entry"),)))
    assert result.report.qty_mismatch == 0 and result.actions == ()


def test_the_stop_relinked_detail_names_the_old_id_or_a_dash() -> None:
    missing = run_x([pos("p1", sl=None)], snap((vpos(),), (stop("sl-9"),)))
    assert [i.detail for i in missing.issues] == ["- -> sl-9"]
    wrong = run_x([pos("p1", sl="sl-old")], snap((vpos(),), (stop("sl-9"),)))
    assert [i.detail for i in wrong.issues] == ["sl-old -> sl-9"]


# Several positions on one symbol (the registry allows one active position per symbol, but reconciliation must
# judge each row it is given) and several symbols: no position or symbol hides the ones after it.


def test_an_orphan_symbol_does_not_hide_the_symbols_after_it() -> None:
    s = snap((vpos("PF_ETHUSD"), vpos(size="2")), (stop("sl-1"),))
    second = twice([pos("p1")], s)  # PF_ETHUSD sorts first
    assert second.report.orphaned == 1 and second.report.qty_mismatch == 1


def test_a_pending_position_does_not_hide_the_next_one_on_its_symbol() -> None:
    registry = [pos("p1", state="PENDING_ENTRY", qty="0", sl=None, created=NOW), pos("p2", qty="1", sl="sl-2")]
    result = run_x(registry, snap((vpos(size="2"),), (stop("sl-2"),)))
    assert result.actions[0] == QtyMismatch("p2", D("1"), D("2"))


def test_a_phantom_suspect_does_not_hide_a_flat_position_after_it_on_its_symbol() -> None:
    registry = [pos("p1"), pos("p2", created=T0 + timedelta(minutes=1), qty="0", sl=None)]
    assert CloseFlat("p2") in run_x(registry, snap()).actions


def test_a_mismatch_is_reported_on_the_first_position_compared() -> None:
    registry = [pos("p1"), pos("p2", created=T0 + timedelta(minutes=1), sl="sl-2")]
    result = run_x(registry, snap((vpos(size="3"),), (stop("sl-1"), stop("sl-2"))))
    assert [a for a in result.actions if isinstance(a, QtyMismatch)] == [QtyMismatch("p1", D("2"), D("3"))]


def test_only_positions_whose_fills_changed_their_quantity_are_reported_synced() -> None:
    # p1's fills net to zero; p2's fill explains the venue.
    f1 = fill("f1", "o-entry", "p1-entry", Side.BUY, "1")
    f2 = fill("f2", "o-exit", "p1-exit", Side.SELL, "1", minute=1)
    f3 = fill("f3", "o2-entry", "p2-entry", Side.BUY, "1", minute=2)
    registry = [pos("p1"), pos("p2", created=T0 + timedelta(minutes=1), sl="sl-2")]
    result = run_x(registry, snap((vpos(size="3"),), (stop("sl-1"), stop("sl-2", size="2")), (f1, f2, f3)))
    assert [(i.cls, i.uid) for i in result.issues if i.cls == "qty_synced"] == [("qty_synced", "p2")]


def test_an_in_flight_entry_without_fills_is_not_reported_synced_beside_a_synced_position() -> None:
    f3 = fill("f3", "o2-entry", "p2-entry", Side.BUY, "1")
    registry = [
        pos("p1", state="ENTRY_OPEN", qty="0", sl=None),
        pos("p2", created=T0 + timedelta(minutes=1), sl="sl-2"),
    ]
    s = snap((vpos(size="2"),), (limit("o-entry", "p1-entry"), stop("sl-2", size="2")), (f3,))
    result = run_x(registry, s)
    assert [(i.cls, i.uid) for i in result.issues if i.cls == "qty_synced"] == [("qty_synced", "p2")]


def test_a_stop_recorded_on_another_position_is_never_taken_over() -> None:
    # p2 (another symbol row for the same key) records sl-2 as its stop; p1 has none and must not adopt it.
    registry = [pos("p1", sl=None), pos("p2", created=T0 + timedelta(minutes=1), sl="sl-2")]
    result = run_x(registry, snap((vpos(size="2"),), (stop("sl-2"),)), orders=dict(ORDERS))
    assert MissingStop("p1") in result.actions
    assert not any(isinstance(a, RelinkStop) and a.uid == "p1" for a in result.actions)


def test_the_stop_check_goes_on_after_a_protected_or_phantom_suspect_position() -> None:
    protected = pos("p1", "PF_ETHUSD", sl="sl-e")
    suspect_ = pos("p0", "PF_SOLUSD", created=T0 - timedelta(minutes=1))
    bare = pos("p2", created=T0 + timedelta(minutes=1), sl=None)
    s = snap((vpos("PF_ETHUSD"), vpos()), (stop("sl-e", symbol="PF_ETHUSD"),))
    assert MissingStop("p2") in run_x([suspect_, protected, bare], s).actions


VALUES = [
    pos("p1"),
    OrderRef("p1", "entry"),
    ApplyFill("p1", fill("f1", "o", None, Side.BUY, "1"), True),
    AdoptPending("p1", ()),
    ImportOrphan("PF_XBTUSD", PositionSide.LONG, D("1"), D("1")),
    ClosePhantom("p1"),
    CloseFlat("p1"),
    QtyMismatch("p1", D("1"), D("2")),
    RelinkStop("p1", "sl"),
    MissingStop("p1"),
    Issue("phantom", "PF_XBTUSD", "p1", "d"),
    ReconciliationReport(),
    IssueDeduper(),
    ReconcileMemory(),
]


@pytest.mark.parametrize("value", VALUES, ids=[type(v).__name__ for v in VALUES])
def test_inputs_outputs_and_memory_are_immutable_hashable_values(value: object) -> None:
    field_name = dataclasses.fields(value)[0].name  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, field_name, None)
    assert hash(value) == hash(dataclasses.replace(value))  # type: ignore[type-var]


def test_a_reconciliation_result_is_immutable() -> None:
    result = run_x([pos("p1")], snap((vpos(),), (stop("sl-1"),)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.actions = ()  # type: ignore[misc]


def test_issues_sort_by_class_symbol_uid_then_detail() -> None:
    a, b = Issue("missing_stop", "PF_XBTUSD", "p1", "x"), Issue("orphaned", "PF_ETHUSD", "", "y")
    assert sorted([b, a]) == [a, b]
