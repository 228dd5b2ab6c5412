"""Endpoint logic: one function per Kraken REST path, from parsed request to (HTTP status, JSON body).

Transport, authentication and injected faults live in `server.py`; this module only speaks Kraken.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qs, unquote_plus

from lifecycle.clock import to_ms
from simulator import payloads as P
from simulator.candles import PRICE_TYPES, TIMEFRAMES
from simulator.engine import Simulator, SimulatorError
from simulator.models import TRIGGER_HISTORY, HistoryEvent, HistoryKind, PlaceOutcome

Json = P.Json
ORDER_HISTORY = frozenset(
    {HistoryKind.ORDER_PLACED, HistoryKind.ORDER_UPDATED, HistoryKind.ORDER_CANCELLED, HistoryKind.ORDER_REJECTED}
)
HISTORY_KINDS = {"orders": ORDER_HISTORY, "triggers": TRIGGER_HISTORY, "executions": frozenset({HistoryKind.EXECUTION})}


@dataclass
class Request:
    method: str
    path: str
    query: str  # raw, exactly as sent (the signature covers it)
    body: str = ""
    stale_lag: float = 0.0  # STALE_SNAPSHOT fault in force
    lowercase: bool = False  # LOWERCASE_SYMBOL fault in force
    params: dict[str, list[str]] = field(default_factory=dict)
    match: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.params = parse_qs(self.query, keep_blank_values=True)

    def get(self, name: str) -> str | None:
        values = self.params.get(name)
        if not values or values[0] in ("", "None"):  # ccxt sends order_id=None when only cliOrdId is given
            return None
        return values[0]

    def sym(self, symbol: str) -> str:
        return symbol.lower() if self.lowercase else symbol


@dataclass(frozen=True)
class Response:
    status: int
    body: Json | str
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Simulator, Request], Response]


class Missing(Exception):
    pass


def ok(sim: Simulator, **fields: object) -> Response:
    return Response(200, P.envelope(sim, **fields))


def fail(sim: Simulator, code: str, status: int = 200) -> Response:
    return Response(status, P.error(sim, code))


def _decimal(value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        out = Decimal(value)
    except InvalidOperation:
        raise ValueError(value) from None
    if not out.is_finite():
        raise ValueError(value)
    return out


def _parse_time(value: str) -> datetime:
    if value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# ---------------------------------------------------------------------- public
def instruments(sim: Simulator, req: Request) -> Response:
    return ok(sim, instruments=[P.instrument(spec) for spec in sim.instruments.values()])


def tickers(sim: Simulator, req: Request) -> Response:
    return ok(sim, tickers=[P.ticker(sim, spec) for spec in sim.instruments.values()])


def ticker(sim: Simulator, req: Request) -> Response:
    spec = sim.instruments.get(req.match["symbol"])
    if spec is None:
        return fail(sim, "contractNotFound", 404)  # the spec: HTTP 404 with an error body
    return ok(sim, ticker=P.ticker(sim, spec))


def orderbook(sim: Simulator, req: Request) -> Response:
    symbol = req.get("symbol")
    if symbol is None:
        return fail(sim, "requiredArgumentMissing")
    if symbol not in sim.instruments:
        return fail(sim, "contractNotFound")
    return ok(sim, orderBook=P.order_book(sim, symbol))


def charts(sim: Simulator, req: Request) -> Response:
    ptype, symbol, tf = req.match["ptype"], req.match["symbol"], req.match["tf"]
    if symbol not in sim.instruments:
        return Response(400, {"error": "contractNotFound"})
    if ptype not in PRICE_TYPES or tf not in TIMEFRAMES:
        return Response(400, {"error": f"invalid price type or interval; use {PRICE_TYPES} and {list(TIMEFRAMES)}"})
    try:
        from_s = int(req.get("from") or 0) or None
        to_s = int(req.get("to") or 0) or None
    except ValueError:
        return Response(400, {"error": "from and to are epoch seconds"})
    # Kraken caps one answer and says so with `more_candles` (charts/api-public.yml); the cap is not documented:
    # 2000 is what ccxt pages by.
    bars, more = sim.candles.page(symbol, ptype, tf, from_s, to_s)
    return Response(200, {"candles": [P.candle(b) for b in bars], "more_candles": more})


def market_executions(sim: Simulator, req: Request) -> Response:
    symbol = req.match["symbol"]
    if symbol not in sim.instruments:
        return Response(400, {"error": "contractNotFound"})
    events = [e for e in sim.history() if e.kind is HistoryKind.EXECUTION and e.order.symbol == symbol]
    return _history_response(sim, req, events)


# ---------------------------------------------------------------------- private: reads
def accounts(sim: Simulator, req: Request) -> Response:
    return ok(sim, accounts=P.accounts(sim.account()))


def openpositions(sim: Simulator, req: Request) -> Response:
    view = sim.view(req.stale_lag)
    lev = sim.leverage_preferences()
    return ok(
        sim, openPositions=[P.position_json(p, lev.get(p.symbol), symbol=req.sym(p.symbol)) for p in view.positions]
    )


def openorders(sim: Simulator, req: Request) -> Response:
    view = sim.view(req.stale_lag)
    return ok(sim, openOrders=[P.open_order(o, symbol=req.sym(o.symbol)) for o in view.open_orders])


def orders_status(sim: Simulator, req: Request) -> Response:
    ids = req.params.get("orderIds", [])
    clis = req.params.get("cliOrdIds", [])
    if req.method == "POST" and req.body:
        body = parse_qs(req.body)
        ids, clis = ids + body.get("orderIds", []), clis + body.get("cliOrdIds", [])
    found = sim.orders_status(ids, clis)
    return ok(sim, orders=[P.status_order(o, symbol=req.sym(o.symbol)) for o in found])


def fills(sim: Simulator, req: Request) -> Response:
    last = req.get("lastFillTime")
    try:
        before = _parse_time(last) if last else None
    except ValueError:
        return fail(sim, "invalidArgument")
    return ok(sim, fills=[P.fill_json(f, symbol=req.sym(f.symbol)) for f in sim.fills(before)])


def leverage_get(sim: Simulator, req: Request) -> Response:
    symbol = req.get("symbol")
    prefs = sim.leverage_preferences()
    rows = [{"symbol": s, "maxLeverage": P.num(v)} for s, v in prefs.items() if symbol is None or s == symbol]
    return ok(sim, leveragePreferences=rows)


def leverage_put(sim: Simulator, req: Request) -> Response:
    symbol = req.get("symbol")
    if symbol is None:
        return fail(sim, "requiredArgumentMissing")
    try:
        sim.set_leverage(symbol, _decimal(req.get("maxLeverage")))
    except ValueError:
        return fail(sim, "invalidArgument")
    return ok(sim)


# ---------------------------------------------------------------------- private: orders
def _place(sim: Simulator, fields: dict[str, str | None]) -> tuple[PlaceOutcome, Decimal | None]:
    for name in ("symbol", "side", "size", "orderType"):
        if fields.get(name) is None:
            raise Missing(name)
    symbol, side, order_type = str(fields["symbol"]), str(fields["side"]), str(fields["orderType"])
    if symbol not in sim.instruments:
        raise SimulatorError("contractNotFound", f"unknown contract {symbol}")
    cli = fields.get("cliOrdId")
    try:
        size = _decimal(fields["size"]) or Decimal(0)
    except ValueError:
        return sim.reject_injected(
            "invalidSize", symbol=symbol, side=side, order_type=order_type, size=Decimal(0), cli_ord_id=cli
        ), None
    try:
        limit_price = _decimal(fields.get("limitPrice"))
        stop_price = _decimal(fields.get("stopPrice"))
    except ValueError:
        return sim.reject_injected(
            "invalidPrice", symbol=symbol, side=side, order_type=order_type, size=size, cli_ord_id=cli
        ), None
    market_limit = sim.protected_price(symbol, side) if order_type == "mkt" and side in ("buy", "sell") else None
    outcome = sim.place_order(
        symbol=symbol,
        side=side,
        order_type=order_type,
        size=size,
        limit_price=limit_price,
        stop_price=stop_price,
        trigger_signal=fields.get("triggerSignal") or "last",
        reduce_only=(fields.get("reduceOnly") or "false").lower() == "true",
        cli_ord_id=fields.get("cliOrdId"),
    )
    return outcome, market_limit


ORDER_FIELDS = ("symbol", "side", "size", "orderType", "limitPrice", "stopPrice", "triggerSignal", "reduceOnly")


def sendorder(sim: Simulator, req: Request) -> Response:
    fields = {name: req.get(name) for name in (*ORDER_FIELDS, "cliOrdId")}
    try:
        outcome, market_limit = _place(sim, fields)
    except Missing:
        return fail(sim, "requiredArgumentMissing")
    return ok(sim, sendStatus=P.send_status(sim, outcome, market_limit))


def reject_order(sim: Simulator, req: Request, status: str) -> Response:
    """The REJECT fault: answer an order endpoint with Kraken's `status` and change nothing but history."""
    size = req.get("size")
    try:
        size_value = _decimal(size) or Decimal(0)
    except ValueError:
        size_value = Decimal(0)
    outcome = sim.reject_injected(
        status,
        symbol=req.get("symbol") or "",
        side=req.get("side") or "",
        order_type=req.get("orderType") or "",
        size=size_value,
        cli_ord_id=req.get("cliOrdId"),
    )
    key = {"editorder": "editStatus", "cancelorder": "cancelStatus"}.get(req.path.rsplit("/", 1)[-1], "sendStatus")
    return ok(sim, **{key: P.send_status(sim, outcome)})


