"""Parse Kraken Futures' raw JSON (as served to ccxt) into our typed values. Pure functions, no I/O.

Every function raises `MalformedResponse` when a payload lacks what it must carry: an HTTP 200 with a missing
`openOrders` key must never read as "no open orders".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from exchange.errors import MalformedResponse
from lifecycle.clock import from_ms
from lifecycle.values import (
    MarginSnapshot,
    OrderStatus,
    OrderType,
    PositionSide,
    Side,
    VenueFill,
    VenueOrder,
    VenuePosition,
)

KeyFn = Callable[[str], str]  # venue spelling -> canonical key

# Kraken orderType spellings (openorders, order events, trigger events, history) -> our order type
_ORDER_TYPES: dict[str, OrderType] = {
    "lmt": OrderType.LIMIT,
    "limit": OrderType.LIMIT,
    "post": OrderType.LIMIT,
    "mkt": OrderType.MARKET,
    "market": OrderType.MARKET,
    "ioc": OrderType.MARKET,
    "stp": OrderType.STOP,
    "stop": OrderType.STOP,
    "take_profit": OrderType.TAKE_PROFIT,
    "takeprofit": OrderType.TAKE_PROFIT,
    "post only": OrderType.LIMIT,
}
_STATUS_RANK = {OrderStatus.OPEN: 0, OrderStatus.FILLED: 1, OrderStatus.CANCELLED: 1, OrderStatus.REJECTED: 1}


def require(payload: object, key: str, kind: type, what: str) -> Any:
    if not isinstance(payload, Mapping) or key not in payload or not isinstance(payload[key], kind):
        got = type(payload).__name__ if not isinstance(payload, Mapping) else sorted(payload)[:8]
        raise MalformedResponse(
            f"{what}: the venue's answer has no {kind.__name__} `{key}` (got {got}); refusing to read it as empty. "
            f"If this persists the venue or the base URL is wrong."
        )
    return payload[key]


def dec(value: object, what: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise MalformedResponse(f"{what}: expected a number, got {value!r}")
    try:
        # str() of a float is its shortest round-trip form, so 65001.1 stays 65001.1
        return Decimal(str(value))
    except InvalidOperation:
        raise MalformedResponse(f"{what}: expected a number, got {value!r}") from None


def opt_dec(value: object, what: str) -> Decimal | None:
    if value is None or value == "":
        return None
    return dec(value, what)


def when(value: object, what: str) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return from_ms(int(value))
    if isinstance(value, str) and value:
        if value.isdigit():
            return from_ms(int(value))
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise MalformedResponse(f"{what}: unparseable time {value!r}") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise MalformedResponse(f"{what}: missing or unparseable time {value!r}")


def opt_when(value: object, what: str) -> datetime | None:
    return None if value in (None, "") else when(value, what)


def side(value: object, what: str) -> Side:
    text = str(value).lower()
    if text not in ("buy", "sell"):
        raise MalformedResponse(f"{what}: unknown side {value!r}")
    return Side(text)


def order_type(value: object, what: str) -> OrderType:
    found = _ORDER_TYPES.get(str(value).lower())
    if found is None:
        raise MalformedResponse(f"{what}: unknown order type {value!r}")
    return found


def server_time(payload: object) -> datetime | None:
    if isinstance(payload, Mapping) and payload.get("serverTime"):
        return when(payload["serverTime"], "serverTime")
    return None


def margin(payload: object, now: datetime) -> MarginSnapshot:
    accounts = require(payload, "accounts", dict, "accounts")
    flex = require(accounts, "flex", dict, "accounts")
    what = "accounts.flex"
    stamp = server_time(payload)
    return MarginSnapshot(
        portfolio_value=dec(flex.get("portfolioValue"), f"{what}.portfolioValue"),
        margin_equity=dec(flex.get("marginEquity"), f"{what}.marginEquity"),
        initial_margin=dec(flex.get("initialMargin"), f"{what}.initialMargin"),
        maintenance_margin=dec(flex.get("maintenanceMargin"), f"{what}.maintenanceMargin"),
        available_margin=dec(flex.get("availableMargin"), f"{what}.availableMargin"),
        time=stamp or now,
        server_time_known=stamp is not None,
    )


def positions(payload: object, key: KeyFn) -> list[VenuePosition]:
    out: list[VenuePosition] = []
    for raw in require(payload, "openPositions", list, "openpositions"):
        what = f"openpositions[{raw.get('symbol')!r}]"
        size = dec(raw.get("size"), f"{what}.size")
        if size == 0:
            continue
        side_text = str(raw.get("side", "")).lower()
        if side_text not in ("long", "short"):
            raise MalformedResponse(f"{what}: unknown position side {raw.get('side')!r}")
        out.append(
            VenuePosition(
                symbol=key(str(raw["symbol"])),
                side=PositionSide(side_text),
                size=abs(size),
                entry_price=dec(raw.get("price"), f"{what}.price"),
                time=opt_when(raw.get("fillTime"), f"{what}.fillTime"),
            )
        )
    return out


def open_orders(payload: object, key: KeyFn) -> list[VenueOrder]:
    out: list[VenueOrder] = []
    for raw in require(payload, "openOrders", list, "openorders"):
        what = f"openorders[{raw.get('order_id')!r}]"
        kind = order_type(raw.get("orderType"), what)
        filled = dec(raw.get("filledSize", 0), f"{what}.filledSize")
        unfilled = dec(raw.get("unfilledSize"), f"{what}.unfilledSize")
        limit = opt_dec(raw.get("limitPrice"), f"{what}.limitPrice")
        if kind in (OrderType.STOP, OrderType.TAKE_PROFIT) and limit == 0:
            limit = None  # Kraken lists stop-market orders with limitPrice 0
        out.append(
            VenueOrder(
                order_id=str(raw["order_id"]),
                client_order_id=raw.get("cliOrdId") or None,
                symbol=key(str(raw["symbol"])),
                side=side(raw.get("side"), what),
                order_type=kind,
                size=filled + unfilled,
                filled=filled,
                limit_price=limit,
                trigger_price=opt_dec(raw.get("stopPrice"), f"{what}.stopPrice"),
                reduce_only=bool(raw.get("reduceOnly", False)),
                status=OrderStatus.OPEN,
                time=opt_when(raw.get("receivedTime"), f"{what}.receivedTime"),
            )
        )
    return out


def fills(payload: object, key: KeyFn) -> list[VenueFill]:
    out: list[VenueFill] = []
    for raw in require(payload, "fills", list, "fills"):
        what = f"fills[{raw.get('fill_id')!r}]"
        out.append(
            VenueFill(
                fill_id=str(raw["fill_id"]),
                order_id=str(raw["order_id"]),
                client_order_id=raw.get("cliOrdId") or None,
                symbol=key(str(raw["symbol"])),
                side=side(raw.get("side"), what),
                size=dec(raw.get("size"), f"{what}.size"),
                price=dec(raw.get("price"), f"{what}.price"),
                time=when(raw.get("fillTime"), f"{what}.fillTime"),
            )
        )
    return out


def _quantity_reading(body: Mapping[str, Any]) -> str | None:
    """Whether an event's `quantity` is what remains or the original size, when the event itself shows it.

    Kraken's spec (history/api-public.yml `HistoricalOrder.quantity`) does not say. An `OrderUpdated` carrying a
    fill does: if `quantity` fell by exactly what `filled` rose, it is the remainder; if it stayed, the original
    size. Anything else (no fill in the event, no old order) cannot tell."""
    old, new = body.get("oldOrder"), body.get("newOrder")
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return None
    try:
        rise = dec(new.get("filled"), "filled") - dec(old.get("filled"), "filled")
        before, after = dec(old.get("quantity"), "quantity"), dec(new.get("quantity"), "quantity")
    except MalformedResponse:
        return None
    if rise <= 0:
        return None
    if after == before - rise:
        return "remaining"
    if after == before:
        return "original"
    return None


def _history_status(event_name: str, filled: Decimal, quantity: Decimal, reading: str | None) -> OrderStatus:
    if "Reject" in event_name:
        return OrderStatus.REJECTED
    if "Cancel" in event_name:
        return OrderStatus.CANCELLED
    if "Updated" in event_name or "Execution" in event_name or "Fill" in event_name:
        if reading == "remaining":
            return OrderStatus.FILLED if quantity == 0 else OrderStatus.OPEN
        if reading == "original":
            return OrderStatus.FILLED if filled >= quantity > 0 else OrderStatus.OPEN
        # Unknown reading: FILLED only where both readings agree (nothing remains, something filled). An order
        # reported OPEN that is in fact filled is corrected by the next reconciliation from the fills themselves.
        return OrderStatus.FILLED if quantity == 0 and filled > 0 else OrderStatus.OPEN
    return OrderStatus.OPEN


# An `OrderRejected` that only says the id was taken is the echo of a retry, not the order under that id.
_ID_TAKEN = "clientOrderIdAlreadyExist"


def history_order(payload: object, client_order_id: str, key: KeyFn, trigger: bool) -> VenueOrder | None:
    """The latest history event for `client_order_id`, as a VenueOrder (None when history never saw it).

    Reads `/orders` events (`order`, `newOrder`, an execution's `takerOrder`) and `/triggers` events (`order`,
    and `newOrderTrigger` of `OrderTriggerUpdated`, where Kraken's spec logs edits of an untriggered stop). An
    accepted order beats any rejection under the same id, whatever their times: ids are globally unique, so a
    later rejection under a taken id is a refused retry, never the fate of the order that holds it."""
    elements = require(payload, "elements", list, "history/triggers" if trigger else "history/orders")
    best: tuple[tuple[int, int, int, int], VenueOrder] | None = None
    for element in elements:
        event = element.get("event") if isinstance(element, Mapping) else None
        if not isinstance(event, Mapping):
            continue
        for name, body in event.items():
            if not isinstance(body, Mapping):
                continue
            order = (
                body.get("newOrder") or body.get("newOrderTrigger") or body.get("order") or body.get("takerOrder") or {}
            )
            if not isinstance(order, Mapping) or order.get("clientId") != client_order_id:
                continue
            if "Reject" in name and (body.get("orderError") == _ID_TAKEN or body.get("reason") == _ID_TAKEN):
                continue
            stamp = int(element.get("timestamp") or 0)
            seq = int(element.get("sequenceNumber") or 0)  # optional in the spec; orders events of one millisecond
            what = f"history {name}"
            parsed = _history_venue_order(name, order, key, what, trigger, body)
            # accepted beats rejected; then the latest event wins; at one timestamp a terminal status beats "open",
            # then the higher sequence number
            accepted = 0 if parsed.status is OrderStatus.REJECTED else 1
            rank = (accepted, stamp, _STATUS_RANK[parsed.status], seq)
            if best is None or rank >= best[0]:
                best = (rank, parsed)
    return None if best is None else best[1]


def _history_venue_order(
    name: str, order: Mapping[str, Any], key: KeyFn, what: str, trigger: bool, body: Mapping[str, Any]
) -> VenueOrder:
    filled = opt_dec(order.get("filled"), f"{what}.filled") or Decimal(0)
    quantity = opt_dec(order.get("quantity"), f"{what}.quantity") or Decimal(0)
    reading = _quantity_reading(body)
    kind_text = order.get("orderType") or order.get("type") or ("stp" if trigger else "lmt")
    kind = order_type(kind_text, what)
    if trigger and kind in (OrderType.MARKET, OrderType.LIMIT):
        kind = OrderType.STOP
    options = order.get("triggerOptions") or order.get("priceTriggerOptions") or {}
    trigger_price = options.get("triggerPrice") if isinstance(options, Mapping) else None
    return VenueOrder(
        order_id=str(order.get("uid") or order.get("orderId")),
        client_order_id=str(order.get("clientId")) or None,
        symbol=key(str(order.get("tradeable") or order.get("symbol"))),
        side=side(order.get("direction") or order.get("side"), what),
        order_type=kind,
        size=quantity if reading == "original" else filled + quantity,
        filled=filled,
        # the spec's history `limitPrice` is a required decimal: "0" (or "") where the order has no limit
        limit_price=opt_dec(order.get("limitPrice"), f"{what}.limitPrice") or None,
        trigger_price=opt_dec(trigger_price, f"{what}.triggerPrice"),
        reduce_only=bool(order.get("reduceOnly", False)),
        status=_history_status(name, filled, quantity, reading),
        time=opt_when(order.get("lastUpdateTimestamp") or order.get("timestamp"), f"{what}.timestamp"),
    )


ACCEPTED_SEND_STATUSES = frozenset({"placed", "partiallyFilled", "filled", "edited"})


def send_status_order(
    send_status: Mapping[str, Any], request_type: OrderType, client_order_id: str, key: KeyFn, received: datetime
) -> tuple[VenueOrder, tuple[VenueFill, ...]]:
    """The order (and its immediate fills) from an accepted `sendStatus`."""
    what = f"sendStatus[{send_status.get('order_id')!r}]"
    events = send_status.get("orderEvents") or []
    if not isinstance(events, list):
        raise MalformedResponse(f"{what}: orderEvents is not a list")
    order_id = send_status.get("order_id")
    placed: Mapping[str, Any] | None = None
    prior: Mapping[str, Any] | None = None
    executions: list[Mapping[str, Any]] = []
    for event in events:
        if not isinstance(event, Mapping):
            continue
        if event.get("type") == "PLACE":
            placed = event.get("order") or event.get("orderTrigger")
        elif event.get("type") == "EXECUTION":
            executions.append(event)
            prior = prior or event.get("orderPriorExecution")
    source = placed or prior
    if source is None or not order_id:
        raise MalformedResponse(f"{what}: an accepted order without its order id or PLACE/EXECUTION event")
    filled_now = sum((dec(e.get("amount"), f"{what}.amount") for e in executions), Decimal(0))
    if prior is not None:
        # the order as received, before any execution, carries the original size
        size = dec(prior.get("quantity"), f"{what}.quantity")
        filled = filled_now
    else:
        size = dec(source.get("quantity"), f"{what}.quantity")
        filled = opt_dec(source.get("filled"), f"{what}.filled") or Decimal(0)
    if filled >= size:
        status = OrderStatus.FILLED
    elif placed is None:
        status = OrderStatus.CANCELLED  # an IOC/market remainder that did not rest
    else:
        status = OrderStatus.OPEN
    limit = opt_dec(source.get("limitPrice"), f"{what}.limitPrice")
    if request_type is OrderType.MARKET:
        limit = None  # Kraken's protective limit on a market order is not ours
    order = VenueOrder(
        order_id=str(order_id),
        client_order_id=source.get("cliOrdId") or source.get("clientId") or client_order_id,
        symbol=key(str(source["symbol"])),
        side=side(source.get("side"), what),
        order_type=request_type,
        size=size,
        filled=filled,
        limit_price=limit or None,
        trigger_price=opt_dec(source.get("triggerPrice"), f"{what}.triggerPrice"),
        reduce_only=bool(source.get("reduceOnly", False)),
        status=status,
        time=opt_when(send_status.get("receivedTime"), f"{what}.receivedTime") or received,
    )
    fill_time = order.time or received
    made = tuple(
        VenueFill(
            fill_id=str(e.get("executionId")),
            order_id=order.order_id,
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            size=dec(e.get("amount"), f"{what}.amount"),
            price=dec(e.get("price"), f"{what}.price"),
            time=fill_time,
        )
        for e in executions
    )
    return order, made


def edited_order(payload: object, key: KeyFn, fallback: VenueOrder | None) -> VenueOrder:
    """The order after an `editorder`, from the EDIT event's `new` side."""
    edit = require(payload, "editStatus", dict, "editorder")
    what = f"editStatus[{edit.get('orderId')!r}]"
    new: Mapping[str, Any] | None = None
    for event in edit.get("orderEvents") or []:
        if isinstance(event, Mapping) and event.get("type") == "EDIT" and isinstance(event.get("new"), Mapping):
            new = event["new"]
    if new is None:
        raise MalformedResponse(f"{what}: an edited order without an EDIT event")
    kind_text = new.get("type") or new.get("orderType")
    kind = fallback.order_type if fallback is not None else order_type(kind_text, what)
    quantity = dec(new.get("quantity"), f"{what}.quantity")
    filled = opt_dec(new.get("filled"), f"{what}.filled") or Decimal(0)
    limit = opt_dec(new.get("limitPrice"), f"{what}.limitPrice")
    trigger = opt_dec(new.get("triggerPrice") if "triggerPrice" in new else new.get("stopPrice"), f"{what}.trigger")
    return VenueOrder(
        order_id=str(new.get("orderId") or new.get("uid") or edit.get("orderId")),
        client_order_id=new.get("cliOrdId") or new.get("clientId") or None,
        symbol=key(str(new["symbol"])),
        side=side(new.get("side"), what),
        order_type=kind,
        size=quantity,
        filled=filled,
        limit_price=None if kind in (OrderType.STOP, OrderType.TAKE_PROFIT) and not limit else limit,
        trigger_price=trigger,
        reduce_only=bool(new.get("reduceOnly", False)),
        status=OrderStatus.FILLED if quantity and filled >= quantity else OrderStatus.OPEN,
        time=opt_when(new.get("lastUpdateTimestamp"), f"{what}.lastUpdateTimestamp"),
    )
