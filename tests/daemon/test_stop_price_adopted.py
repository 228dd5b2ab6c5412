"""A stop moved by hand on the venue is kept, and its trigger becomes the registry's: the daemon's jobs against the
simulator over HTTP through real ccxt. The daemon moves a trigger itself only to tighten a stop that lies beyond
risk.max_stop_distance_pct of the entry (tests/daemon/test_far_add.py), so within that limit it has nothing to fight."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from tests.daemon.harness import captured_events, world

XBT = "PF_XBTUSD"


def test_a_placed_stop_matches_the_registry_so_nothing_is_adopted(tmp_path: Path) -> None:
    with world(tmp_path) as w, captured_events() as ev:
        uid = w.protected_entry(XBT)
        for _ in range(3):
            w.protect()
        assert not ev.named("STOP_PRICE_ADOPTED")
        [stop] = w.venue_stops(XBT)
        assert stop.stop_price == w.registry.get(uid).stop_price


def test_a_stop_moved_by_hand_is_kept_adopted_once_and_used_when_it_must_be_replaced(tmp_path: Path) -> None:
    with world(tmp_path) as w, captured_events() as ev:
        uid = w.protected_entry(XBT)
        [stop] = w.venue_stops(XBT)
        assert stop.stop_price is not None
        moved = stop.stop_price - Decimal(500)  # the operator widens it in the Kraken UI
        status, _, _ = w.sim.edit_order(stop.order_id, stop_price=moved)
        assert status == "edited"
        for _ in range(3):
            w.protect()
        [adopted] = ev.named("STOP_PRICE_ADOPTED")
        assert (adopted["position"], adopted["order_id"]) == (uid, stop.order_id)
        assert (adopted["registry_stop"], adopted["venue_stop"]) == (stop.stop_price, moved)
        assert w.registry.get(uid).stop_price == moved
        assert [(o.order_id, o.stop_price) for o in w.venue_stops(XBT)] == [(stop.order_id, moved)]  # not fought
        assert w.sim.cancel_silently(stop.order_id)
        w.protect()
        [replacement] = w.venue_stops(XBT)
        assert replacement.order_id != stop.order_id and replacement.stop_price == moved
        assert w.audit_ok()