def cancelorder(sim: Simulator, req: Request) -> Response:
    order_id, cli = req.get("order_id"), req.get("cliOrdId")
    if order_id is None and cli is None:
        return fail(sim, "requiredArgumentMissing")
    status, order = sim.cancel_order(order_id, cli)
    body: Json = {"status": status, "receivedTime": P.iso(sim.now())}
    if order is not None:
        body["order_id"] = order.order_id
        if status == "cancelled":
            body["orderEvents"] = [P.cancel_event(order)]
    return ok(sim, cancelStatus=body)


def cancelallorders(sim: Simulator, req: Request) -> Response:
    symbol = req.get("symbol")
    cancelled = sim.cancel_all(symbol)
    return ok(
        sim,
        cancelStatus={
            "receivedTime": P.iso(sim.now()),
            "cancelOnly": symbol or "all",
            "status": "cancelled" if cancelled else "noOrdersToCancel",
            "cancelledOrders": [{"order_id": o.order_id} for o in cancelled],
            "orderEvents": [P.cancel_event(o) for o in cancelled],
        },
    )


def cancelallordersafter(sim: Simulator, req: Request) -> Response:
    try:
        timeout = int(req.get("timeout") or "0")
    except ValueError:
        return fail(sim, "invalidArgument")
    deadline = sim.set_dead_man_switch(timeout)
    trigger = P.iso(deadline) if deadline else "0"
    return ok(sim, status={"currentTime": P.iso(sim.now()), "triggerTime": trigger})


