"""One example per counter and per action, with hand-built registry rows and venue snapshots."""

from __future__ import annotations

import dataclasses
from dataclasses import fields
from datetime import timedelta

from lifecycle.reconcile import (
    AdoptPending,
    ApplyFill,
    CloseFlat,
    ClosePhantom,
    ImportOrphan,
    MissingStop,
    OrderRef,
    QtyMismatch,
    ReconcileMemory,
    Reconciliation,
    ReconciliationReport,
    RelinkStop,
    reconcile,
)
from lifecycle.values import AccountSnapshot, PositionSide, RegistryPosition, Side, VenueFill
from specs.reconciliation import REPORT_FIELDS
from tests.reconcile.builders import NOW, D, fill, limit, pos, snap, stop, vpos

ORDERS = {
    "p1-entry": OrderRef("p1", "entry", "o-entry"),
    "p1-stop": OrderRef("p1", "stop", "sl-1"),
}


def run(
    registry: list[RegistryPosition],
    s: AccountSnapshot | None,
    memory: ReconcileMemory | None = None,
    known: frozenset[str] = frozenset(),
) -> Reconciliation:
    return reconcile(registry, known, ORDERS, s, NOW, memory)


def twice(registry: list[RegistryPosition], s: AccountSnapshot | None) -> tuple[Reconciliation, Reconciliation]:
    first = run(registry, s)
    return first, run(registry, s, first.memory)


def test_report_fields_follow_the_spec() -> None:
    names = tuple(f.name for f in fields(ReconciliationReport))
    assert names[: len(REPORT_FIELDS)] == REPORT_FIELDS
    assert tuple(ReconciliationReport().counters()) == REPORT_FIELDS


def test_missing_snapshot_classifies_nothing() -> None:
    result = run([pos("p1")], None)
    assert not result.report.complete
    assert result.report.counters() == dict.fromkeys(REPORT_FIELDS, 0)
    assert result.actions == ()


def test_partial_snapshot_is_not_read_as_flat() -> None:
    # The positions query failed: an empty position list must not become a phantom.
    result = run([pos("p1")], snap(extra={"partial": "positions query failed"}))
    assert not result.report.complete
    assert "positions query failed" in result.report.reason
    assert result.actions == ()


def test_snapshot_parts_more_than_five_seconds_apart_are_incomplete() -> None:
    assert not run([], snap(margin_lag=timedelta(seconds=6))).report.complete
    assert run([], snap(margin_lag=timedelta(seconds=5))).report.complete


def test_consistent_world_reports_nothing() -> None:
    result = run([pos("p1")], snap((vpos(),), (stop("sl-1"),)))
    assert result.report.complete
    assert result.actions == ()
    assert result.report.counters() == dict.fromkeys(REPORT_FIELDS, 0)


def test_orphan_needs_two_consecutive_complete_snapshots() -> None:
    s = snap((vpos(side=PositionSide.SHORT, size="2"),))
    first, second = twice([], s)
    assert first.report.orphaned == 0 and first.actions == ()
    assert first.suspected == (("orphaned", "PF_XBTUSD", ""),)
    assert second.report.orphaned == 1
    assert second.actions == (ImportOrphan("PF_XBTUSD", PositionSide.SHORT, D("2"), D("50000")),)


def test_a_blind_cycle_breaks_the_evidence_chain() -> None:
    s = snap((vpos(),))
    first = run([], s)
    blind = run([], None, first.memory)
    assert run([], s, blind.memory).report.orphaned == 0


def test_phantom_exposed_position_closed_after_second_sighting() -> None:
    first, second = twice([pos("p1")], snap())
    assert first.report.phantom == 0 and first.actions == ()
    assert second.report.phantom == 1
    assert second.actions == (ClosePhantom("p1"),)


def test_young_position_is_never_phantom() -> None:
    young = pos("p1", created=NOW - timedelta(seconds=10))
    _, second = twice([young], snap())
    assert second.report.phantom == 0 and second.actions == ()


