"""Orders our own checks refuse before sending (a size below the instrument's minimum): the daemon's jobs against
the simulator over HTTP through real ccxt.

A refusal is not a venue rejection: the intent is closed as not sent, no ORDER_REJECTED_BY_VENUE is logged, the
venue sees nothing. A stop that cannot be sent for a dust remainder leaves the position unprotected, so the
operator hears it once (POSITION_UNPROTECTABLE) instead of an intent being recorded every protect cycle.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from exchange.rounding import SizeBelowMinimum
from exchange.types import OrderType, Side
from scheduler.jobs.execution import submit
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
