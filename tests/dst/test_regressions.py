"""Daemon defects the DST schedules found, each pinned as a regression test (scripted, so it stays stable when the
schedule's event table changes) beside the seed that found it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from dst.harness import World, daemon_step
from dst.incidents import enter
from lifecycle.escalation import Escalator
from lifecycle.killswitch import KillSwitch
from lifecycle.reconcile import ReconciliationReport
from operations import crash
from operations.safety import Safety
from scheduler.jobs import tick
from store.audit import run_audit

ETH = "PF_ETHUSD"


@contextmanager
def crashing_world(seed: int, tmp_path: Path) -> Iterator[World]:
    """A DST world whose crash points raise when armed (`World.crash_at`), as the harness runs its seeds."""
    w = World(seed, tmp_path)
    previous = crash.set_handler(w.crash_hook)
    try:
        yield w
    finally:
        crash.set_handler(previous)
        w.close()


def test_a_report_stamped_before_the_previous_one_still_counts() -> None:
    # DST seed 17 (`daemon clock offset -3600s`): the escalator refuses a report older than the previous one, so
    # after the host clock stepped back every reconcile job raised ValueError (no RECONCILIATION_REPORT, no
    # escalation) until the clock caught up. The report is now taken at the previous one's time.
    safety = Safety(KillSwitch(Decimal(80), Decimal(5), 2), Escalator())
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    assert safety.observe_report(ReconciliationReport(), t0) == "ok"
    levels = [safety.observe_report(ReconciliationReport(orphaned=1), t0 - timedelta(hours=1)) for _ in range(5)]
    assert levels[0] == "warning"
    assert levels[-1] == "critical"  # consecutive cycles still count across the step back
    assert safety.observe_report(ReconciliationReport(), t0 + timedelta(seconds=30)) in ("ok", "warning", "critical")


@pytest.mark.parametrize("offset_at_cancel", [timedelta(hours=1), timedelta(0)], ids=["ahead", "stepped_back"])
def test_a_vanished_order_row_is_settled_whatever_the_host_clock_did(
    tmp_path: Path, offset_at_cancel: timedelta
) -> None:
    # DST seed 14 (`daemon clock offset +3600s`, then the venue dropping every stop, then a silent cancel of the
    # take-profit): reconciliation skipped every open row "sent after the snapshot" by comparing the row's created
    # time (the daemon's clock) with the snapshot's server time (the venue's), so with the host clock an hour ahead
    # the take-profit the venue cancelled stayed `open` for that hour (J4 order_status_drift, then critical). DST
    # seed 88: the same with the clock stepped back after the rows were written. Now judged by which rows existed.
    w = World(14, tmp_path)
    try:
        w.daemon_clock.offset = timedelta(hours=1)
        uid = enter(w, "long", ETH)
        w.dropping[ETH] = 9
        for _ in range(9):
            daemon_step(w)
        assert f"churn:{uid}" in w.ctx.announced_unprotectable  # no stop any more: protect leaves the TP alone
        [tp] = [o for o in w.registry.orders(uid) if o.purpose == "take_profit"]
        assert tp.status == "open" and tp.venue_order_id is not None
        w.daemon_clock.offset = offset_at_cancel
        w.sim.cancel_silently(tp.venue_order_id)
        for _ in range(3):
            daemon_step(w)
        [tp] = [o for o in w.registry.orders(uid) if o.purpose == "take_profit"]
        assert tp.status == "cancelled", tp
        joint = w.ctx.last_joint
        assert joint is not None and joint.counters()["order_status_drift"] == 0
    finally:
        w.close()


XBT = "PF_XBTUSD"


def test_an_entry_booked_by_recovery_is_re_anchored_or_exited_as_the_entrys_own_answer_would(tmp_path: Path) -> None:
    # DST seeds 51, 101, 165 (`invalid_stop_prices`): the stop is re-anchored to the entry's fill (or a slipped entry
    # exited) only where the entry's own answer was read; an entry whose fill came through another door — recovery
    # after a crash right after the send (101), the fill poll after an unknown outcome (51, 165) — kept the stop
    # planned from the decision price. With the host clock 10 minutes behind, the strategy decided on candles from
    # before a 20 % gap: the short filled 10 R worse than planned, its planned stop 28 % from the entry (no stop
    # could be sent: POSITION_UNPROTECTABLE), the registry holding a stop the audit rejects.
    with crashing_world(101, tmp_path) as w:
        daemon_step(w)
        daemon_step(w)
        # The seeds decided on 10-minute-old candles (the host clock behind); the daemon's clock is the venue's time
        # now (lifecycle.clock.VenueClock), so the stale decision is the gap's: within the minute, before a candle
        # closed past it.
        w.sim.set_mark(XBT, w.sim.quote(XBT).mark * Decimal("0.8"))
        w.crash_at, w.crash_slices = "after_send", 3
        w.strategy.entries = {XBT: "short"}
        assert "crashed at after_send" in w.job("tick", tick.run)
        w.strategy.entries = {}
        [pos] = [p for p in w.registry.positions() if p.symbol_key == XBT]
        for _ in range(2):
            daemon_step(w)
            assert run_audit(w.registry.db).ok, run_audit(w.registry.db).summary()
        assert w.registry.get(pos.uid).state == "CLOSED"  # slipped 10 R: exited at once, as `enter` would have
        assert not [p for p in w.sim.positions() if p.symbol == XBT]


@pytest.mark.parametrize("ours", ["entry", "import"])
def test_hand_fills_older_than_a_position_are_not_booked_on_it_with_the_host_clock_behind(
    tmp_path: Path, ours: str
) -> None:
    # DST seeds 196, 28, 41, 69: rule 3 of the fill attribution (someone else's fill on our symbol, stamped after
    # our position was created) compared the fill's venue stamp with the position's `created`, the daemon's clock.
    # An hour behind, every hand fill of the hour before the position counted: a restart's fill poll (which reads
    # from the start of the venue's history) booked an old hand open and close on a new entry as an external add and
    # close (its entry price 4827 -> 3203, the stop "52.7 % from the entry"); an import's own opening fills were
    # booked again on top of the import's fill (0.02 held, 0.04 in the registry), and a liquidation-sized hand
    # short of an hour before as an add of 3.07 to a 0.002 import ("stop covers 0.002 of 3.0727"). Now a position
    # begins, for rule 3, at its first fill's venue stamp (an import's fill stamped with the snapshot's time).
    w = World(196, tmp_path)
    try:
        daemon_step(w)
        w.daemon_clock.offset = -timedelta(hours=1)
        if ours == "entry":
            w.sim.open_position_direct(ETH, "long", Decimal("0.05"))  # someone else's trade, an earlier one
            daemon_step(w)
            w.sim.close_position_direct(ETH)
            for _ in range(3):
                daemon_step(w)  # the orphan is imported, then closed as a phantom by its real fill
            uid = enter(w, "short", ETH)
            qty = Decimal("0.01")
        else:
            w.sim.open_position_direct(ETH, "long", Decimal("0.02"))
            for _ in range(3):
                daemon_step(w)
            [uid] = [p.uid for p in w.registry.active_positions() if p.symbol_key == ETH]
            qty = Decimal("0.02")
        entry = w.registry.get(uid).entry_price
        w.restart()  # the new process's first fill poll reads the venue's whole history
        for _ in range(3):
            daemon_step(w)
        pos = w.registry.get(uid)
        assert (pos.remaining_qty, pos.entry_price) == (qty, entry)
        assert [f["fill_id"] for f in w.registry.fills(uid) if str(f["fill_id"]).startswith("import:")] == (
            [] if ours == "entry" else [f"import:{uid}"]
        )
        assert run_audit(w.registry.db).ok, run_audit(w.registry.db).summary()
        joint = w.ctx.last_joint
        assert joint is not None and joint.counters()["unbooked_fills"] == 0
    finally:
        w.close()


def test_protecting_one_position_may_close_the_next_which_is_then_left_alone(tmp_path: Path) -> None:
    # DST seed 1390: the protect job planned every position from the list it read at its start. Protecting the first
    # one found its stop filled and sent the venue's fills through the one door, which also booked a hand's close of
    # the second position and closed it; the job then planned the second from its stale row (PROTECTED, stop gone)
    # and applied protection_lost to a CLOSED position: IllegalTransition, the protect job failed every cycle.
    from operations import protection
    from specs.lifecycle import State

    w = World(5, tmp_path)
    try:
        first = enter(w, "long", "PF_XBTUSD")
        second = enter(w, "long", ETH)
        for _ in range(2):
            daemon_step(w)
        a, b = w.registry.get(first), w.registry.get(second)
        assert a.state == b.state == State.PROTECTED and a.stop_price is not None and b.sl_order_id
        w.sim.set_mark("PF_XBTUSD", a.stop_price * Decimal("0.97"))  # through the first one's stop: it fills
        w.sim.advance(1)
        w.sim.close_position_direct(ETH)  # the second one closed by hand on the venue
        w.sim.cancel_silently(b.sl_order_id)  # and its stop gone with it
        protection.run(w.ctx)  # before any fill poll: protecting the first books both closes
        assert w.registry.get(first).state == State.CLOSED
        assert w.registry.get(second).state == State.CLOSED
        assert run_audit(w.registry.db).ok
    finally:
        w.close()


def test_our_stop_filling_after_a_hand_closed_its_position_is_not_booked_on_it(tmp_path: Path) -> None:
    # DST seed 2016: a hand closed our short on the venue; before the daemon read that fill, the hand sold again and
    # the price rose through our stop, which still rested (nobody had cancelled it yet) and filled against the hand's
    # new short. One fill poll read both: the hand's close brought the position to zero, then the stop's fill (our
    # order, rule 1) was booked as an exit of the same position: OverfillError ("remaining 0"), nothing recorded,
    # and the exits job failed every cycle. An own exit fill of a position an earlier fill of the batch had already
    # closed is a stray's fill: judged by rule 3 (here nobody we hold: unowned, for reconciliation).
    from specs.lifecycle import State

    xbt = "PF_XBTUSD"
    w = World(5, tmp_path)
    try:
        uid = enter(w, "short", xbt)
        for _ in range(2):
            daemon_step(w)
        pos = w.registry.get(uid)
        assert pos.state == State.PROTECTED and pos.stop_price is not None and pos.sl_order_id
        w.sim.close_position_direct(xbt)  # a hand closes our short on the venue
        w.sim.advance(30)
        w.sim.open_position_direct(xbt, "short", Decimal("0.5"))  # and opens its own
        w.sim.set_mark(xbt, pos.stop_price * Decimal("1.03"))  # through our stop, which still rests: it fills
        assert not any(o.order_id == pos.sl_order_id for o in w.sim.open_orders())
        for _ in range(3):
            assert daemon_step(w) == ""
            assert not w.stats["job_failures"], w.stats
        assert w.registry.get(uid).state == State.CLOSED
        assert w.registry.get(uid).remaining_qty == 0
        assert run_audit(w.registry.db).ok, run_audit(w.registry.db).summary()
    finally:
        w.close()


def test_a_crash_between_recording_a_stop_and_confirming_it_then_the_stop_dropped(tmp_path: Path) -> None:
    # DST seeds 848 and 853, and 46 more of seeds 0-999 x 60 steps, once the crash point `after_stop_recorded` was
    # added (the window between recording a new stop's id and the `protection_confirmed` transition: two commits).
    # Shrunk: "enter long PF_ETHUSD; venue drops every stop on PF_ETHUSD; crash at after_stop_recorded". After the
    # restart the position was OPEN and named a stop the venue had dropped: protect applied `protection_lost`, which
    # only PROTECTED takes (IllegalTransition every cycle), and the position was left without a stop.
    with crashing_world(848, tmp_path) as w:
        uid = enter(w, "long", ETH)
        assert w.registry.get(uid).state == "PROTECTED"
        w.dropping[ETH] = 2
        w.crash_at, w.crash_slices = "after_stop_recorded", 3
        assert "crashed at after_stop_recorded" in daemon_step(w)
        crashed = w.registry.get(uid)
        assert crashed.state == "OPEN" and crashed.sl_order_id is not None  # the window
        daemon_step(w)  # the venue drops that stop too; protect forgets it and places another
        for _ in range(2):
            daemon_step(w)
        after = w.registry.get(uid)
        live = [o.order_id for o in w.sim.open_orders() if o.symbol == ETH and o.order_type == "stp"]
        assert after.state == "PROTECTED" and live == [after.sl_order_id] != [crashed.sl_order_id]
        assert run_audit(w.registry.db).ok, run_audit(w.registry.db).summary()


def test_an_exit_requested_when_the_process_died_is_not_waited_on_for_ever(tmp_path: Path) -> None:
    # DST seeds 12, 158, 206 and more of 0-599 x 60 steps, once the schedule held the strategy's exit signal and the
    # crash point `after_exit_requested` (between the transition and the exit order's intent). Shrunk: "enter long
    # PF_XBTUSD; crash at after_exit_requested; strategy exit PF_XBTUSD". The position stayed EXITING with no exit
    # order: nothing to wait on, nothing to move it again.
    with crashing_world(12, tmp_path) as w:
        uid = enter(w, "long", XBT)
        w.crash_at, w.crash_slices = "after_exit_requested", 3
        w.strategy.exits = {XBT: "scheduled exit"}
        assert "crashed at after_exit_requested" in w.job("tick", tick.run)
        w.strategy.exits = {}
        assert w.registry.get(uid).state == "EXITING"
        daemon_step(w)
        assert w.registry.get(uid).state == "PROTECTED"  # exit_failed, then its live stop confirmed again
        w.strategy.exits = {XBT: "scheduled exit"}  # the signal still stands: the next tick exits for real
        daemon_step(w)
        w.job("tick", tick.run)
        w.strategy.exits = {}
        daemon_step(w)
        assert w.registry.get(uid).state == "CLOSED"
        assert not [p for p in w.sim.positions() if p.symbol == XBT]
        assert run_audit(w.registry.db).ok, run_audit(w.registry.db).summary()


def test_a_hands_trade_and_its_undoing_in_one_instant_leave_our_position_as_it_was(tmp_path: Path) -> None:
    # DST seed 2587 (shrunk to seven events; its core: a hand's 66.166 ETH short on our 0.02 long and the venue's
    # liquidation buying it back, one stamp). The fill poll read the pair in fill-id order: the sell first, larger
    # than the position, stayed unowned; the buy was booked as an external add of 66.166 the venue never held; a
    # later read booked the recorded sell after all, and our stop, sized for 66.186, then filled more than the
    # registry held: OverfillError, the daemon halted. Within one stamp a hand's adds are now judged before its
    # closes (they net to nothing, as on the venue), and a fill is judged once.
    w = World(4, tmp_path)
    try:
        uid = enter(w, "long", ETH)
        for _ in range(2):
            daemon_step(w)
        held = w.registry.get(uid).remaining_qty
        assert w.registry.get(uid).state == "PROTECTED"
        for side in ("short", "long"):  # no clock step between them: one stamp
            w.sim.open_position_direct(ETH, side, Decimal("66.166"))
        for _ in range(4):
            assert daemon_step(w) == ""
        assert not w.stats["job_failures"], w.stats
        pos = w.registry.get(uid)
        assert (pos.state, pos.remaining_qty) == ("PROTECTED", held)
        assert w.registry.unowned_fills() == []
        assert run_audit(w.registry.db).ok, run_audit(w.registry.db).summary()
    finally:
        w.close()
