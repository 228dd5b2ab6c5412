"""A hand adds to our position far from its entry (DST seeds 2069, 2088, 2799): the average entry moves so far that
the stop we keep would sit beyond `risk.max_stop_distance_pct` of it, which the registry audit calls
`invalid_stop_prices`. The daemon's jobs against the simulator over HTTP through real ccxt: the stop is tightened to
the limit (never loosened, never across the mark), in the registry as the add is booked and on the venue by the
next protect cycle, and the audit stays clean throughout."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from lifecycle.stops import stop_problem
from tests.daemon.harness import World, captured_events, world

XBT = "PF_XBTUSD"
LIMIT = Decimal(25)  # risk.max_stop_distance_pct's default, which the harness's context uses


def _far_add(w: World, uid: str, side: str, move: Decimal) -> tuple[Decimal, Decimal]:
    """The market moves by `move` (0.8: an 80 % rally), a hand adds twice our size there; the fill poll books it.
    Returns (the stop before the add, the new average entry)."""
    before = w.registry.get(uid)
    assert before.stop_price is not None and before.entry_price is not None
    far = before.entry_price * (1 + move)
    w.sim.set_mark(XBT, far)
    w.advance(5)
    w.sim.open_position_direct(XBT, side, before.remaining_qty * 2, price=far)
    w.advance(5)
    w.exits()
    after = w.registry.get(uid)
    assert after.remaining_qty == before.remaining_qty * 3  # booked as an external add
    assert after.entry_price is not None
    return before.stop_price, after.entry_price


def test_a_long_whose_entry_a_far_add_moved_gets_its_stop_tightened_to_the_limit(tmp_path: Path) -> None:
    with world(tmp_path) as w, captured_events() as ev:
        uid = w.protected_entry(XBT, "long")
        old_stop, entry = _far_add(w, uid, "long", Decimal("0.8"))
        assert stop_problem("long", entry, old_stop, None, LIMIT) is not None  # the kept stop would be invalid
        assert w.audit_ok()  # the registry follows the add at once, before any protect cycle
        w.protect()
        pos = w.registry.get(uid)
        [stop] = w.venue_stops(XBT)
        assert stop.order_id == pos.sl_order_id and stop.stop_price == pos.stop_price
        assert pos.stop_price is not None and pos.stop_price > old_stop  # tightened, never loosened
        assert stop_problem("long", entry, pos.stop_price, w.venue.tickers()[XBT].mark, LIMIT) is None
        assert pos.stop_price - entry * (1 - LIMIT / 100) < w.ctx.instruments[XBT].tick_size  # at the limit
        assert stop.size == pos.remaining_qty  # and it covers the add
        [tightened] = [e for e in ev.named("PROTECTIVE_ORDER_PLACED") if e["kind"] == "stop_loss_tightened"]
        assert tightened["trigger_price"] == pos.stop_price
        assert not ev.named("STOP_PRICE_ADOPTED") and not ev.named("POSITION_UNPROTECTABLE")
        for _ in range(2):
            w.protect()
        assert [(o.order_id, o.stop_price) for o in w.venue_stops(XBT)] == [(stop.order_id, pos.stop_price)]
        w.reconcile()
        assert w.audit_ok()


def test_a_short_whose_entry_a_far_add_moved_gets_its_stop_tightened_to_the_limit(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        uid = w.protected_entry(XBT, "short")
        old_stop, entry = _far_add(w, uid, "short", Decimal("-0.45"))
        assert stop_problem("short", entry, old_stop, None, LIMIT) is not None
        assert w.audit_ok()
        w.protect()
        pos = w.registry.get(uid)
        [stop] = w.venue_stops(XBT)
        assert stop.stop_price == pos.stop_price and pos.stop_price is not None and pos.stop_price < old_stop
        assert entry * (1 + LIMIT / 100) - pos.stop_price < w.ctx.instruments[XBT].tick_size
        assert stop.size == pos.remaining_qty
        assert w.audit_ok()


def test_a_crossed_stop_that_a_far_add_leaves_beyond_the_entry_on_the_profit_side_stays_as_recorded(
    tmp_path: Path,
) -> None:
    # DST seed 2088: a long whose stop the venue had dropped and the market had gapped through (the stop above the
    # mark, unprotectable); a hand's large buy at the mark pulled the average entry so far down that the recorded stop
    # lay 29.7 % above it. On the profit side of the entry a stop risks no loss, so the distance rule accepts it: the
    # registry keeps it (no tightening, the audit clean), and above the mark it stays unprotectable.
    with world(tmp_path) as w, captured_events() as ev:
        uid = w.protected_entry(XBT, "long")
        before = w.registry.get(uid)
        assert before.sl_order_id is not None and before.stop_price is not None and before.entry_price is not None
        assert w.sim.cancel_silently(before.sl_order_id)
        low = before.entry_price * Decimal("0.7")
        w.sim.set_mark(XBT, low)
        w.advance(5)
        w.protect()
        [unprotectable] = ev.named("POSITION_UNPROTECTABLE")
        assert unprotectable["position"] == uid and not w.venue_stops(XBT)
        w.sim.open_position_direct(XBT, "long", before.remaining_qty * 20, price=low)
        w.advance(5)
        w.exits()
        pos = w.registry.get(uid)
        assert pos.remaining_qty == before.remaining_qty * 21 and pos.entry_price is not None
        assert pos.stop_price == before.stop_price and pos.stop_price > pos.entry_price * (1 + LIMIT / 100)
        assert stop_problem("long", pos.entry_price, pos.stop_price, None, LIMIT) is None
        assert not ev.named("STOP_PRICE_TIGHTENED")
        assert w.audit_ok()
        w.protect()  # still across the mark: still unprotectable, nothing sent
        assert not w.venue_stops(XBT) and w.audit_ok()