def test_pending_entry_with_nothing_on_venue_is_phantom() -> None:
    _, second = twice([pos("p1", state="PENDING_ENTRY", qty="0", sl=None)], snap())
    assert second.report.phantom == 1
    assert second.actions == (ClosePhantom("p1"),)


def test_pending_entry_with_live_order_waits() -> None:
    registry = [pos("p1", state="ENTRY_OPEN", qty="0", sl=None)]
    _, second = twice(registry, snap(orders=(limit("o-entry", "p1-entry"),)))
    assert second.actions == ()
    assert second.report.counters() == dict.fromkeys(REPORT_FIELDS, 0)


def test_qty_synced_by_a_fill_missing_from_the_ledger() -> None:
    f = fill("f1", "o-entry", "p1-entry", Side.BUY, "0.5")
    result = run([pos("p1")], snap((vpos(size="1.5"),), (stop("sl-1"),), (f,)))
    assert result.actions == (ApplyFill("p1", f, True),)
    assert result.report.qty_synced == 1
    assert result.report.qty_mismatch == 0


def test_known_fills_are_not_applied_again() -> None:
    f = fill("f1", "o-entry", "p1-entry", Side.BUY, "0.5")
    result = run([pos("p1", qty="1.5")], snap((vpos(size="1.5"),), (stop("sl-1"),), (f,)), known=frozenset({"f1"}))
    assert result.actions == ()


def test_stop_triggered_while_away_closes_by_evidence_not_phantom() -> None:
    # The stop's fill carries no client order id; it is matched by the position's sl_order_id.
    f = fill("f9", "sl-1", None, Side.SELL, "1")
    result = run([pos("p1")], snap(fills=(f,)))
    assert result.actions == (ApplyFill("p1", f, False), CloseFlat("p1"))
    assert result.report.qty_synced == 1
    assert result.report.phantom == 0


def test_unexplained_difference_is_a_mismatch() -> None:
    result = run([pos("p1")], snap((vpos(size="2"),), (stop("sl-1"),)))
    assert result.actions == (QtyMismatch("p1", D("1"), D("2")),)
    assert result.report.qty_mismatch == 1


def test_side_flip_is_a_signed_mismatch() -> None:
    result = run([pos("p1")], snap((vpos(side=PositionSide.SHORT),), (stop("sl-1"),)))
    assert QtyMismatch("p1", D("1"), D("-1")) in result.actions


def test_foreign_fill_on_a_held_symbol_is_an_external_add_that_explains_the_venue() -> None:
    # A hand-placed buy on our long (no cliOrdId, after the position was created): lifecycle.fills books it as an
    # external add, so the venue's larger size is explained (qty_synced), not a mismatch needing an operator.
    manual = fill("m1", "o-manual", None, Side.BUY, "1")
    result = run([pos("p1")], snap((vpos(size="2"),), (stop("sl-1"),), (manual,)))
    assert ApplyFill("p1", manual, True) in result.actions
    assert result.unmatched_fills == ()
    assert result.report.qty_synced == 1 and result.report.qty_mismatch == 0


def test_foreign_fill_through_zero_closes_the_position_and_leaves_the_rest_unmatched() -> None:
    # Selling 3 against a long of 1 took it through zero: 1 closes it, 2 are a short nobody here opened. The fill
    # door closes the position, so the venue's short is a first sighting of an orphan, not a mismatch; the next cycle
    # (the position closed, the fill judged) adopts the short.
    manual = fill("m1", "o-manual", None, Side.SELL, "3")
    s = snap((vpos(side=PositionSide.SHORT, size="2"),), (stop("sl-1"),), (manual,))
    result = run([pos("p1")], s)
    assert ApplyFill("p1", dataclasses.replace(manual, size=D("1")), False) in result.actions
    assert result.unmatched_fills == (dataclasses.replace(manual, size=D("2")),)
    assert result.report.qty_mismatch == 0
    assert not any(isinstance(a, QtyMismatch | CloseFlat | MissingStop | ImportOrphan) for a in result.actions)
    assert result.suspected == (("orphaned", "PF_XBTUSD", ""),)
    after = run([], s, result.memory, known=frozenset({"m1"}))
    assert after.actions == (ImportOrphan("PF_XBTUSD", PositionSide.SHORT, D("2"), D("50000")),)


