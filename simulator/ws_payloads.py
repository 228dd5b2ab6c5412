"""Kraken Futures websocket message shapes (`wss://futures.kraken.com/ws/v1`, private feeds), built from the
engine's records. Numbers are JSON numbers, times epoch milliseconds, as Kraken sends them. Shapes follow Kraken's
websocket reference (fills, open_orders, open_positions, balances, heartbeat) and what ccxt.pro's krakenfutures
parser reads; the `reason` strings for triggers are the simulator's choice (Kraken does not publish a full list)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from lifecycle.clock import to_ms
from simulator.margin import AccountState
from simulator.models import HistoryEvent, HistoryKind, SimFill, SimOrder, SimPosition

Json = dict[str, Any]
ACCOUNT = "5e0c9a59-0000-4000-8000-000000000001"
_OPEN_TYPE = {
    "lmt": "limit",
    "post": "limit",
    "ioc": "limit",
    "mkt": "limit",
    "stp": "stop",
    "take_profit": "take_profit",
}
_SIGNAL = {"mark": "mark_price", "last": "last_price", "index": "spot_price"}


def num(value: Decimal) -> float | int:
    """A JSON number; integral values stay integers (`0`, not `0.0`), like Kraken's answers."""
    return int(value) if value == value.to_integral_value() else float(value)


def fill_element(fill: SimFill, order: SimOrder | None, *, update: bool) -> Json:
    """One element of `fills` / `fills_snapshot`. `cli_ord_id` only on updates (Kraken leaves it out of the
    snapshot, as ccxt's parser notes)."""
    out: Json = {
        "instrument": fill.symbol,
        "time": to_ms(fill.time),
        "price": num(fill.price),
        "seq": fill.seq,
        "buy": fill.side == "buy",
        "qty": num(fill.size),
        "remaining_order_qty": num(order.remaining) if order is not None else 0,
        "order_id": fill.order_id,
        "fill_id": fill.fill_id,
        "fill_type": fill.fill_type,
        "fee_paid": 0,  # fees are in the balance and the account log (fills carry none on REST either)
        "fee_currency": "USD",
        "taker_order_type": "ioc" if fill.fill_type != "maker" else "lmt",
        "order_type": (order.original_type if order is not None else "lmt"),
    }
    if update and fill.cli_ord_id:
        out["cli_ord_id"] = fill.cli_ord_id
    return out


def order_element(order: SimOrder) -> Json:
    """An `open_orders` order: `qty` is what is still open, `filled` what has filled."""
    out: Json = {
        "instrument": order.symbol,
        "time": to_ms(order.received),
        "last_update_time": to_ms(order.last_update),
        "qty": num(order.remaining),
        "filled": num(order.filled),
        "limit_price": num(order.limit_price) if order.limit_price is not None else 0,
        "stop_price": num(order.stop_price) if order.stop_price is not None else 0,
        "type": _OPEN_TYPE.get(order.order_type, "limit"),
        "order_id": order.order_id,
        "direction": 0 if order.side == "buy" else 1,
        "reduce_only": order.reduce_only,
    }
    if order.cli_ord_id:
        out["cli_ord_id"] = order.cli_ord_id
    if order.is_trigger:
        out["triggerSignal"] = _SIGNAL.get(order.trigger_signal, "mark_price")
    return out


def order_update(event: HistoryEvent) -> Json | None:
    """The `open_orders` delta an engine history event makes, or None (rejections, executions: the fill's
    OrderUpdated carries the change)."""
    order, kind = event.order, event.kind
    if kind in (HistoryKind.ORDER_PLACED, HistoryKind.TRIGGER_PLACED):
        reason = "new_placed_order_by_user" if not order.triggered else "stop_order_triggered"
        return {"feed": "open_orders", "order": order_element(order), "is_cancel": False, "reason": reason}
    if kind in (HistoryKind.ORDER_CANCELLED, HistoryKind.TRIGGER_CANCELLED):
        return {
            "feed": "open_orders",
            "order_id": order.order_id,
            "cli_ord_id": order.cli_ord_id,
            "is_cancel": True,
            "reason": event.reason or "cancelled_by_user",
        }
    if kind in (HistoryKind.ORDER_UPDATED, HistoryKind.TRIGGER_UPDATED):
        reason = event.reason or "edited_by_user"
        if reason == "full_fill":
            return {
                "feed": "open_orders",
                "order_id": order.order_id,
                "cli_ord_id": order.cli_ord_id,
                "is_cancel": True,
                "reason": "full_fill",
            }
        return {"feed": "open_orders", "order": order_element(order), "is_cancel": False, "reason": reason}
    return None


def position_element(pos: SimPosition, mark: Decimal) -> Json:
    pnl = (mark - pos.entry_price) * pos.size
    return {
        "instrument": pos.symbol,
        "balance": num(pos.size),
        "pnl": num(pnl),
        "entry_price": num(pos.entry_price),
        "mark_price": num(mark),
        "index_price": num(mark),
        "liquidation_threshold": 0,
        "effective_leverage": 0,
        "return_on_equity": 0,
        "unrealized_funding": 0,
        "initial_margin": 0,
        "initial_margin_with_orders": 0,
        "maintenance_margin": 0,
        "pnl_currency": "USD",
    }


def balances(account: AccountState, *, snapshot: bool, seq: int, now_ms: int) -> Json:
    usd = num(account.balance_value)
    flex = {
        "currencies": {
            "USD": {
                "quantity": usd,
                "value": usd,
                "collateral_value": usd,
                "available": num(account.available_margin),
                "haircut": 0,
                "conversion_spread": 0,
            }
        },
        "balance_value": usd,
        "portfolio_value": num(account.portfolio_value),
        "collateral_value": num(account.collateral_value),
        "initial_margin": num(account.initial_margin_with_orders),
        "initial_margin_without_orders": num(account.initial_margin),
        "maintenance_margin": num(account.maintenance_margin),
        "pnl": num(account.pnl),
        "unrealized_funding": num(account.unrealized_funding),
        "total_unrealized": num(account.total_unrealized),
        "total_unrealized_as_margin": num(account.total_unrealized),
        "margin_equity": num(account.margin_equity),
        "available_margin": num(account.available_margin),
    }
    feed = "balances_snapshot" if snapshot else "balances"
    return {"feed": feed, "account": ACCOUNT, "holding": {}, "futures": {}, "flex_futures": flex, "timestamp": now_ms,
            "seq": seq}  # fmt: skip
