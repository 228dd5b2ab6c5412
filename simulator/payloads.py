"""Kraken Futures JSON shapes, rendered from the engine's records (docs/reference: kraken-futures.md §2).

Kept apart from the engine so the matching logic never thinks in JSON, and from the server so these shapes can
be tested without HTTP.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from lifecycle.clock import to_ms
from simulator.candles import Bar
from simulator.engine import Simulator
from simulator.instruments import InstrumentSpec
from simulator.ledger import LedgerEntry
from simulator.margin import AccountState
from simulator.models import (
    TRIGGER_HISTORY,
    HistoryEvent,
    HistoryKind,
    OrderState,
    PlaceOutcome,
    SimFill,
    SimOrder,
    SimPosition,
)

Json = dict[str, Any]
ACCOUNT_UID = "5f0c7e4e-5a3b-4c61-9a43-3d1f0b9c0d11"
SIGNAL_TRIGGER = {"mark": "mark_price", "last": "last_price", "index": "spot_price"}
SIGNAL_OPEN = {"mark": "mark", "last": "last", "index": "spot"}
SIGNAL_HISTORY = {"mark": "MarkPrice", "last": "LastPrice", "index": "SpotPrice"}
HISTORY_TYPE = {"lmt": "Limit", "post": "Post", "ioc": "IoC", "mkt": "Market"}  # the spec's `orderType` enum
COUNTERPARTY_UID = "00000000-0000-4000-8000-000000000000"  # the synthetic book's side of every fill
ACCOUNT_ID = 1234567  # `HistoricalTrigger.accountId`: a number in the spec


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def num(value: Decimal | None) -> int | float | None:
    """A JSON number, as Kraken sends them. Only here, at the wire, does a Decimal become a float."""
    if value is None:
        return None
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def text(value: Decimal) -> str:
    """History payloads carry numbers as strings; `0` must be exactly "0" (ccxt compares the string)."""
    return format(value.normalize(), "f") if value != 0 else "0"


def envelope(sim: Simulator, **fields: Any) -> Json:
    return {"result": "success", "serverTime": iso(sim.now()), **fields}


def error(sim: Simulator, code: str) -> Json:
    return {"result": "error", "serverTime": iso(sim.now()), "error": code}


# ---------------------------------------------------------------------- market data
def margin_levels(spec: InstrumentSpec) -> list[Json]:
    return [
        {
            "numNonContractUnits": num(tier.from_notional),
            "initialMargin": num(tier.initial),
            "maintenanceMargin": num(tier.maintenance),
        }
        for tier in spec.margin_tiers
    ]


def instrument(spec: InstrumentSpec) -> Json:
    return {
        "symbol": spec.symbol,
        "type": "flexible_futures",
        "tradeable": True,
        "tickSize": num(spec.tick_size),
        "contractSize": num(spec.contract_size),
        "contractValueTradePrecision": spec.contract_value_trade_precision,
        "impactMidSize": 1,
        "maxPositionSize": num(spec.max_position_size),
        "openingDate": "2022-03-22T13:15:36.000Z",
        "marginLevels": margin_levels(spec),
        "fundingRateCoefficient": 8,
        "maxRelativeFundingRate": 0.001,
        "isin": "",
        "contractValue": 1,
        "postOnly": False,
        "feeScheduleUid": "eef90775-995b-4596-9257-0917f6134766",
        "retailMarginLevels": margin_levels(spec),  # the spec's PF_XBTUSD example lists the same tiers
        "tradfi": False,
        "mtf": False,
        "category": "",
        "tags": [],
        "base": spec.base,
        "quote": "USD",
        "pair": f"{spec.base}:USD",
    }


def ticker(sim: Simulator, spec: InstrumentSpec) -> Json:
    quote = sim.quote(spec.symbol)
    now = sim.now()
    day_ago = to_ms(now) - 86_400_000
    bars = sim.candles.since(spec.symbol, "trade", day_ago)
    open24 = bars[0].open if bars else quote.last
    vol24 = sum((b.volume for b in bars), Decimal(0))
    last_trade = sim.last_trade(spec.symbol)
    return {
        "tag": "perpetual",
        "pair": f"{spec.base}:USD",
        "symbol": spec.symbol,
        "markPrice": num(quote.mark),
        "bid": num(quote.bid),
        "bidSize": num(quote.level_size),
        "ask": num(quote.ask),
        "askSize": num(quote.level_size),
        "vol24h": num(vol24),
        "volumeQuote": num((vol24 * quote.last).quantize(Decimal("0.01"))),
        "openInterest": 0,
        "open24h": num(open24),
        "high24h": num(max((b.high for b in bars), default=quote.last)),
        "low24h": num(min((b.low for b in bars), default=quote.last)),
        "indexPrice": num(quote.index),
        "last": num(quote.last),
        "lastTime": iso(now),
        "lastSize": num(last_trade[1]) if last_trade else 0,
        "suspended": sim.is_suspended(spec.symbol),
        "fundingRate": num(sim.funding_rate(spec.symbol)),  # absolute: USD per contract per hour
        "fundingRatePrediction": num(sim.funding_rate(spec.symbol)),
        "postOnly": False,
        "change24h": num(((quote.last - open24) / open24 * 100).quantize(Decimal("0.0001"))),
    }


def candle(bar: Bar) -> Json:
    return {
        "time": bar.time_ms,
        "open": text(bar.open),
        "high": text(bar.high),
        "low": text(bar.low),
        "close": text(bar.close),
        "volume": num(bar.volume),
    }


def order_book(sim: Simulator, symbol: str, levels: int = 10) -> Json:
    quote = sim.quote(symbol)
    spec = sim.instruments[symbol]
    step = max(spec.tick_size, spec.round_price(quote.last * sim.config.spread_bps / 10000))
    bids = [[num(quote.bid - step * i), num(quote.level_size)] for i in range(levels) if quote.bid - step * i > 0]
    asks = [[num(quote.ask + step * i), num(quote.level_size)] for i in range(levels)]
    return {"bids": bids, "asks": asks}


# ---------------------------------------------------------------------- orders (derivatives API)
def order_json(order: SimOrder, *, symbol: str | None = None) -> Json:
    return {
        "orderId": order.order_id,
        "cliOrdId": order.cli_ord_id,
        "type": "ioc" if order.order_type == "mkt" else order.order_type,
        "symbol": symbol or order.symbol,
        "side": order.side,
        "quantity": num(order.size),
        "filled": num(order.filled),
        "limitPrice": num(order.limit_price),
        "reduceOnly": order.reduce_only,
        "timestamp": iso(order.received),
        "lastUpdateTimestamp": iso(order.last_update),
    }


def cancel_event(order: SimOrder) -> Json:
    """The spec's `CancelEvent` (an order) or `CancelTriggerEvent` (a stop or take-profit: `orderTrigger`)."""
    if order.is_trigger:
        return {"type": "CANCEL", "uid": order.order_id, "orderTrigger": trigger_json(order)}
    return {"type": "CANCEL", "uid": order.order_id, "order": order_json(order)}