def editorder(sim: Simulator, req: Request) -> Response:
    order_id, cli = req.get("orderId"), req.get("cliOrdId")
    if order_id is None and cli is None:
        return fail(sim, "requiredArgumentMissing")
    try:
        size = _decimal(req.get("size"))
    except ValueError:
        return ok(sim, editStatus={"status": "invalidSize", "orderId": order_id, "orderEvents": []})
    try:
        limit_price = _decimal(req.get("limitPrice"))
        stop_price = _decimal(req.get("stopPrice"))
    except ValueError:
        return ok(sim, editStatus={"status": "invalidPrice", "orderId": order_id, "orderEvents": []})
    status, old, new = sim.edit_order(
        order_id,
        cli_ord_id=cli,
        size=size,
        limit_price=limit_price,
        stop_price=stop_price,
        qty_mode=(req.get("qtyMode") or "RELATIVE").upper(),
    )
    body: Json = {"status": status, "orderId": order_id, "receivedTime": P.iso(sim.now()), "orderEvents": []}
    if old is not None and new is not None:
        body["orderId"] = new.order_id
        body["orderEvents"] = [
            {"type": "EDIT", "old": P.edited_json(old), "new": P.edited_json(new), "reducedQuantity": None}
        ]
    return ok(sim, editStatus=body)


