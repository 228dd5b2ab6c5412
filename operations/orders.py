"""Order rows follow the venue: one rule for turning the venue's answer about one of our orders into its row's
status, used wherever evidence is looked at (recovery after a restart, reconciliation adopting a pending entry,
the close operation settling what a position leaves behind)."""

from __future__ import annotations

from lifecycle.values import OrderStatus as VenueStatus
from lifecycle.values import VenueOrder
from specs.lifecycle import OrderStatus
from store.registry import OrderView, Registry


def status_from_evidence(evidence: VenueOrder) -> OrderStatus:
    """The row status the venue's answer proves. Any fill beats a `cancelled` status: a partly filled order that
    was then cancelled did trade (and an answer that says cancelled with filled=0 may be wrong for a few seconds:
    the fills, when they come, move the row on to `filled` — a legal order edge)."""
    if evidence.status is VenueStatus.OPEN:
        return OrderStatus.FILLED if evidence.filled >= evidence.size else OrderStatus.OPEN
    if evidence.status is VenueStatus.REJECTED:
        return OrderStatus.REJECTED
    if evidence.status is VenueStatus.FILLED or evidence.filled > 0:
        return OrderStatus.FILLED
    return OrderStatus.CANCELLED


def record_evidence(registry: Registry, order: OrderView, evidence: VenueOrder | None, *, absent: str) -> OrderView:
    """Settle `order`'s row from the venue's answer. `absent`: the reason recorded when the venue has no trace of
    it (the row becomes `cancelled`: it never reached the book, or it is gone without a fill)."""
    if evidence is None:
        return registry.mark_order(order.client_order_id, status=OrderStatus.CANCELLED, reason=absent)
    status = status_from_evidence(evidence)
    if status == order.status and evidence.order_id == order.venue_order_id:
        return order
    return registry.mark_order(order.client_order_id, status=status, venue_order_id=evidence.order_id)