def edited_json(order: SimOrder) -> Json:
    """The `old`/`new` of an EDIT event: the spec's `OrderJson` (`limitPrice` a number, 0 for a stop-market;
    `type` stp for any trigger), plus the trigger fields a stop's edit must show."""
    if not order.is_trigger:
        return order_json(order)
    out = order_json(order)
    out["type"] = "stp"
    out["limitPrice"] = num(order.limit_price) if order.limit_price is not None else 0
    out["triggerPrice"] = num(order.stop_price)
    out["triggerSide"] = trigger_side(order)
    out["triggerSignal"] = SIGNAL_TRIGGER[order.trigger_signal]
    return out


def trigger_side(order: SimOrder) -> str:
    falling = (order.order_type == "stp") == (order.side == "sell")
    return "trigger_below" if falling else "trigger_above"


def trigger_json(order: SimOrder, *, symbol: str | None = None) -> Json:
    return {
        "uid": order.order_id,
        "clientId": order.cli_ord_id,
        "type": "lmt" if order.limit_price is not None else "ioc",
        "symbol": symbol or order.symbol,
        "side": order.side,
        "quantity": num(order.size),
        "limitPrice": num(order.limit_price),
        "triggerPrice": num(order.stop_price),
        "triggerSide": trigger_side(order),
        "triggerSignal": SIGNAL_TRIGGER[order.trigger_signal],
        "reduceOnly": order.reduce_only,
        "timestamp": iso(order.received),
        "lastUpdateTimestamp": iso(order.last_update),
        "startTime": None,
    }