def test_a_position_at_zero_without_this_cycles_fills_is_still_compared() -> None:
    # Only this cycle's fills make a position closing: an exposed row left at zero (its close never happened) against
    # a venue position is a mismatch an operator must see, never an orphan imported beside it.
    # Nor is a stop demanded for it: there is nothing of its own to cover.
    result = run([pos("p1", qty="0", sl=None)], snap((vpos(size="1"),)))
    assert result.actions == (QtyMismatch("p1", D("0"), D("1")),)
    assert result.suspected == ()


def test_a_symbol_left_to_its_orphan_does_not_end_the_comparison_of_the_symbols_after_it() -> None:
    # PF_ETHUSD sorts first: its position is closed through zero by a hand and the rest suspected as an orphan;
    # PF_XBTUSD after it is still compared (here: a mismatch).
    eth = VenueFill("m1", "o-manual", None, "PF_ETHUSD", Side.SELL, D("3"), D("3000"), NOW)
    registry = [pos("p1", qty="1", sl="sl-1"), pos("p2", symbol="PF_ETHUSD", sl="sl-2")]
    s = snap(
        (vpos(size="2"), vpos(symbol="PF_ETHUSD", side=PositionSide.SHORT, size="2")),
        (stop("sl-1"), stop("sl-2", symbol="PF_ETHUSD")),
        (eth,),
    )
    result = run(registry, s)
    assert result.suspected == (("orphaned", "PF_ETHUSD", ""),)
    assert QtyMismatch("p1", D("1"), D("2")) in result.actions


def test_one_position_closed_through_zero_beside_another_on_its_symbol_is_left_out_of_the_comparison() -> None:
    # p1's own exit closes it; p2 holds the symbol on: the venue's net is p2's alone, explained by p1's fill (synced),
    # so nothing is a mismatch and no orphan is suspected.
    exit_ = fill("f1", "o-exit", "p1-exit", Side.SELL, "1")
    orders = {**ORDERS, "p1-exit": OrderRef("p1", "exit", "o-exit")}
    registry = [pos("p1"), pos("p2", qty="2", sl="sl-2")]
    result = reconcile(
        registry,
        frozenset(),
        orders,
        snap((vpos(size="2"),), (stop("sl-1"), stop("sl-2", size="2")), (exit_,)),
        NOW,
        None,
    )
    assert (result.report.qty_mismatch, result.report.qty_synced) == (0, 1)
    assert result.suspected == ()


def _hand_sell_then_liquidation_then_our_entry(hand_before_entry: timedelta) -> Reconciliation:
    # A hand sells 0.5 on a symbol we do not hold; a liquidation with no fills we can see flattens it; our entry then
    # buys 1 and its stop rests. The position is dated by its entry's fill (the daemon's rule), the ledger holds it.
    entry = fill("f1", "o-entry", "p1-entry", Side.BUY, "1")
    hand = dataclasses.replace(fill("m1", "o-manual", None, Side.SELL, "0.5"), time=entry.time - hand_before_entry)
    registry = [pos("p1", created=entry.time)]
    return run(registry, snap((vpos(size="1"),), (stop("sl-1"),), (hand, entry)), known=frozenset({"f1"}))


def test_a_hand_fill_stamped_before_our_entry_is_not_judged_against_it() -> None:
    # One millisecond is enough: the hand's sell predates the position, so it is nobody's here, and the registry
    # agrees with the venue.
    result = _hand_sell_then_liquidation_then_our_entry(timedelta(milliseconds=1))
    assert [f.fill_id for f in result.unmatched_fills] == ["m1"]
    assert result.actions == ()
    assert result.report.qty_mismatch == 0


