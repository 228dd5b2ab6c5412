"""Kraken Futures websocket elements (as ccxt.pro hands them over in each structure's `info`) into our typed values.
Pure functions; a malformed element raises `MalformedResponse` like every REST parse (exchange/kraken_parse.py)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from exchange import kraken_parse as kp
from exchange.errors import MalformedResponse
from lifecycle.values import OrderStatus, OrderType, Side, VenueFill, VenueOrder

KeyFn = kp.KeyFn


def fill(raw: Mapping[str, Any], key: KeyFn) -> VenueFill:
    """One element of `fills` / `fills_snapshot` (`cli_ord_id` only on updates)."""
    what = f"ws fill {raw.get('fill_id')!r}"
    if not raw.get("fill_id") or not raw.get("order_id") or not raw.get("instrument"):
        raise MalformedResponse(f"{what}: fill_id, order_id and instrument are required (got {sorted(raw)[:10]})")
    buy = raw.get("buy")
    if not isinstance(buy, bool):
        raise MalformedResponse(f"{what}: `buy` must be true or false, got {buy!r}")
    return VenueFill(
        fill_id=str(raw["fill_id"]),
        order_id=str(raw["order_id"]),
        client_order_id=str(raw["cli_ord_id"]) if raw.get("cli_ord_id") else None,
        symbol=key(str(raw["instrument"])),
        side=Side.BUY if buy else Side.SELL,
        size=kp.dec(raw.get("qty"), f"{what}.qty"),
        price=kp.dec(raw.get("price"), f"{what}.price"),
        time=kp.when(raw.get("time"), f"{what}.time"),
    )


_STATUS = {"closed": OrderStatus.FILLED, "canceled": OrderStatus.CANCELLED, "cancelled": OrderStatus.CANCELLED}


def order(parsed: Mapping[str, Any], key: KeyFn) -> VenueOrder | None:
    """A ccxt.pro order structure from the `open_orders` feed, or None when it carries too little to be one
    (a cancel of an order this connection never saw: only its id and reason)."""
    info = parsed.get("info")
    raw: Mapping[str, Any] = info if isinstance(info, Mapping) else {}
    inner = raw.get("order")
    if isinstance(inner, Mapping):
        raw = inner
    instrument = raw.get("instrument")
    order_id = parsed.get("id") or raw.get("order_id")
    if not instrument or not order_id:
        return None
    what = f"ws order {order_id!r}"
    open_qty = kp.dec(raw.get("qty", 0), f"{what}.qty")
    filled = kp.dec(raw.get("filled", 0), f"{what}.filled")
    limit = kp.opt_dec(raw.get("limit_price"), f"{what}.limit_price")
    stop = kp.opt_dec(raw.get("stop_price"), f"{what}.stop_price")
    status = _STATUS.get(str(parsed.get("status") or ""), OrderStatus.OPEN)
    return VenueOrder(
        order_id=str(order_id),
        client_order_id=str(raw["cli_ord_id"]) if raw.get("cli_ord_id") else None,
        symbol=key(str(instrument)),
        side=Side.BUY if raw.get("direction") == 0 else Side.SELL,
        order_type=kp.order_type(raw.get("type", "limit"), what),
        size=open_qty + filled,
        filled=filled,
        limit_price=limit if limit else None,
        trigger_price=stop if stop and stop != Decimal(0) else None,
        reduce_only=bool(raw.get("reduce_only", False)),
        status=status,
        time=kp.opt_when(raw.get("last_update_time") or raw.get("time"), f"{what}.time"),
    )


def cancel_reason(parsed: Mapping[str, Any]) -> str | None:
    """Kraken's `reason` of a removal (`cancelled_by_user`, `full_fill`, `cancelled_by_admin`, ...), if any."""
    info = parsed.get("info")
    if isinstance(info, Mapping) and info.get("reason"):
        return str(info["reason"])
    return None


def is_trigger(o: VenueOrder) -> bool:
    return o.order_type in (OrderType.STOP, OrderType.TAKE_PROFIT)
