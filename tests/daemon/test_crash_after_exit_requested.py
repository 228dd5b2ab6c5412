"""A process killed between the `exit_requested` transition and the exit order's intent (its first durable record):
the position is EXITING and no exit order exists, so none was ever sent. Before, nothing moved it again:
`settle_exits` waits for an exit order to end, protect leaves EXITING positions alone, and the strategy's next exit
signal is for OPEN and PROTECTED positions only. An EXITING position whose exit was requested from OPEN (an entry that
slipped too far, a crossed stop level) holds no stop: exposed and unprotected for good. Now such a position goes
back (`exit_failed`, to OPEN) for protection and the strategy to act on it again."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.daemon.harness import Killed, captured_events, killed_at, world

XBT = "PF_XBTUSD"


def test_an_exit_requested_but_never_recorded_is_failed_and_the_position_protected_again(tmp_path: Path) -> None:
    with world(tmp_path) as w, captured_events() as ev:
        uid = w.protected_entry(XBT)
        [stop] = w.venue_stops(XBT)
        stop_id = stop.order_id
        w.sim.cancel_silently(stop_id)  # and the venue drops the stop: nothing protects the position now

        w.strategy.exits[XBT] = "scripted exit"
        w.advance(60)
        with killed_at("after_exit_requested"), pytest.raises(Killed):
            w.tick()
        w.strategy.exits.clear()
        assert w.registry.get(uid).state == "EXITING"
        assert not [o for o in w.registry.orders(uid) if o.purpose == "exit"]  # never recorded, so never sent

        for _ in range(2):
            w.advance(30)
            w.exits()
            w.protect()
        after = w.registry.get(uid)
        assert after.state == "PROTECTED"
        assert [o.order_id for o in w.venue_stops(XBT)] == [after.sl_order_id] != [stop_id]
        events = [t["event"] for t in ev.named("POSITION_TRANSITION") if t["position"] == uid]
        assert events[-4:] == ["exit_requested", "exit_failed", "protection_lost", "protection_confirmed"] or events[
            -3:
        ] == ["exit_requested", "exit_failed", "protection_confirmed"], events
        assert w.audit_ok()
