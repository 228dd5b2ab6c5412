"""An entry still pending whose entry has filled holds exposure (`lifecycle.fills.exposure_began`): a lost reply can
leave the entry pending while its fill is on the venue, and a hand's trade against it is a trade on our position.
Before, such a trade was nobody's until the entry was adopted, so reconciliation compared the adopted entry with the
venue's new net (one cycle of `qty_mismatch`) and booked the hand's part a cycle later."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from lifecycle.fills import (
    Attributed,
    FillRole,
    OrderOwner,
    PositionFacts,
    attribute,
    consequence,
    exposure_began,
    held_since,
    must_be_accounted,
    owners_from,
    unowned_reason,
)
from lifecycle.reconcile import AdoptPending, ApplyFill, CloseFlat, OrderRef, QtyMismatch, reconcile
from lifecycle.values import PositionSide, RegistryPosition, Side
from specs.lifecycle import Event
from tests.reconcile.builders import NOW, T0, D, fill, snap, vpos

PENDING = RegistryPosition("p1", "PF_XBTUSD", PositionSide.LONG, "ENTRY_OPEN", D("0"), T0 - timedelta(hours=1))
ENTRY = OrderOwner("p1", "entry", "ENTRY_OPEN", "o-entry")
ORDERS = [("p1-entry", ENTRY)]


def test_a_pending_entry_holds_exposure_from_its_first_entry_fill_of_the_batch() -> None:
    ours = fill("f1", "o-entry", "p1-entry", Side.BUY, "1", minute=2)
    later = fill("f2", "o-entry", "p1-entry", Side.BUY, "1", minute=3)
    assert exposure_began([later, ours], owners_from(ORDERS, [PENDING])) == {"p1": ours.time}
    assert exposure_began([], owners_from(ORDERS, [PENDING])) == {}  # no fill yet: nothing to trade against
    partly = dataclasses.replace(PENDING, remaining_qty=D("0.5"), created=T0)  # its first ledger fill dates it
    assert exposure_began([ours], owners_from(ORDERS, [partly])) == {"p1": T0}
    assert held_since([partly]) == {"PF_XBTUSD": T0}
    assert held_since([PENDING]) == {}
    # An older entry fill read after a newer one (the stream booked the second part first): exposure began with it.
    early = fill("f0", "o-entry", "p1-entry", Side.BUY, "0.5", minute=-1)
    assert exposure_began([early], owners_from(ORDERS, [partly])) == {"p1": early.time}
    # Only its entry order's fills open it: a fill of another order of the position says nothing of its entry.
    exit_ = fill("f9", "o-exit", "p1-exit", Side.SELL, "1", minute=2)
    exit_owner = ("p1-exit", OrderOwner("p1", "exit", "ENTRY_OPEN", "o-exit"))
    assert exposure_began([exit_], owners_from([*ORDERS, exit_owner], [PENDING])) == {}


def test_a_hands_trade_through_zero_after_a_pending_entrys_fill_closes_it_and_leaves_the_rest_unowned() -> None:
    ours = fill("f1", "o-entry", "p1-entry", Side.BUY, "1", minute=1)
    hand = fill("m1", "m-1", None, Side.SELL, "3", minute=2)
    assert attribute([hand, ours], owners_from(ORDERS, [PENDING])) == (
        Attributed(ours, FillRole.OWN, "p1", True),
        Attributed(dataclasses.replace(hand, size=D("1")), FillRole.EXTERNAL_CLOSE, "p1", False),
        Attributed(dataclasses.replace(hand, size=D("2")), FillRole.UNOWNED, None, False),
    )


def test_a_hands_trade_before_the_pending_entrys_fill_is_not_judged_against_it() -> None:
    hand = fill("m1", "m-1", None, Side.SELL, "3", minute=1)
    ours = fill("f1", "o-entry", "p1-entry", Side.BUY, "1", minute=2)
    owners = owners_from(ORDERS, [PENDING])
    got = attribute([hand, ours], owners)
    assert [(a.fill.fill_id, a.role) for a in got] == [("m1", FillRole.UNOWNED), ("f1", FillRole.OWN)]
    began = exposure_began([hand, ours], owners)
    assert not must_be_accounted(hand, set(), held_since([PENDING], began))
    late = fill("m2", "m-2", None, Side.SELL, "3", minute=3)
    assert must_be_accounted(late, set(), held_since([PENDING], began))
    assert unowned_reason(late, owners, began)[1].startswith("beyond what position p1 held")
    assert unowned_reason(late, owners)[1] == "no position holds its symbol"  # no fill of its entry in this batch


def test_an_entry_filled_then_brought_back_to_zero_is_filled_and_then_closed() -> None:
    at_zero = PositionFacts("ENTRY_OPEN", D("0"), has_entry_fills=True)
    assert consequence(at_zero) is Event.ENTRY_FILLED  # the door asks again: the OPEN position at zero is closed
    assert consequence(dataclasses.replace(at_zero, state="OPEN")) is Event.POSITION_CLOSED
    assert consequence(dataclasses.replace(at_zero, entry_order_live=True)) is None  # may still grow
    assert consequence(dataclasses.replace(at_zero, has_entry_fills=False)) is None


def test_reconciliation_meeting_both_fills_first_closes_the_entry_and_suspects_the_orphan() -> None:
    ours = fill("f1", "o-entry", "p1-entry", Side.BUY, "1", minute=1)
    hand = fill("m1", "m-1", None, Side.SELL, "3", minute=2)
    orders = {"p1-entry": OrderRef("p1", "entry", "o-entry")}
    s = snap((vpos(side=PositionSide.SHORT, size="2"),), (), (ours, hand))
    result = reconcile([PENDING], frozenset(), orders, s, NOW, None)
    assert result.actions[:2] == (
        AdoptPending("p1", (ours,)),
        ApplyFill("p1", dataclasses.replace(hand, size=D("1")), False),
    )
    assert not any(isinstance(a, QtyMismatch | CloseFlat) for a in result.actions)
    assert result.report.qty_mismatch == 0
    assert result.suspected == (("orphaned", "PF_XBTUSD", ""),)
    flat = reconcile(
        [PENDING], frozenset(), orders, snap(fills=(ours, fill("m2", "m-2", None, Side.SELL, "1", minute=2))), NOW, None
    )
    assert CloseFlat("p1") in flat.actions and flat.suspected == ()
