"""Startup recovery of orders a previous run left in flight (status `intent` or `unknown`).

Each is resolved by evidence, never by re-sending: the venue is asked for the client order id (open orders,
order and trigger history). Found: the registry adopts what the venue says. Not found: absence on Kraken is
evidence, not proof, so it is asked `checks` times, `wait_s` apart, before the intent is declared never sent
(cancelled); the next cycle may then try again under a new client order id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lifecycle.values import OrderStatus, VenueOrder
from operations.context import DaemonContext
from operations.exits import fills_window_start
from operations.fills import ingest
from operations.orders import record_evidence
from specs.lifecycle import Event, State
from store.registry import OrderView

log = logging.getLogger(__name__)

UNRESOLVED = frozenset({"intent", "unknown"})


@dataclass
class RecoveryResult:
    adopted: list[str] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)

    @property
    def detail(self) -> str:
        return f"adopted={len(self.adopted)} abandoned={len(self.abandoned)}"


def _lookup(
    ctx: DaemonContext, coid: str, checks: int, wait_s: float, sleep: Callable[[float], None]
) -> VenueOrder | None:
    for attempt in range(checks):
        found = ctx.venue.find_order(coid)
        if found is not None:
            return found
        if attempt + 1 < checks:
            sleep(wait_s)
    return None


def _apply_entry(ctx: DaemonContext, order: OrderView, evidence: VenueOrder | None) -> None:
    pos = ctx.registry.get(order.position_uid)
    if pos.state != State.PENDING_ENTRY:
        return
    if evidence is None or (evidence.status is OrderStatus.CANCELLED and evidence.filled == 0):
        ctx.registry.apply(pos.uid, Event.ENTRY_CANCELLED, cause="recovery: entry order never reached the book")
    elif evidence.status is OrderStatus.REJECTED:
        ctx.registry.apply(pos.uid, Event.ENTRY_REJECTED, cause="recovery: the venue refused the entry order")
    elif evidence.filled > 0:
        # The one door records the fills and applies entry_filled once the entry no longer rests on the book.
        ingest(ctx, ctx.venue.fills_since(fills_window_start(ctx)), source="recovery")
        if ctx.registry.get(pos.uid).state == State.PENDING_ENTRY and evidence.status is OrderStatus.OPEN:
            ctx.registry.apply(pos.uid, Event.ENTRY_ACKNOWLEDGED, cause="recovery: entry partly filled, still live")
    elif evidence.status is OrderStatus.OPEN:
        ctx.registry.apply(pos.uid, Event.ENTRY_ACKNOWLEDGED, cause="recovery: entry order found live on the venue")


def _apply_protective(ctx: DaemonContext, order: OrderView, evidence: VenueOrder | None) -> None:
    if evidence is None or evidence.status is not OrderStatus.OPEN:
        return  # protect places a new stop under a new client order id within one cycle
    pos = ctx.registry.get(order.position_uid)
    if order.purpose == "stop" and pos.state == State.OPEN:
        ctx.registry.set_protection(pos.uid, sl_order_id=evidence.order_id)
        ctx.registry.apply(pos.uid, Event.PROTECTION_CONFIRMED, cause=f"recovery: stop {evidence.order_id} is live")
    elif order.purpose == "take_profit":
        ctx.registry.set_protection(pos.uid, tp_order_id=evidence.order_id)


def recover_in_flight(
    ctx: DaemonContext, *, checks: int = 3, wait_s: float = 3.0, sleep: Callable[[float], None] = time.sleep
) -> RecoveryResult:
    result = RecoveryResult()
    for order in ctx.registry.unresolved_orders():
        if order.status not in UNRESOLVED:
            continue
        evidence = _lookup(ctx, order.client_order_id, checks, wait_s, sleep)
        # The row follows the venue first (operations.orders: one rule), so the order table never says
        # `open`/`unknown` for an order the venue has settled.
        record_evidence(ctx.registry, order, evidence, absent=f"absent after {checks} checks")
        if evidence is None:
            result.abandoned.append(order.client_order_id)
        else:
            result.adopted.append(order.client_order_id)
        if order.purpose == "entry":
            _apply_entry(ctx, order, evidence)
        else:
            _apply_protective(ctx, order, evidence)
    return result
