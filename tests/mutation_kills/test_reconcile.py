"""Reconciliation behaviours no test pinned (found by mutation testing, issue 15)."""

from __future__ import annotations

from lifecycle.reconcile import (
    AdoptPending,
    ImportOrphan,
    OrderRef,
    ReconcileMemory,
    Reconciliation,
    RegistryPosition,
    reconcile,
)
from lifecycle.values import AccountSnapshot, PositionSide
from tests.reconcile.builders import NOW, D, pos, snap, vpos

ORDERS = {"p1-entry": OrderRef("p1", "entry", "o-entry"), "p1-stop": OrderRef("p1", "stop", "sl-1")}


def run(registry: list[RegistryPosition], s: AccountSnapshot, memory: ReconcileMemory | None = None) -> Reconciliation:
    return reconcile(registry, frozenset(), ORDERS, s, NOW, memory)


def twice(registry: list[RegistryPosition], s: AccountSnapshot) -> Reconciliation:
    return run(registry, s, run(registry, s).memory)


def test_an_orphan_smaller_than_one_contract_keeps_its_side() -> None:
    for side in (PositionSide.SHORT, PositionSide.LONG):
        second = twice([], snap((vpos(side=side, size="0.5"),)))
        assert second.actions == (ImportOrphan("PF_XBTUSD", side, D("0.5"), D("50000")),)
        assert second.issues[0].detail == f"{side.value} 0.5"


def test_an_orphan_of_exactly_one_contract_keeps_its_side() -> None:
    for side in (PositionSide.SHORT, PositionSide.LONG):
        second = twice([], snap((vpos(side=side, size="1"),)))
        assert second.actions == (ImportOrphan("PF_XBTUSD", side, D("1"), D("50000")),)


def test_a_pending_entry_whose_fill_is_already_in_the_ledger_is_adopted_not_closed_as_phantom() -> None:
    # The ledger already holds the entry (remaining 1) and no new fill arrives: adopt it with no fills to record,
    # on the first sighting and on the second; never the phantom path.
    registry = [pos("p1", state="PENDING_ENTRY", qty="1", sl=None)]
    s = snap((vpos(size="1"),))
    first = run(registry, s)
    assert first.actions[0] == AdoptPending("p1", ())
    assert first.report.pending_adopted == 1 and first.report.phantom == 0
    second = run(registry, s, first.memory)
    assert second.actions[0] == AdoptPending("p1", ())
    assert second.report.phantom == 0
