"""A stop that filled for part of the position (a hand had added before the resize) sends the rest out with a
reduce-only exit; when that exit fails (`exit_failed`, back to OPEN), protection takes over (docs/operations.md,
"Entries and exits"). DST seed 1762: it never did. The position kept the filled stop as its recorded one, so every
protect cycle found that stop gone, learnt again that it had filled, and stopped there: an exposed position with no
stop and no announcement for ever (joint J2 "0 live stops of its own"). The daemon's jobs against the simulator
over HTTP through real ccxt."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from tests.daemon.harness import World, captured_events, world

ETH = "PF_ETHUSD"


def _stop_filled_for_part_and_the_exit_refused(w: World) -> tuple[str, Decimal]:
    """An ETH long whose stop filled for a tenth of the position and whose exit of the rest the venue refused.
    Returns (the position, its recorded stop level)."""
    pos = w.registry.get(w.protected_entry(ETH))
    assert pos.state == "PROTECTED" and pos.stop_price is not None and pos.sl_order_id is not None
    w.sim.open_position_direct(ETH, "long", pos.remaining_qty * 9)  # a hand adds before any resize
    w.sim.faults.add("reject", "sendorder", status="wouldNotReducePosition")  # the exit will be refused
    w.sim.set_mark(ETH, pos.stop_price * Decimal("0.99"))  # the stop triggers: it sells our tenth
    w.advance(5)
    w.protect()  # the stop's fills are booked; the rest is exited, refused: exit_failed
    after = w.registry.get(pos.uid)
    assert after.state == "OPEN" and after.remaining_qty == pos.remaining_qty * 9
    assert not w.venue_stops(ETH)
    return pos.uid, pos.stop_price


def test_protection_takes_over_after_the_exit_that_followed_a_partial_stop_fill_failed(tmp_path: Path) -> None:
    with world(tmp_path) as w, captured_events() as ev:
        uid, level = _stop_filled_for_part_and_the_exit_refused(w)
        filled_stop = w.registry.get(uid).sl_order_id
        w.sim.set_mark(ETH, level * Decimal("1.01"))  # the market is back above the stop level
        w.advance(5)
        w.protect()
        pos = w.registry.get(uid)
        [stop] = w.venue_stops(ETH)
        assert pos.state == "PROTECTED" and pos.sl_order_id == stop.order_id != filled_stop
        assert stop.stop_price == level and stop.size == pos.remaining_qty
        assert ev.named("PROTECTIVE_ORDER_PLACED")[-1]["kind"] == "stop_loss"
        w.reconcile()
        assert w.ctx.last_joint is not None
        assert not [f for f in w.ctx.last_joint.findings if f.field == "unprotected_exposure"]
        assert w.audit_ok()


def test_a_stop_level_still_crossed_then_follows_the_crossed_stop_rule(tmp_path: Path) -> None:
    with world(tmp_path) as w, captured_events() as ev:
        uid, _level = _stop_filled_for_part_and_the_exit_refused(w)
        w.protect()  # the recorded level is above the mark: never sent, and said so
        [unprotectable] = ev.named("POSITION_UNPROTECTABLE")
        assert unprotectable["position"] == uid and "mark" in str(unprotectable["detail"])
        assert not w.venue_stops(ETH) and w.registry.get(uid).sl_order_id is None