def test_a_hand_fill_sharing_our_entrys_stamp_is_judged_after_it_and_a_contradiction_is_reported() -> None:
    # Within one stamp the venue publishes no order, and a hand's fill is judged after ours (lifecycle.fills). Here
    # that reading is wrong (the hand came first and a liquidation erased it): the booked close leaves 0.5 against the
    # venue's 1, which is reported as a mismatch for an operator, never absorbed in silence.
    result = _hand_sell_then_liquidation_then_our_entry(timedelta(0))
    assert any(isinstance(a, ApplyFill) and a.fill.fill_id == "m1" and not a.is_entry for a in result.actions)
    assert QtyMismatch("p1", D("0.5"), D("1")) in result.actions
    assert result.report.qty_mismatch == 1


def test_foreign_fill_on_a_symbol_we_do_not_hold_is_unmatched() -> None:
    manual = fill("m1", "o-manual", None, Side.BUY, "1")
    other = VenueFill("m2", "o-x", None, "PF_ETHUSD", Side.BUY, D("1"), D("3000"), manual.time)
    result = run([pos("p1")], snap((vpos(size="1"),), (stop("sl-1"),), (other,)))
    assert result.unmatched_fills == (other,)


def test_pending_entry_filled_is_adopted() -> None:
    f = fill("f1", "o-entry", "p1-entry", Side.BUY, "1")
    result = run([pos("p1", state="ENTRY_OPEN", qty="0", sl=None)], snap((vpos(),), fills=(f,)))
    assert result.actions == (AdoptPending("p1", (f,)),)
    assert result.report.pending_adopted == 1
    assert result.report.qty_synced == 0 and result.report.qty_mismatch == 0


def test_partly_filled_live_entry_records_fills_without_adoption() -> None:
    f = fill("f1", "o-entry", "p1-entry", Side.BUY, "0.4")
    registry = [pos("p1", state="ENTRY_OPEN", qty="0", sl=None)]
    result = run(registry, snap((vpos(size="0.4"),), (limit("o-entry", "p1-entry"),), (f,)))
    assert result.actions == (ApplyFill("p1", f, True),)
    assert result.report.pending_adopted == 0


def test_short_position_consistent() -> None:
    registry = [pos("p1", side=PositionSide.SHORT)]
    result = run(registry, snap((vpos(side=PositionSide.SHORT),), (stop("sl-1", side=Side.BUY),)))
    assert result.actions == ()


def test_live_stop_relinked_when_id_missing_or_wrong() -> None:
    for sl in (None, "sl-stale"):
        result = run([pos("p1", state="OPEN", sl=sl)], snap((vpos(),), (stop("sl-1"),)))
        assert result.actions == (RelinkStop("p1", "sl-1"),)


def test_stop_on_the_wrong_side_does_not_protect() -> None:
    result = run([pos("p1", sl=None)], snap((vpos(),), (stop("sl-x", side=Side.BUY),)))
    assert result.actions == (MissingStop("p1"),)


def test_exposed_without_stop_is_missing_stop() -> None:
    result = run([pos("p1", sl="sl-1")], snap((vpos(),)))
    assert result.actions == (MissingStop("p1"),)


def test_dedupe_logged_then_deduped_then_logged_again() -> None:
    mismatch = snap((vpos(size="2"),), (stop("sl-1"),))
    clean = snap((vpos(),), (stop("sl-1"),))
    a = run([pos("p1")], mismatch)
    b = run([pos("p1")], mismatch, a.memory)
    assert (a.report.state_adjustments_logged, a.report.state_adjustments_deduped) == (1, 0)
    assert (b.report.state_adjustments_logged, b.report.state_adjustments_deduped) == (0, 1)
    assert b.logged == ()
    changed = run([pos("p1")], snap((vpos(size="3"),), (stop("sl-1"),)), b.memory)
    assert (changed.report.state_adjustments_logged, changed.report.state_adjustments_deduped) == (1, 0)
    gone = run([pos("p1")], clean, changed.memory)
    assert gone.report.state_adjustments_logged == 0
    back = run([pos("p1")], snap((vpos(size="3"),), (stop("sl-1"),)), gone.memory)
    assert back.report.state_adjustments_logged == 1


def test_terminal_registry_rows_are_ignored() -> None:
    _, second = twice([pos("p1", state="CLOSED", qty="0")], snap())
    assert second.actions == ()
