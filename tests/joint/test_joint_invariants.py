"""Every joint invariant (registry x venue, specs.reconciliation.JOINT_INVARIANTS) broken on purpose against the
real ccxt client over HTTP to the simulator, and seen reported by reconciliation once its grace has passed."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from exchange.errors import VenueUnavailable
from specs.reconciliation import JOINT_FIELDS, JOINT_INVARIANTS
from tests.daemon.harness import World, captured_events, world

XBT = "PF_XBTUSD"


def enter_long(w: World) -> str:
    w.strategy.entries[XBT] = "long"
    w.advance(60)
    w.tick()
    w.strategy.entries.clear()
    [pos] = w.registry.active_positions()
    assert pos.state == "PROTECTED"
    w.protect()  # the protect job reads the marks the side check uses
    return pos.uid


def cycles(w: World, n: int) -> dict[str, int]:
    """Run `n` reconciliations; the joint counters of the last one."""
    assert n >= 1
    for _ in range(n):
        w.advance(5)
        w.reconcile()
    assert w.ctx.last_joint is not None
    return w.ctx.last_joint.counters()


def grace(field: str) -> int:
    return next(j.grace_cycles for j in JOINT_INVARIANTS if j.field == field)


def test_a_clean_position_breaks_no_joint_invariant(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        enter_long(w)
        assert cycles(w, 3) == dict.fromkeys(JOINT_FIELDS, 0)


def test_j1_a_stop_left_live_by_a_closed_position_is_a_stray(tmp_path: Path) -> None:
    with world(tmp_path) as w, captured_events() as ev:
        uid = enter_long(w)
        stop = str(w.registry.get(uid).sl_order_id)

        def cancel_fails(order_id: str) -> None:
            raise VenueUnavailable(f"cancel {order_id}: timed out")

        w.venue.cancel_order = cancel_fails  # type: ignore[method-assign]
        w.sim.close_position_direct(XBT)
        counts = cycles(w, grace("stray_venue_orders") + 1)
        assert w.registry.get(uid).state == "CLOSED"
        assert counts["stray_venue_orders"] == 1
        assert [f["key"] for f in ev.named("JOINT_INVARIANT") if f["invariant"] == "stray_venue_orders"][-1] == stop
        report = ev.named("RECONCILIATION_REPORT")[-1]
        assert report["stray_venue_orders"] == 1
        # Once the venue answers again, the stray is cancelled by the close's settle and the invariant clears.
        del w.venue.cancel_order
        assert cycles(w, 1)["stray_venue_orders"] == 0
        assert stop not in {o.order_id for o in w.sim.open_orders()}


def test_j1_a_reduce_only_order_of_no_position_on_a_held_symbol_is_a_stray(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        enter_long(w)
        pos = w.registry.active_positions()[0]
        assert pos.entry_price is not None
        w.sim.place_order(
            symbol=XBT,
            side="sell",
            order_type="lmt",
            size=Decimal("0.001"),
            limit_price=pos.entry_price * 2,
            reduce_only=True,
        )
        assert cycles(w, grace("stray_venue_orders") + 1)["stray_venue_orders"] == 1


def test_j2_an_exposed_position_whose_stop_vanished_is_unprotected(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        uid = enter_long(w)
        w.sim.cancel_silently(str(w.registry.get(uid).sl_order_id))
        # Reconciliation asks protect to re-place it; a venue refusing every stop keeps it unprotected.
        w.sim.faults.add("reject", "sendorder", count=None, status="insufficientAvailableFunds")
        assert cycles(w, grace("unprotected_exposure") + 1)["unprotected_exposure"] == 1
        w.sim.faults.clear()
        w.protect()
        assert cycles(w, 1)["unprotected_exposure"] == 0


def stray_stop_fill(w: World, *, lose_the_record: bool = False) -> str:
    """A hand closes our long, its stop cannot be cancelled, and it later fills against a hand's new long: our
    order's fill, no position's (DST seed 2016's class). `lose_the_record`: the door's unowned record of it fails (a
    bug, a write that failed). The uid of the closed position; the venue is flat again."""
    uid = enter_long(w)
    pos = w.registry.get(uid)
    stop = str(pos.sl_order_id)

    def cancel_fails(order_id: str) -> None:
        raise VenueUnavailable(f"cancel {order_id}: timed out")

    w.venue.cancel_order = cancel_fails  # type: ignore[method-assign]
    w.sim.close_position_direct(XBT)
    cycles(w, 1)
    assert w.registry.get(uid).state == "CLOSED"
    if lose_the_record:
        w.registry.record_unowned = lambda *args, **kwargs: False  # type: ignore[method-assign]
    w.sim.open_position_direct(XBT, "long", pos.target_qty)
    assert w.sim.fill_now(stop) is not None
    del w.venue.cancel_order
    return uid


def test_j3_a_fill_the_door_never_accounted_for_is_unbooked(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        stray_stop_fill(w, lose_the_record=True)  # nothing accounts for the stray's fill
        w.advance(5)
        w.exits()
        counts = cycles(w, grace("unbooked_fills") + 1)
        assert counts["unbooked_fills"] == 1


def test_a_fill_no_position_can_own_is_recorded_and_reported_once_not_counted_every_cycle(tmp_path: Path) -> None:
    """Before, J3 counted such a fill every cycle while it was in the fill window and escalated to a pause of new
    entries that only a restart lifted, and the restart's first read of the fill brought back. The exposure the
    hand's trade moved beyond our position is reconciliation's: an orphan, adopted."""
    with world(tmp_path) as w, captured_events() as ev:
        uid = enter_long(w)
        held = w.registry.get(uid).remaining_qty
        w.sim.open_position_direct(XBT, "short", held * 3)
        w.advance(5)
        w.exits()  # the fill poll: the door meets the fill
        counts = cycles(w, grace("unbooked_fills") + 3)
        w.exits()
        assert cycles(w, 1)["unbooked_fills"] == counts["unbooked_fills"] == 0
        [record] = w.registry.unowned_fills()
        # The hand's sell took the position through zero: the part beyond it is the unowned record.
        assert (record["symbol"], record["side"], record["qty"]) == (XBT, "sell", str(held * 2))
        assert "beyond what position" in str(record["reason"])
        [reported] = ev.named("UNOWNED_FILL")
        assert reported["fill_id"] == record["fill_id"]
        assert not [f for f in ev.named("JOINT_INVARIANT") if f["invariant"] == "unbooked_fills"]
        # The exposure it moved is reconciliation's: the venue's short, adopted as an orphan.
        assert [(p.side, p.remaining_qty) for p in w.registry.active_positions()] == [("short", held * 2)]


def test_j4_an_order_row_settled_while_it_rests_on_the_book_drifts(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        uid = enter_long(w)
        [stop_row] = [o for o in w.registry.orders(uid) if o.purpose == "stop"]
        w.registry.mark_order(stop_row.client_order_id, status="cancelled", reason="test: a wrong row")
        assert cycles(w, grace("order_status_drift"))["order_status_drift"] == 0  # within its grace
        assert cycles(w, 1)["order_status_drift"] == 1


def test_j5_more_stop_placements_in_an_hour_than_the_bound_is_churn(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        uid = enter_long(w)
        limit = w.ctx.limits.max_replacements_per_hour
        for _ in range(limit):  # placements by some path that bypassed the planner's own bound
            w.registry.record_order_intent(
                uid, purpose="stop", side="sell", order_type="stop", qty=Decimal("0.001"), trigger_price=Decimal(1)
            )
        assert cycles(w, 1)["stop_churn"] == 1


@pytest.mark.parametrize("field", JOINT_FIELDS)
def test_every_joint_invariant_is_reported_and_has_thresholds(field: str) -> None:
    from lifecycle.events import EVENTS, Ev
    from specs.reconciliation import ALL_CLASSES

    assert field in EVENTS[Ev.RECONCILIATION_REPORT].fields
    assert any(c.field == field for c in ALL_CLASSES)


def test_the_tools_judge_the_joint_invariants_with_the_daemons_own_assembly(tmp_path: Path) -> None:
    """`pre_flight_check` and `check_tp_coverage` read `tools._joint.joint_now`, which assembles the joint inputs
    with the reconcile job's own function (operations.reconciliation.joint_inputs) over the registry opened
    read-only. Before, the tools assembled them by hand and passed no stop placements: J5 `stop_churn` could never
    show in a tool while the daemon escalated on it. The window is the venue's hour (the snapshot's server time),
    not the host's: the simulator's clock here is months from the host's."""
    from settings.config import load_settings
    from tools._joint import joint_now

    with world(tmp_path) as w:
        uid = enter_long(w)
        settings = load_settings(None)
        assert joint_now(settings, w.venue, tmp_path / "registry.db").findings == ()
        for _ in range(settings.protect.max_replacements_per_hour):
            w.registry.record_order_intent(
                uid, purpose="stop", side="sell", order_type="stop", qty=Decimal("0.001"), trigger_price=Decimal(1)
            )
        now = joint_now(settings, w.venue, tmp_path / "registry.db")
        assert [(f.field, f.key) for f in now.findings] == [("stop_churn", uid)]
        assert cycles(w, 1)["stop_churn"] == 1  # the daemon's evaluation agrees


def test_a_stray_stop_fill_of_a_closed_position_is_recorded_against_it_and_does_not_pause_entries(
    tmp_path: Path,
) -> None:
    """The stop of a position closed by hand could not be cancelled; a hand then bought again and the old stop
    filled against that (DST seed 2016's class): the fill is our order's but no position's. It is recorded once
    against the closed position and reported; J3 does not count it every cycle and escalate to a pause of new
    entries (before: `ESCALATION field=unbooked_fills`, entries paused until a restart, and again after it)."""
    with world(tmp_path) as w, captured_events() as ev:
        uid = stray_stop_fill(w)
        for _ in range(grace("unbooked_fills") + 4):
            w.advance(5)
            w.exits()
            w.reconcile()
        [record] = w.registry.unowned_fills()
        assert record["position"] == uid and "stray" in str(record["reason"])
        assert len(ev.named("UNOWNED_FILL")) == 1
        assert not [f for f in ev.named("JOINT_INVARIANT") if f["invariant"] == "unbooked_fills"]
        assert not ev.named("ESCALATION")
        assert w.ctx.entries_allowed
        assert w.registry.active_positions() == []
