"""The DST harness's "every venue fill of our orders is in the ledger" check (dst.harness._check), tested itself.

DST seed 2016: a hand closed our short, then sold again; our stop still rested and filled against the hand's new
short. Fills rule 3 (docs/operations.md) judges such a stray's fill against whoever holds the symbol now: nobody,
so it stays unowned, and booking it on the closed position would overfill it. The daemon records it as unowned and
reports it once (UNOWNED_FILL): it is not a lost fill, and the check must not call it one, even after it has left
the daemon's fill window. A fill the daemon left out of the ledger of a position it still holds is lost,
and the check still says so."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from dst.harness import DstFailure, World, _check, _Checks, daemon_step
from dst.incidents import enter
from specs.lifecycle import State

XBT = "PF_XBTUSD"


def _protected_short(w: World) -> str:
    uid = enter(w, "short", XBT)
    for _ in range(2):
        daemon_step(w)
    assert w.registry.get(uid).state == State.PROTECTED
    return uid


def _stop_fills_after_a_hand_closed_the_position(w: World, uid: str) -> str:
    """Seed 2016's sequence; returns our stop's fill id."""
    pos = w.registry.get(uid)
    assert pos.stop_price is not None and pos.sl_order_id is not None
    w.sim.close_position_direct(XBT)  # a hand closes our short on the venue
    w.sim.advance(30)
    w.sim.open_position_direct(XBT, "short", Decimal("0.5"))  # and opens its own
    w.sim.set_mark(XBT, pos.stop_price * Decimal("1.03"))  # through our stop, which still rests: it fills
    [fill] = [f for f in w.sim.all_fills() if f.order_id == pos.sl_order_id]
    return fill.fill_id


def test_an_unowned_stray_fill_of_our_stop_that_the_daemon_reports_is_not_lost(tmp_path: Path) -> None:
    w = World(5, tmp_path)
    try:
        uid = _protected_short(w)
        stray = _stop_fills_after_a_hand_closed_the_position(w, uid)
        checks = _Checks()
        assert daemon_step(w) == ""
        assert w.registry.get(uid).state == State.CLOSED
        assert w.registry.unowned_known([stray]) == {stray} and stray not in w.registry.fill_ids_known([stray])
        _check(w, 5, 0, [], checks, True)  # not "fills of our orders not in the ledger"
        for _ in range(12):  # the venue trades on; the stray leaves the daemon's fill window
            w.sim.advance(1)  # not in the millisecond of the last snapshot, a tie the import counts as inside it
            w.sim.open_position_direct(XBT, "short", Decimal("0.001"))
            daemon_step(w)
            _check(w, 5, 0, [], checks, True)
        joint = w.ctx.last_joint
        assert joint is not None and stray not in {f.key for f in (*joint.findings, *joint.pending)}
        # The exposure the stray created (the hand's short, 0.001 smaller) is the venue's position, which the daemon
        # imported as an orphan and protects: the stray's fill is inside the imported quantity.
        [held] = [p for p in w.sim.positions() if p.symbol == XBT]
        [imported] = w.registry.active_positions()
        assert imported.origin != "strategy" and imported.state == State.PROTECTED
        assert imported.remaining_qty == abs(held.size)
    finally:
        w.close()


def test_a_fill_of_a_held_positions_stop_not_in_the_ledger_is_lost(tmp_path: Path) -> None:
    w = World(5, tmp_path)
    try:
        uid = _protected_short(w)
        pos = w.registry.get(uid)
        assert pos.stop_price is not None
        w.sim.set_mark(XBT, pos.stop_price * Decimal("1.03"))  # our stop fills; no fill poll has read it
        with pytest.raises(DstFailure, match="fills of our orders not in the ledger"):
            _check(w, 5, 0, [], _Checks(), True)
    finally:
        w.close()


def test_a_stray_fill_the_daemon_did_not_record_is_lost(tmp_path: Path) -> None:
    w = World(5, tmp_path)
    try:
        uid = _protected_short(w)
        _stop_fills_after_a_hand_closed_the_position(w, uid)
        w.registry.record_unowned = lambda *args, **kwargs: False  # type: ignore[method-assign]
        daemon_step(w)
        assert w.registry.get(uid).state == State.CLOSED
        with pytest.raises(DstFailure, match="fills of our orders not in the ledger"):
            _check(w, 5, 0, [], _Checks(), True)
    finally:
        w.close()