def send_status(sim: Simulator, outcome: PlaceOutcome, market_limit: Decimal | None = None) -> Json:
    if outcome.order is None:
        return {"status": outcome.status, "receivedTime": iso(sim.now()), "orderEvents": []}
    order, prior = outcome.order, outcome.prior or outcome.order
    reduced = num(outcome.reduced_quantity)
    if prior.is_trigger:
        # Kraken acknowledges a trigger order with its PLACE event; an immediate trigger executes afterwards and
        # shows up in fills, never as executions of the sendorder answer (ccxt would read an empty list as rejected).
        events = [{"type": "PLACE", "orderTrigger": trigger_json(prior), "reducedQuantity": reduced}]
    else:
        events = _executions(outcome, prior, market_limit)
        if order.state is OrderState.OPEN:
            events.append({"type": "PLACE", "order": order_json(order), "reducedQuantity": reduced})
    return {
        "order_id": order.order_id,
        "status": outcome.status,
        "receivedTime": iso(order.received),
        "cliOrdId": order.cli_ord_id,
        "orderEvents": events,
    }


def _executions(outcome: PlaceOutcome, prior: SimOrder, market_limit: Decimal | None) -> list[Json]:
    prior_json = order_json(prior)
    if prior.order_type == "mkt" and market_limit is not None:
        prior_json["limitPrice"] = num(market_limit)
    events: list[Json] = []
    filled_so_far = Decimal(0)
    for fill in outcome.fills:
        prior_json = {**prior_json, "filled": num(filled_so_far)}
        events.append(
            {
                "type": "EXECUTION",
                "executionId": fill.fill_id,
                "price": num(fill.price),
                "amount": num(fill.size),
                "orderPriorEdit": None,
                "orderPriorExecution": prior_json,
                "takerReducedQuantity": None,
            }
        )
        filled_so_far += fill.size
    return events


def open_order(order: SimOrder, *, symbol: str | None = None) -> Json:
    out: Json = {
        "order_id": order.order_id,
        "symbol": symbol or order.symbol,
        "side": order.side,
        "orderType": {"stp": "stop", "take_profit": "take_profit"}.get(order.order_type, "lmt"),
        "unfilledSize": num(order.remaining),
        "filledSize": num(order.filled),
        "status": "partiallyFilled" if order.filled > 0 else "untouched",
        "reduceOnly": order.reduce_only,
        "receivedTime": iso(order.received),
        "lastUpdateTime": iso(order.last_update),
    }
    if order.cli_ord_id is not None:
        out["cliOrdId"] = order.cli_ord_id
    if order.limit_price is not None:
        out["limitPrice"] = num(order.limit_price)
    if order.is_trigger:
        out["stopPrice"] = num(order.stop_price)
        out["triggerSignal"] = SIGNAL_OPEN[order.trigger_signal]
    return out


def status_order(order: SimOrder, *, symbol: str | None = None) -> Json:
    if order.state is OrderState.FILLED:
        status = "FULLY_EXECUTED"
    elif order.state is OrderState.CANCELLED:
        status = "CANCELLED"
    elif order.is_trigger:
        status = "TRIGGER_PLACED"
    else:
        status = "ENTERED_BOOK"  # partly filled too: the spec's `OrderStatusJson` has no partial status
    inner = order_json(order, symbol=symbol)
    inner["type"] = "TRIGGER_ORDER" if order.is_trigger else "ORDER"
    inner["priceTriggerOptions"] = (
        {
            "triggerPrice": num(order.stop_price),
            "triggerSide": trigger_side(order).upper(),
            "triggerSignal": SIGNAL_HISTORY[order.trigger_signal].upper(),
        }
        if order.is_trigger
        else None
    )
    inner["triggerTime"] = None
    inner["algoId"] = None
    return {"order": inner, "status": status, "updateReason": None, "error": None}