def batchorder(sim: Simulator, req: Request) -> Response:
    raw = req.body.removeprefix("json=")
    try:
        # ccxt sends the JSON un-encoded; Kraken's guidance says URL-encoded: accept both, never form-decode first.
        try:
            doc = json.loads(raw)
        except json.JSONDecodeError:
            doc = json.loads(unquote_plus(raw))
        items = doc["batchOrder"]
        if not isinstance(items, list):
            raise TypeError("batchOrder")
    except (json.JSONDecodeError, KeyError, TypeError):
        return fail(sim, "Json Parse Error")
    results: list[Json] = []
    for item in items:
        tag = str(item.get("order_tag", ""))
        instruction = item.get("order")
        if instruction == "send":
            fields = {
                name: None if item.get(name) is None else _field(item[name]) for name in (*ORDER_FIELDS, "cliOrdId")
            }
            try:
                outcome, market_limit = _place(sim, fields)
            except Missing:
                results.append({"status": "requiredArgumentMissing", "order_tag": tag, "orderEvents": []})
                continue
            except SimulatorError as exc:
                results.append({"status": exc.code, "order_tag": tag, "orderEvents": []})
                continue
            status = P.send_status(sim, outcome, market_limit)
            status["order_tag"] = tag
            status["dateTimeReceived"] = status.pop("receivedTime")
            results.append(status)
        elif instruction == "cancel":
            cstatus, order = sim.cancel_order(item.get("order_id"), item.get("cliOrdId"))
            entry: Json = {"status": cstatus, "order_id": item.get("order_id"), "orderEvents": []}
            if order is not None and cstatus == "cancelled":
                entry["orderEvents"] = [P.cancel_event(order)]
            results.append(entry)
        else:
            results.append({"status": "invalidArgument", "order_tag": tag, "orderEvents": []})
    return ok(sim, batchStatus=results)


