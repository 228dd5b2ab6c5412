"""Startup recovery of entry orders left in flight, resolved by evidence over HTTP (never re-sent)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from lifecycle.values import OrderRequest, OrderType, Side
from operations.recovery import recover_in_flight
from tests.daemon.harness import world

ETH = "PF_ETHUSD"


def test_entry_sent_before_the_crash_is_adopted_with_its_fills(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        pos = w.registry.open_intent(
            symbol=ETH, side="long", target_qty=Decimal("0.2"), stop_price=Decimal(3000), cause="test"
        )
        order = w.registry.record_order_intent(
            pos.uid, purpose="entry", side="buy", order_type="market", qty=Decimal("0.2")
        )
        # The previous run sent it and died before recording anything.
        w.venue.place_order(OrderRequest(ETH, Side.BUY, OrderType.MARKET, Decimal("0.2"), order.client_order_id))
        result = recover_in_flight(w.ctx, wait_s=0)
        assert (result.adopted, result.abandoned) == ([order.client_order_id], [])
        after = w.registry.get(pos.uid)
        assert after.state == "OPEN" and after.remaining_qty == Decimal("0.2")
        assert w.registry.order_by_client_id(order.client_order_id).status == "filled"  # type: ignore[union-attr]
        assert len(w.sim.order_log) == 1  # looked up, not re-sent
        w.protect()
        assert w.registry.get(pos.uid).state == "PROTECTED"


def test_entry_never_sent_is_abandoned_after_three_lookups(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        pos = w.registry.open_intent(
            symbol=ETH, side="long", target_qty=Decimal("0.2"), stop_price=Decimal(3000), cause="test"
        )
        order = w.registry.record_order_intent(
            pos.uid, purpose="entry", side="buy", order_type="market", qty=Decimal("0.2")
        )
        waits: list[float] = []
        result = recover_in_flight(w.ctx, checks=3, wait_s=2.5, sleep=waits.append)
        assert (result.adopted, result.abandoned) == ([], [order.client_order_id])
        assert waits == [2.5, 2.5]
        assert w.registry.get(pos.uid).state == "CANCELLED"
        assert w.sim.order_log == []
        assert w.audit_ok()