def fill_json(fill: SimFill, *, symbol: str | None = None) -> Json:
    return {
        "fill_id": fill.fill_id,
        "order_id": fill.order_id,
        "cliOrdId": fill.cli_ord_id,
        "symbol": symbol or fill.symbol,
        "side": fill.side,
        "size": num(fill.size),
        "price": num(fill.price),
        "fillTime": iso(fill.time),
        "fillType": fill.fill_type,
    }


def position_json(pos: SimPosition, leverage: Decimal | None, *, symbol: str | None = None) -> Json:
    out: Json = {
        "side": pos.side,
        "symbol": symbol or pos.symbol,
        "price": num(pos.entry_price),
        "fillTime": iso(pos.fill_time),
        "size": num(abs(pos.size)),
        "unrealizedFunding": 0,
        "pnlCurrency": "USD",
    }
    if leverage is not None:
        out["maxFixedLeverage"] = num(leverage)
    return out


def accounts(account: AccountState) -> Json:
    usd = account.usd
    currencies: Json = {
        "USD": {
            "quantity": num(usd),
            "value": num(usd),
            "collateral": num(usd),
            "available": num(max(Decimal(0), min(usd, account.available_margin))),
        }
    }
    for holding in account.holdings:
        currencies[holding.currency] = {
            "quantity": num(holding.quantity),
            "value": num(holding.value),
            "collateral": num(holding.collateral),
            "available": num(holding.quantity),  # as in Kraken's example: nothing is reserved from a coin itself
        }
    return {
        "cash": {"type": "cashAccount", "balances": {"usd": 0, "xbt": 0}},
        "flex": {
            "type": "multiCollateralMarginAccount",
            "currencies": currencies,
            "initialMargin": num(account.initial_margin),
            "initialMarginWithOrders": num(account.initial_margin_with_orders),
            "maintenanceMargin": num(account.maintenance_margin),
            "balanceValue": num(account.balance_value),
            "portfolioValue": num(account.portfolio_value),
            "collateralValue": num(account.collateral_value),
            "pnl": num(account.pnl),
            "unrealizedFunding": num(account.unrealized_funding),
            "totalUnrealized": num(account.total_unrealized),
            "totalUnrealizedAsMargin": num(account.total_unrealized),
            "availableMargin": num(account.available_margin),
            "marginEquity": num(account.margin_equity),
        },
    }


# ---------------------------------------------------------------------- history API
def history_order(order: SimOrder) -> Json:
    return {
        "uid": order.order_id,
        "accountUid": ACCOUNT_UID,
        "tradeable": order.symbol,
        "direction": "Buy" if order.side == "buy" else "Sell",
        "quantity": text(order.remaining),
        "filled": text(order.filled),
        "timestamp": to_ms(order.received),
        # the spec's `limitPrice` is a required decimal string: "0" where the order has no limit (a market order)
        "limitPrice": text(order.limit_price) if order.limit_price is not None else "0",
        "orderType": HISTORY_TYPE.get(order.order_type, "Limit"),
        "clientId": order.cli_ord_id or "",
        "reduceOnly": order.reduce_only,
        "lastUpdateTimestamp": to_ms(order.last_update),
        "spotData": None,
    }


def history_trigger(order: SimOrder) -> Json:
    return {
        "uid": order.order_id,
        "accountId": ACCOUNT_ID,
        "accountUid": ACCOUNT_UID,
        "tradeable": order.symbol,
        "direction": "Buy" if order.side == "buy" else "Sell",
        "quantity": text(order.size),
        "timestamp": to_ms(order.received),
        "limitPrice": text(order.limit_price) if order.limit_price is not None else "0",
        "orderType": "Limit" if order.limit_price is not None else "Market",
        "clientId": order.cli_ord_id or "",
        "reduceOnly": order.reduce_only,
        "lastUpdateTimestamp": to_ms(order.last_update),
        "triggerOptions": {
            "triggerPrice": text(order.stop_price or Decimal(0)),
            "triggerSide": "Below" if trigger_side(order) == "trigger_below" else "Above",
            "triggerSignal": SIGNAL_HISTORY[order.trigger_signal],
            "trailingStopOptions": None,
            "limitPriceOffset": None,
        },
    }


