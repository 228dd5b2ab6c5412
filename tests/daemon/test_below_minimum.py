"""Orders our own checks refuse before sending (a size below the instrument's minimum): the daemon's jobs against
the simulator over HTTP through real ccxt.

A refusal is not a venue rejection: the intent is closed as not sent, no ORDER_REJECTED_BY_VENUE is logged, the
venue sees nothing. A stop that cannot be sent for a dust remainder leaves the position unprotected, so the
operator hears it once (POSITION_UNPROTECTABLE) instead of an intent being recorded every protect cycle.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from exchange.rounding import SizeBelowMinimum
from lifecycle.values import OrderType, Side
from operations.submit import submit
from simulator.models import SimOrder
from tests.daemon.harness import World, captured_events, world

XBT = "PF_XBTUSD"
ETH = "PF_ETHUSD"
DUST_ETH = Decimal("0.0005")  # half of ETH's 0.001 size increment, the venue's minimum here


def sendorders(w: World) -> int:
    return sum(1 for r in w.sim.request_log if r.path.endswith("/sendorder"))


def adopt_orphan(w: World, symbol: str, size: Decimal) -> str:
    """A position opened by hand on the venue, imported by reconciliation (two sightings)."""
    w.sim.open_position_direct(symbol, "long", size)
    w.reconcile()
    w.advance(5)
    w.reconcile()
    [pos] = w.registry.active_positions()
    assert pos.remaining_qty == size
    return pos.uid


def test_an_entry_below_the_minimum_is_not_sent_and_its_intent_is_closed(tmp_path: Path) -> None:
    with world(tmp_path) as w, captured_events() as ev:
        w.strategy.entries[XBT] = "long"
        w.strategy.size[XBT] = Decimal("0.00009")  # below PF_XBTUSD's 0.0001
        w.advance(60)
        w.tick()
        assert sendorders(w) == 0 and w.sim.order_log == []
        assert w.registry.active_positions() == []  # entry_rejected: nothing was opened
        assert not ev.named("ORDER_REJECTED_BY_VENUE")  # no venue refused anything
        assert not ev.named("ORDER_OUTCOME_UNKNOWN")
        [submitted] = ev.named("ORDER_SUBMITTED")
        assert (submitted["purpose"], submitted["outcome"]) == ("entry", "not_sent")
        assert w.registry.unresolved_orders() == []  # nothing left for recovery to look up
        [pos] = w.registry.positions()
        [intent] = w.registry.orders(pos.uid)
        assert intent.status == "cancelled"
        assert intent.reason is not None and intent.reason.startswith("not_sent:sizeBelowMinimum")
        assert w.audit_ok()


def test_a_dust_position_is_announced_once_as_unprotectable_and_nothing_is_sent(tmp_path: Path) -> None:
    with world(tmp_path) as w, captured_events() as ev:
        uid = adopt_orphan(w, ETH, DUST_ETH)
        for _ in range(3):  # three protect cycles
            w.protect()
        [line] = ev.named("POSITION_UNPROTECTABLE")
        assert (line["position"], line["symbol"]) == (uid, ETH)
        assert (line["remaining_qty"], line["min_size"]) == (DUST_ETH, Decimal("0.001"))
        assert "Close it on the venue by hand" in str(line["detail"])
        assert w.registry.get(uid).state == "OPEN"  # honest: not PROTECTED
        assert w.registry.orders(uid) == []  # no intent recorded per cycle for an order that cannot go
        assert sendorders(w) == 0 and w.venue_stops(ETH) == []
        assert not ev.named("ORDER_SUBMITTED") and not ev.named("ORDER_REJECTED_BY_VENUE")
        assert w.audit_ok()


def test_a_stale_instrument_list_still_ends_in_one_announcement_and_a_closed_intent(tmp_path: Path) -> None:
    with world(tmp_path) as w, captured_events() as ev:
        uid = adopt_orphan(w, ETH, DUST_ETH)
        # Our copy of the instrument list says dust is fine; the venue adapter's own check still refuses it.
        stale = replace(w.ctx.instruments[ETH], size_increment=Decimal("0.0001"), min_size=Decimal("0.0001"))
        w.ctx.instruments = {**w.ctx.instruments, ETH: stale}
        w.protect()
        [line] = ev.named("POSITION_UNPROTECTABLE")
        assert line["position"] == uid
        assert line["min_size"] is None  # our copy is wrong about it, so it is not quoted
        [intent] = w.registry.orders(uid)
        assert (intent.purpose, intent.status) == ("stop", "cancelled")
        assert intent.reason is not None and intent.reason.startswith("not_sent:sizeBelowMinimum")
        assert sendorders(w) == 0
        assert not ev.named("ORDER_REJECTED_BY_VENUE")
        assert w.audit_ok()


def test_submit_reports_the_refusal_without_blaming_the_venue(tmp_path: Path) -> None:
    with world(tmp_path) as w, captured_events() as ev:
        uid = adopt_orphan(w, ETH, DUST_ETH)
        sent = submit(
            w.registry,
            w.venue,
            uid,
            symbol=ETH,
            purpose="stop",
            side=Side.SELL,
            order_type=OrderType.STOP,
            qty=DUST_ETH,
            trigger_price=Decimal(3000),
            reduce_only=True,
        )
        assert isinstance(sent.refusal, SizeBelowMinimum)
        assert w.registry.order_by_client_id(sent.client_order_id) is not None
        assert w.registry.unresolved_orders() == []
        assert not ev.named("ORDER_REJECTED_BY_VENUE") and not ev.named("ORDER_OUTCOME_UNKNOWN")
        assert sendorders(w) == 0


def edits(w: World, since: int = 0) -> int:
    return sum(1 for r in w.sim.request_log[since:] if r.path.endswith("/editorder"))


def protected(w: World, size: Decimal) -> tuple[str, SimOrder]:
    uid = adopt_orphan(w, ETH, size)
    w.protect()
    [stop] = w.venue_stops(ETH)
    assert w.registry.get(uid).state == "PROTECTED"
    return uid, stop


def partial_exit(w: World, uid: str, qty: Decimal) -> None:
    """Part of the position is closed by one of our own reduce-only orders; reconciliation books its fill."""
    sent = submit(
        w.registry,
        w.venue,
        uid,
        symbol=ETH,
        purpose="exit",
        side=Side.SELL,
        order_type=OrderType.MARKET,
        qty=qty,
        reduce_only=True,
    )
    assert sent.refusal is None
    w.advance(5)
    w.reconcile()


def test_a_stop_over_a_dust_remainder_is_kept_and_still_closes_all_of_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No order may be as small as the dust, so the stop is not shrunk (that edit was refused, with a WARNING, on
    every protect cycle); the larger stop is reduce-only, so when it triggers the venue closes exactly the dust."""
    with world(tmp_path) as w, captured_events() as ev:
        uid, stop = protected(w, Decimal("0.0025"))  # a hand-opened orphan off the increment: stop 0.002
        partial_exit(w, uid, Decimal("0.002"))
        assert w.registry.get(uid).remaining_qty == DUST_ETH
        before = len(w.sim.request_log)
        with caplog.at_level(logging.WARNING, logger="scheduler.jobs.protect"):
            for _ in range(3):
                w.protect()
        assert [r.getMessage() for r in caplog.records if r.name == "scheduler.jobs.protect"] == []
        assert edits(w, before) == 0
        assert [(o.order_id, o.size) for o in w.venue_stops(ETH)] == [(stop.order_id, Decimal("0.002"))]
        assert w.registry.get(uid).state == "PROTECTED"
        assert not ev.named("POSITION_UNPROTECTABLE")  # it is protected: the stop covers the dust
        assert stop.stop_price is not None
        w.sim.set_mark(ETH, stop.stop_price * Decimal("0.9"))
        w.advance(5)
        assert all(p.symbol != ETH for p in w.sim.positions())  # the venue capped the stop at the dust
        w.reconcile()
        w.exits()
        assert w.registry.get(uid).state == "CLOSED"
        # An imported position's synthetic entry fill has no order; the stop's own fill still settles its row.
        assert sorted((o.purpose, o.status) for o in w.registry.orders(uid)) == [("exit", "filled"), ("stop", "filled")]
        assert w.audit_ok()