def _field(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---------------------------------------------------------------------- private: history
def history(sim: Simulator, req: Request) -> Response:
    kinds = HISTORY_KINDS[req.match["kind"]]
    return _history_response(sim, req, [e for e in sim.history() if e.kind in kinds])


def _history_response(sim: Simulator, req: Request, events: list[HistoryEvent]) -> Response:
    try:
        since = int(req.get("since") or 0) or None
        before = int(req.get("before") or 0) or None
        count = int(req.get("count") or 500)
        # Kraken's spec names the query parameter `continuation_token` (the body returns `continuationToken`): the
        # camelCase spelling is ignored here, as a strict server would, so a client sending it re-reads page 1.
        offset = _token_offset(req.get("continuation_token"))
    except ValueError:
        return Response(400, {"result": "error", "error": "invalidArgument"})
    chosen = [
        e for e in events if (since is None or to_ms(e.time) >= since) and (before is None or to_ms(e.time) < before)
    ]
    if (req.get("sort") or "desc").lower() != "asc":
        chosen.reverse()
    page = chosen[offset : offset + max(1, min(count, 10000))]
    token = _token(offset + len(page)) if offset + len(page) < len(chosen) else None
    return Response(200, P.history_page(sim, (P.history_element(e) for e in page), token))


def _token(offset: int) -> str:
    """An opaque base64 token, as the spec's `NextContinuationToken` is (`format: base64`)."""
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def _token_offset(token: str | None) -> int:
    if token is None:
        return 0
    try:
        text = base64.b64decode(token, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError(token) from None
    if not text.startswith("offset:"):
        raise ValueError(token)
    return int(text.removeprefix("offset:"))


def account_log(sim: Simulator, req: Request) -> Response:
    """`/api/history/v3/account-log` (history/api-public.yml): by time (`since` inclusive, `before` exclusive) or
    by id (`from`, `to` inclusive), `sort` desc by default, `count` 500 by default, `info` filters the kind."""
    try:
        since = int(req.get("since") or 0) or None
        before = int(req.get("before") or 0) or None
        first = int(req.get("from") or 0) or None
        last = int(req.get("to") or 0) or None
        count = int(req.get("count") or 500)
    except ValueError:
        return Response(400, "invalid argument", "text/plain")
    sort = (req.get("sort") or "desc").lower()
    if sort not in ("asc", "desc") or count < 1:
        return Response(400, "invalid argument", "text/plain")
    kind = req.get("info")
    with sim.lock:
        entries = list(sim.account_log.entries)
    chosen = [
        e
        for e in entries
        if (since is None or to_ms(e.time) >= since)
        and (before is None or to_ms(e.time) < before)
        and (first is None or e.id >= first)
        and (last is None or e.id <= last)
        and (kind is None or e.info == kind)
    ]
    if sort == "desc":
        chosen.reverse()
    return Response(200, {"accountUid": P.ACCOUNT_UID, "logs": [P.account_log_entry(e) for e in chosen[:count]]})


# ---------------------------------------------------------------------- routing table
@dataclass(frozen=True)
class Route:
    methods: frozenset[str]
    pattern: re.Pattern[str]
    handler: Handler
    private: bool
    history: bool = False  # history API: auth failures answer 401 rather than a JSON error


def _r(methods: str, pattern: str, handler: Handler, private: bool, history: bool = False) -> Route:
    return Route(frozenset(methods.split()), re.compile(pattern + "$"), handler, private, history)


D = "/derivatives/api/v3/"
SYM = r"(?P<symbol>[A-Za-z0-9_]+)"
ROUTES: tuple[Route, ...] = (
    _r("GET", D + "instruments", instruments, False),
    _r("GET", D + "tickers", tickers, False),
    _r("GET", D + "tickers/" + SYM, ticker, False),
    _r("GET", D + "orderbook", orderbook, False),
    _r("GET", r"/api/charts/v1/(?P<ptype>\w+)/" + SYM + r"/(?P<tf>\w+)", charts, False),
    _r("GET", r"/api/history/v[23]/market/" + SYM + "/executions", market_executions, False),
    _r("GET", D + "accounts", accounts, True),
    _r("GET", D + "openpositions", openpositions, True),
    _r("GET", D + "openorders", openorders, True),
    _r("GET POST", D + "orders/status", orders_status, True),
    _r("GET", D + "fills", fills, True),
    _r("POST", D + "sendorder", sendorder, True),
    _r("POST", D + "editorder", editorder, True),
    _r("POST", D + "cancelorder", cancelorder, True),
    _r("POST", D + "cancelallorders", cancelallorders, True),
    _r("POST", D + "cancelallordersafter", cancelallordersafter, True),
    _r("POST", D + "batchorder", batchorder, True),
    _r("GET", D + "leveragepreferences", leverage_get, True),
    _r("PUT", D + "leveragepreferences", leverage_put, True),
    _r("GET", r"/api/history/v[23]/(?P<kind>orders|triggers|executions)", history, True, history=True),
    _r("GET", r"/api/history/v3/account-log", account_log, True, history=True),
)
ORDER_ENDPOINTS = frozenset({"sendorder", "editorder", "batchorder", "cancelorder"})


def resolve(method: str, path: str) -> tuple[Route, dict[str, str]] | str | None:
    """The route for a request; "method" when the path exists under another method; None when unknown."""
    other_method = False
    for route in ROUTES:
        found = route.pattern.match(path)
        if found is None:
            continue
        if method not in route.methods:
            other_method = True
            continue
        return route, found.groupdict()
    return "method" if other_method else None