def counterparty(fill: SimFill) -> Json:
    """The other side of one of our fills: the synthetic book's order, in the spec's `HistoricalOrder` shape."""
    return {
        "uid": COUNTERPARTY_UID,
        "accountUid": COUNTERPARTY_UID,
        "tradeable": fill.symbol,
        "direction": "Sell" if fill.side == "buy" else "Buy",
        "quantity": "0",
        "filled": text(fill.size),
        "timestamp": to_ms(fill.time),
        "limitPrice": text(fill.price),
        "orderType": "Limit",
        "clientId": "",
        "reduceOnly": False,
        "lastUpdateTimestamp": to_ms(fill.time),
        "spotData": None,
    }


def execution(fill: SimFill, order: SimOrder, mark: Decimal | None = None) -> Json:
    return {
        "uid": fill.fill_id,
        "makerOrder": counterparty(fill),
        "takerOrder": history_order(order),
        "makerOrderData": None,  # nullable in the spec; fees are in the account log
        "takerOrderData": None,
        "timestamp": to_ms(fill.time),
        "quantity": text(fill.size),
        "price": text(fill.price),
        "markPrice": text(mark) if mark is not None else text(fill.price),
        "limitFilled": order.remaining <= 0,
        "usdValue": text((fill.size * fill.price).quantize(Decimal("0.0001"))),
    }


def history_element(event: HistoryEvent) -> Json:
    body: Json
    if event.kind is HistoryKind.EXECUTION:
        assert event.fill is not None
        body = {"execution": execution(event.fill, event.order), "takerReducedQuantity": ""}
    elif event.kind is HistoryKind.TRIGGER_UPDATED:
        assert event.old_order is not None
        body = {
            "oldOrderTrigger": history_trigger(event.old_order),
            "newOrderTrigger": history_trigger(event.order),
            "reason": event.reason,
        }
    elif event.kind in TRIGGER_HISTORY:
        body = {"order": history_trigger(event.order), "reason": event.reason or "new_user_order"}
    elif event.kind is HistoryKind.ORDER_UPDATED:
        assert event.old_order is not None
        body = {
            "oldOrder": history_order(event.old_order),
            "newOrder": history_order(event.order),
            "reason": event.reason,
            "reducedQuantity": "0",
        }
    elif event.kind is HistoryKind.ORDER_PLACED:
        body = {"order": history_order(event.order), "reason": "new_placed_order_by_user", "reducedQuantity": ""}
    elif event.kind is HistoryKind.ORDER_REJECTED:
        body = {"order": history_order(event.order), "orderError": event.reason, "reason": event.reason}
    else:
        body = {"order": history_order(event.order), "reason": event.reason}
    return {
        "uid": event.uid,
        "timestamp": to_ms(event.time),
        "sequenceNumber": event.seq,
        "event": {event.kind.value: body},
    }


def history_page(sim: Simulator, elements: Iterable[Json], token: str | None) -> Json:
    items = list(elements)
    out: Json = {"accountUid": ACCOUNT_UID, "len": len(items), "serverTime": iso(sim.now()), "elements": items}
    if token is not None:
        out["continuationToken"] = token
    return out


# ---------------------------------------------------------------------- account log
def account_log_entry(entry: LedgerEntry) -> Json:
    """One `AccountLogEntry` (futures-rest/history/_schemas.yml): every required field, numbers as JSON numbers."""
    return {
        "asset": entry.asset,
        "booking_uid": entry.booking_uid,
        "collateral": "USD" if entry.is_cash else None,
        "contract": entry.contract,
        "date": iso(entry.time),
        "execution": entry.execution,
        "fee": num(entry.fee),
        "funding_rate": num(entry.funding_rate),
        "id": entry.id,
        "info": entry.info,
        "margin_account": "flex",
        "mark_price": num(entry.mark_price),
        "new_average_entry_price": num(entry.new_average_entry_price),
        "new_balance": num(entry.new_balance),
        "old_average_entry_price": num(entry.old_average_entry_price),
        "old_balance": num(entry.old_balance),
        "realized_funding": num(entry.realized_funding),
        "realized_pnl": num(entry.realized_pnl),
        "trade_price": num(entry.trade_price),
        "conversion_spread_percentage": None,
        "liquidation_fee": None,
    }