def test_a_stop_is_shrunk_once_to_a_remainder_an_order_can_carry(tmp_path: Path) -> None:
    with world(tmp_path) as w, captured_events() as ev:
        uid, stop = protected(w, Decimal("0.003"))
        partial_exit(w, uid, Decimal("0.001"))
        before = len(w.sim.request_log)
        for _ in range(3):
            w.protect()
        assert edits(w, before) == 1
        assert [(o.order_id, o.size) for o in w.venue_stops(ETH)] == [(stop.order_id, Decimal("0.002"))]
        [resized] = [e for e in ev.named("PROTECTIVE_ORDER_PLACED") if e["kind"] == "stop_loss_resized"]
        assert (resized["order_id"], resized["size"]) == (stop.order_id, Decimal("0.002"))
        assert w.registry.get(uid).state == "PROTECTED"
        assert w.audit_ok()


def test_a_remainder_off_the_size_increment_does_not_resend_the_same_edit_every_cycle(tmp_path: Path) -> None:
    """0.0015 cannot be an order size at a 0.001 increment: the stop carries 0.001 (truncated, never more than
    asked), and re-sending that same edit each cycle would change nothing."""
    with world(tmp_path) as w, captured_events() as ev:
        uid, stop = protected(w, Decimal("0.0015"))
        assert stop.size == Decimal("0.001")
        before = len(w.sim.request_log)
        for _ in range(3):
            w.protect()
        assert edits(w, before) == 0
        assert not [e for e in ev.named("PROTECTIVE_ORDER_PLACED") if e["kind"] == "stop_loss_resized"]
        assert w.registry.get(uid).state == "PROTECTED"
