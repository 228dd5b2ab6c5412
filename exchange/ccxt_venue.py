"""`CcxtVenue`: the live path. `exchange.venue.Venue` over ccxt's `krakenfutures`.

Sync, not async: the daemon runs its jobs in APScheduler threads one at a time, and a blocking call with a
timeout is the simplest thing that can be reasoned about there. One lock serialises every ccxt call: the
requests session, ccxt's rate limiter and our per-call response capture are not made for concurrent use.

Rules this module keeps (docs/venue.md has the why):
- `options['maxRetriesOnFailure']` is pinned to 0: ccxt would otherwise re-POST `sendorder` on a timeout.
- An order is sent at most once per `place_order` call. An ambiguous failure (timeout, 5xx, garbage) is
  resolved by evidence (`find_order`) and stays UNKNOWN when there is none; it is never re-sent here. The
  caller logs the one `ORDER_OUTCOME_UNKNOWN` line (it knows the purpose); the UNKNOWN reason says what
  evidence was looked at, and this module only logs the start of the lookup at DEBUG.
- The local checks of `exchange.venue` (complete request, size at least the minimum, positive prices) run
  before anything is sent and raise; they are not venue rejections.
- Reads go to Kraken's raw endpoints through ccxt's signed implicit API and are parsed by
  `exchange.kraken_parse`, so a missing key is a `MalformedResponse`, not an empty list, and prices stay
  Decimal. Orders go through ccxt's unified `create_order`/`edit_order`/`cancel_order`.
- Symbols come in as canonical keys and go out as canonical keys, via `lifecycle.symbols`.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import ccxt
from pydantic import SecretStr

import lifecycle.symbols as symbols
from exchange import account_log as account_log_parse
from exchange import budget as B
from exchange import kraken_parse as kp
from exchange.breaker import CircuitBreaker
from exchange.error_map import ORDER_EXISTS_STATUS, REFUSED_STATUSES, Operation, translate
from exchange.errors import (
    AuthenticationFailed,
    InvalidOrderRequest,
    MalformedResponse,
    RateLimited,
    UnknownSymbol,
    VenueError,
    VenueUnavailable,
)
from exchange.rounding import round_price, round_size
from exchange.venue import require_complete, require_edit_prices
from lifecycle.account_log import PAGE as ACCOUNT_LOG_PAGE
from lifecycle.account_log import AccountLogEntry
from lifecycle.clock import Clock, SystemClock, to_ms
from lifecycle.redaction import Redactor
from lifecycle.values import (
    AccountSnapshot,
    Candle,
    Instrument,
    MarginSnapshot,
    OrderOutcome,
    OrderRequest,
    OrderStatus,
    OrderType,
    PlaceResult,
    Ticker,
    VenueFill,
    VenueOrder,
    VenuePosition,
)

T = TypeVar("T")
log = logging.getLogger(__name__)

LIVE_BASE_URL = "https://futures.kraken.com"
DEMO_BASE_URL = "https://demo-futures.kraken.com"
FILLS_PAGE = 100  # Kraken's /fills window
HISTORY_COUNT = 1000  # history events per page read by find_order
HISTORY_PAGES = 5  # pages per history endpoint before giving up (then: no evidence, UNKNOWN stays UNKNOWN)
SENT_AFTER_MARGIN = timedelta(minutes=5)  # clock skew allowance when the history lookup starts at the send time
TIMEFRAME_SECONDS = {"1m": 60, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "4h": 14400, "12h": 43200,
                     "1d": 86400, "1w": 604800}  # fmt: skip


class FillWindowExceeded(VenueError):
    """More fills since the cursor than `max_fill_pages` pages: refuse rather than silently drop some."""


def api_urls(base_url: str) -> dict[str, str]:
    """The four `urls['api']` entries ccxt's krakenfutures uses, for one base URL (live, demo, simulator)."""
    base = base_url.rstrip("/")
    return {
        "public": f"{base}/derivatives/api/",
        "private": f"{base}/derivatives/api/",
        "charts": f"{base}/api/charts/",
        "history": f"{base}/api/history/",
    }


class _KrakenFutures(ccxt.krakenfutures):  # type: ignore[misc]
    """ccxt's client, plus a capture of each answer's HTTP status and body for error translation.

    Also: a 2xx answer whose body is not JSON is an error here. ccxt lets it through as "no data", and
    `fetch_open_orders` would then return [] -- a garbage body must never read as "no orders".
    """

    last_status: int | None = None
    last_body: str | None = None

    def handle_errors(
        self,
        code: int,
        reason: str,
        url: str,
        method: str,
        headers: Any,
        body: str,
        response: Any,
        request_headers: Any,
        request_body: Any,
    ) -> Any:
        self.last_status = code
        self.last_body = body
        if response is None and 200 <= code < 300:
            raise ccxt.BadResponse(f"{self.id} HTTP {code}: the body is not JSON ({len(body or '')} bytes)")
        return super().handle_errors(code, reason, url, method, headers, body, response, request_headers, request_body)


def _secret_value(value: str | SecretStr) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


class CcxtVenue:
    def __init__(
        self,
        *,
        api_key: str | SecretStr,
        api_secret: str | SecretStr,
        base_url: str | None = None,
        timeout_seconds: float = 10.0,
        enable_rate_limit: bool = True,
        rate_limit_ms: int | None = None,
        breaker: CircuitBreaker | None = None,
        clock: Clock | None = None,
        history_lookback: timedelta = timedelta(days=7),
        max_fill_pages: int = 50,
        budget: B.ClientBudget | None = None,
    ) -> None:
        """`base_url`: None is Kraken live; `DEMO_BASE_URL` is Kraken's demo; or our simulator's server URL."""
        key, secret = _secret_value(api_key), _secret_value(api_secret)
        if not key or not secret:
            raise AuthenticationFailed("the Kraken Futures API key or secret is empty; set both in the secrets file")
        try:
            base64.b64decode(secret, validate=True)
        except (binascii.Error, ValueError):
            raise AuthenticationFailed(
                "the Kraken Futures API secret is not valid base64; copy it again from the key page"
            ) from None
        self._redact = Redactor()
        self._redact.register(key)
        self._redact.register(secret)
        self._clock = clock or SystemClock()
        self._breaker = breaker or CircuitBreaker(self._clock)
        self._lookback = history_lookback
        self._max_fill_pages = max_fill_pages
        # Kraken's budgets, kept client side; waiting for a refill only makes sense on the wall clock
        sleep = time.sleep if isinstance(self._clock, SystemClock) else _no_sleep
        self._budget = budget or B.ClientBudget(self._clock, sleep=sleep)
        self._lock = threading.RLock()
        config: dict[str, Any] = {
            "apiKey": key,
            "secret": secret,
            "timeout": int(timeout_seconds * 1000),
            "enableRateLimit": enable_rate_limit,
        }
        if rate_limit_ms is not None:
            config["rateLimit"] = rate_limit_ms
        self._ex = _KrakenFutures(config)
        # update each entry, never replace the dict, and never call set_sandbox_mode after this
        self._ex.urls["api"].update(api_urls(base_url or LIVE_BASE_URL))
        # ccxt's fetch2 re-sends ANY request (sendorder included) this many times on a timeout/5xx
        self._ex.options["maxRetriesOnFailure"] = 0
        self._instruments: dict[str, Instrument] = {}
        self._ccxt_symbol: dict[str, str] = {}  # canonical key -> ccxt unified symbol
        self._venue_id: dict[str, str] = {}  # canonical key -> the venue's own spelling
        self._last_server_time: datetime | None = None

    # --- plumbing ---------------------------------------------------------------------------------------
    @property
    def breaker(self) -> CircuitBreaker:
        return self._breaker

    @property
    def max_retries_on_failure(self) -> int:
        return int(self._ex.options.get("maxRetriesOnFailure", 0))

    def _key(self, venue_symbol: str) -> str:
        try:
            return str(symbols.canonical_key(venue_symbol))
        except ValueError as exc:
            raise MalformedResponse(
                f"the venue sent a symbol we cannot canonicalise: {venue_symbol!r} ({exc})"
            ) from None

    def _call(self, op: Operation, fn: Callable[[], T], charge: _Charge | None = None) -> T:
        """Run one venue request under the budget and the breaker, translating every failure into a typed error.

        `charge` is what the request costs in Kraken's budgets (None: a public endpoint, free); a call the
        budget cannot afford raises `BudgetDeferred` before anything is sent."""
        with self._lock:
            if charge is not None:
                self._budget.spend(charge.bucket, charge.cost, charge.priority, charge.what)
            self._breaker.before_call(private=charge is not None)  # public endpoints carry no charge
            self._ex.last_status = None
            self._ex.last_body = None
            try:
                result = fn()
            except Exception as exc:
                translation = translate(
                    op, exc, http_status=self._ex.last_status, body=self._ex.last_body, redact=self._redact
                )
                if translation is None:
                    self._breaker.record_neutral()
                    raise
                if translation.venue_failure:
                    self._breaker.record_failure(translation.error)
                else:
                    self._breaker.record_answer(translation.error)  # an auth failure is never a success
                if charge is not None and isinstance(translation.error, RateLimited):
                    self._budget.exhausted(charge.bucket)
                raise translation.error from None
            self._breaker.record_success()
            return result

    def _read(self, fn: Callable[[], T], charge: _Charge | None = None) -> T:
        return self._call(Operation.READ, fn, charge)

    @property
    def budget(self) -> B.ClientBudget:
        return self._budget

    def _remember_time(self, payload: object) -> None:
        stamp = kp.server_time(payload)
        if stamp is not None:
            self._last_server_time = stamp

    # --- reads ------------------------------------------------------------------------------------------
    def instruments(self) -> dict[str, Instrument]:
        def load() -> dict[str, Instrument]:
            markets = self._ex.load_markets(True)
            if not markets:
                raise MalformedResponse(
                    "instruments: the venue listed no instruments; check the base URL (live, demo or simulator)"
                )
            out: dict[str, Instrument] = {}
            ccxt_symbol: dict[str, str] = {}
            venue_id: dict[str, str] = {}
            for market in markets.values():
                info = market.get("info") or {}
                if market.get("type") == "index" or "tickSize" not in info:
                    continue
                try:
                    key = symbols.canonical_key(str(market["id"]))
                except ValueError:
                    continue  # instruments we do not trade (e.g. legacy spellings) are skipped, not guessed
                what = f"instruments[{market['id']!r}]"
                increment = Decimal(1).scaleb(-int(info["contractValueTradePrecision"]))
                levels = info.get("marginLevels") or []
                initial = kp.opt_dec(levels[0].get("initialMargin"), what) if levels else None
                minimum = kp.opt_dec(info.get("minimumOrderSize") or info.get("minSize"), what)
                out[key] = Instrument(
                    symbol=key,
                    base=str(market.get("base")),
                    tick_size=kp.dec(info["tickSize"], f"{what}.tickSize"),
                    size_increment=increment,
                    min_size=minimum if minimum is not None else increment,
                    contract_size=kp.dec(info.get("contractSize", 1), f"{what}.contractSize"),
                    max_leverage=(Decimal(1) / initial) if initial else Decimal(1),
                    tradeable=bool(info.get("tradeable", True)),
                )
                ccxt_symbol[key] = str(market["symbol"])
                venue_id[key] = str(market["id"])
            self._instruments, self._ccxt_symbol, self._venue_id = out, ccxt_symbol, venue_id
            return dict(out)

        return self._read(load)

    def _instrument(self, symbol: str) -> Instrument:
        key = symbols.canonical_key(symbol)
        if key not in self._instruments:
            self.instruments()
        if key not in self._instruments:
            raise UnknownSymbol(f"{symbol!r} (key {key}) is not an instrument on this venue; check the symbol list")
        return self._instruments[key]

    def tickers(self) -> dict[str, Ticker]:
        def load() -> dict[str, Ticker]:
            raw = self._ex.publicGetTickers()
            self._remember_time(raw)
            now = kp.server_time(raw) or self._clock.now()
            out: dict[str, Ticker] = {}
            for item in kp.require(raw, "tickers", list, "tickers"):
                if item.get("markPrice") is None or item.get("last") is None:
                    continue  # index tickers carry no mark price
                try:
                    key = symbols.canonical_key(str(item.get("symbol")))
                except ValueError:
                    continue
                what = f"tickers[{item.get('symbol')!r}]"
                out[key] = Ticker(
                    symbol=key,
                    last=kp.dec(item["last"], f"{what}.last"),
                    mark=kp.dec(item["markPrice"], f"{what}.markPrice"),
                    bid=kp.opt_dec(item.get("bid"), f"{what}.bid"),
                    ask=kp.opt_dec(item.get("ask"), f"{what}.ask"),
                    time=kp.opt_when(item.get("lastTime"), f"{what}.lastTime") or now,
                )
            return out

        return self._read(load)

    def candles(self, symbol: str, timeframe: str, since: datetime | None = None, limit: int = 100) -> list[Candle]:
        if timeframe not in TIMEFRAME_SECONDS:
            raise ValueError(f"timeframe {timeframe!r} is not one of Kraken's: {', '.join(TIMEFRAME_SECONDS)}")
        self._instrument(symbol)
        venue_id = self._venue_id[symbols.canonical_key(symbol)]
        step = TIMEFRAME_SECONDS[timeframe]
        # ccxt's fetch_ohlcv computes its window from the wall clock; ours comes from the injected clock
        if since is None:
            end = int(self._clock.now().timestamp())
            start = end - step * limit
        else:
            start = int(since.timestamp())
            end = min(start + step * limit - 1, int(self._clock.now().timestamp()))

        def load() -> list[Candle]:
            raw = self._ex.chartsGetPriceTypeSymbolInterval(
                {"price_type": "trade", "symbol": venue_id, "interval": timeframe, "from": start, "to": end}
            )
            out = []
            for item in kp.require(raw, "candles", list, "charts"):
                what = f"candles[{item.get('time')!r}]"
                out.append(
                    Candle(
                        time=kp.when(item.get("time"), f"{what}.time"),
                        open=kp.dec(item.get("open"), f"{what}.open"),
                        high=kp.dec(item.get("high"), f"{what}.high"),
                        low=kp.dec(item.get("low"), f"{what}.low"),
                        close=kp.dec(item.get("close"), f"{what}.close"),
                        volume=kp.dec(item.get("volume", 0), f"{what}.volume"),
                    )
                )
            out.sort(key=lambda c: c.time)
            if since is not None:
                out = [c for c in out if c.time >= since]
            return out[-limit:] if limit else out

        return self._read(load)

    def margin(self) -> MarginSnapshot:
        def load() -> MarginSnapshot:
            raw = self._ex.privateGetAccounts()
            self._remember_time(raw)
            return kp.margin(raw, self._clock.now())

        return self._read(load, _Charge(B.Bucket.DERIVATIVES, B.COST_READ, B.Priority.READ, "accounts"))

    def positions(self) -> list[VenuePosition]:
        def load() -> list[VenuePosition]:
            raw = self._ex.privateGetOpenpositions()
            self._remember_time(raw)
            return kp.positions(raw, self._key)

        return self._read(load, _Charge(B.Bucket.DERIVATIVES, B.COST_READ, B.Priority.READ, "openpositions"))

    def open_orders(self) -> list[VenueOrder]:
        return self._open_orders(B.Priority.READ)

    def _open_orders(self, priority: B.Priority) -> list[VenueOrder]:
        def load() -> list[VenueOrder]:
            raw = self._ex.privateGetOpenorders()
            self._remember_time(raw)
            return kp.open_orders(raw, self._key)

        return self._read(load, _Charge(B.Bucket.DERIVATIVES, B.COST_READ, priority, "openorders"))

    def _fills_page(self, before: datetime | None, priority: B.Priority = B.Priority.READ) -> list[VenueFill]:
        params = {} if before is None else {"lastFillTime": _iso(before)}
        # Kraken charges 25 for a page asked by lastFillTime, 2 for the newest page
        cost = B.COST_READ if before is None else B.COST_FILLS_PAGED

        def load() -> list[VenueFill]:
            raw = self._ex.privateGetFills(params)
            self._remember_time(raw)
            return kp.fills(raw, self._key)

        return self._read(load, _Charge(B.Bucket.DERIVATIVES, cost, priority, "fills"))

    def account_log(self, after_id: int | None, limit: int = ACCOUNT_LOG_PAGE) -> list[AccountLogEntry]:
        """One page of the account log by entry id, ascending (`from` is inclusive, so the cursor plus one)."""
        params: dict[str, Any] = {"sort": "asc", "count": limit}
        if after_id is not None:
            params["from"] = after_id + 1

        def load() -> list[AccountLogEntry]:
            return account_log_parse.entries(self._ex.historyGetAccountLog(params), self._key)

        cost = B.cost_account_log(limit)  # Kraken charges the account log by `count`: 3 tokens for 500
        return self._read(load, _Charge(B.Bucket.HISTORY, cost, B.Priority.HISTORY, "history/account-log"))

    def fills_since(self, since: datetime | None) -> list[VenueFill]:
        """Page backwards from the newest fill with `lastFillTime` until the cursor is passed.

        Each next page starts 1 ms after the oldest fill seen, so fills sharing that millisecond are read
        again rather than skipped; duplicates are dropped by fill id."""
        found: dict[str, VenueFill] = {}
        before: datetime | None = None
        for _ in range(self._max_fill_pages):
            page = self._fills_page(before)
            for fill in page:
                if since is None or fill.time > since:
                    found.setdefault(fill.fill_id, fill)
            if len(page) < FILLS_PAGE:
                break
            oldest = min(f.time for f in page)
            if since is not None and oldest <= since:
                break
            nxt = oldest + timedelta(milliseconds=1)
            if before is not None and nxt >= before:
                break  # a whole page in one millisecond: nothing older can be reached
            before = nxt
        else:
            raise FillWindowExceeded(
                f"more than {self._max_fill_pages * FILLS_PAGE} fills since {since}; refusing to return a partial "
                f"list. Advance the fill cursor (or raise max_fill_pages)."
            )
        return sorted(found.values(), key=lambda f: (f.time, f.fill_id))

    def snapshot(self, fills_since: datetime | None) -> AccountSnapshot:
        """4 REST calls (+1 per extra 100 fills since the cursor), whatever the number of positions:
        open positions, open orders (which include untriggered stops and take-profits), fills, accounts."""
        positions = self.positions()
        orders = self.open_orders()
        fills = self.fills_since(fills_since)
        margin = self.margin()
        return AccountSnapshot(
            positions=tuple(positions),
            open_orders=tuple(orders),
            fills=tuple(fills),
            margin=margin,
            server_time=self._last_server_time or self._clock.now(),
        )

    def find_order(self, client_order_id: str, *, sent_after: datetime | None = None) -> VenueOrder | None:
        """Evidence, cheapest first: open orders, order history, trigger history, then the latest fills.

        History is read only as deep as it must be: from `sent_after` (when the caller knows the order cannot be
        older, e.g. right after sending it; minus `SENT_AFTER_MARGIN` for clock skew) or else the lookback, newest
        page first, stopping at the first page that knows the order or at the last page. These lookups have the
        lowest priority in the rate budgets: when the budget is short they are deferred (`BudgetDeferred`)."""
        for order in self._open_orders(B.Priority.HISTORY):
            if order.client_order_id == client_order_id:
                return order
        start = self._clock.now() - self._lookback
        if sent_after is not None:
            start = max(start, sent_after - SENT_AFTER_MARGIN)
        since = to_ms(start)
        for trigger in (False, True):
            token: str | None = None
            for _ in range(HISTORY_PAGES):
                found, token = self._history_page(client_order_id, since, trigger, token)
                if found is not None:
                    return found
                if token is None:
                    break
        mine = [f for f in self._fills_page(None, B.Priority.HISTORY) if f.client_order_id == client_order_id]
        if mine:
            first = mine[0]
            total = sum((f.size for f in mine), Decimal(0))
            return VenueOrder(
                order_id=first.order_id,
                client_order_id=client_order_id,
                symbol=first.symbol,
                side=first.side,
                order_type=OrderType.MARKET,  # fills do not say; the caller knows what it sent
                size=total,
                filled=total,
                limit_price=None,
                trigger_price=None,
                reduce_only=False,
                status=OrderStatus.FILLED,
                time=max(f.time for f in mine),
            )
        return None

    def _history_page(
        self, client_order_id: str, since: int, trigger: bool, token: str | None
    ) -> tuple[VenueOrder | None, str | None]:
        params: dict[str, Any] = {"since": since, "count": HISTORY_COUNT}
        if token is not None:
            params["continuation_token"] = token  # the spec's spelling; the body answers `continuationToken`
        fetch = self._ex.historyGetTriggers if trigger else self._ex.historyGetOrders

        def load() -> tuple[VenueOrder | None, str | None]:
            raw = fetch(params)
            found = kp.history_order(raw, client_order_id, self._key, trigger)
            nxt = raw.get("continuationToken") if isinstance(raw, Mapping) else None
            return found, (str(nxt) if nxt else None)

        what = "history/triggers" if trigger else "history/orders"
        return self._read(load, _Charge(B.Bucket.HISTORY, B.COST_HISTORY, B.Priority.HISTORY, what))

    # --- actions ----------------------------------------------------------------------------------------
    def place_order(self, request: OrderRequest) -> PlaceResult:
        result = self._place(request)
        # The reason is venue text (a status string, an error body): it is logged, stored with the order and
        # can reach Telegram, so it leaves the adapter redacted like every exception message does.
        return result if result.reason is None else replace(result, reason=self._redact(result.reason))

    def _place(self, request: OrderRequest) -> PlaceResult:
        require_complete(request)
        instrument = self._instrument(request.symbol)
        ccxt_type, params = self._order_params(request, instrument)
        size = round_size(request.size, instrument)
        ccxt_symbol = self._ccxt_symbol[instrument.symbol]
        cid = request.client_order_id

        protective = request.reduce_only or request.order_type in (OrderType.STOP, OrderType.TAKE_PROFIT)
        priority = B.Priority.PROTECT if protective else B.Priority.TRADE
        sent_at = self._clock.now()
        with self._lock:
            self._budget.spend(B.Bucket.DERIVATIVES, B.COST_SEND, priority, f"sendorder {cid}")  # may defer: not sent
            self._breaker.before_call()  # CircuitOpen here means: not sent
            self._ex.last_status = None
            self._ex.last_body = None
            try:
                created = self._ex.create_order(
                    ccxt_symbol, ccxt_type, request.side.value, format(size, "f"), None, params
                )
            except Exception as exc:
                translation = translate(
                    Operation.PLACE, exc, http_status=self._ex.last_status, body=self._ex.last_body,
                    redact=self._redact,
                )  # fmt: skip
                if translation is None:
                    # not a venue answer: the request may or may not have gone out
                    self._breaker.record_neutral()
                    return self._resolve(request, f"unexpected {type(exc).__name__} while sending", sent_at)
                if translation.venue_failure:
                    self._breaker.record_failure(translation.error)
                else:
                    self._breaker.record_answer(translation.error)  # an auth failure is never a success
                if isinstance(translation.error, RateLimited):
                    self._budget.exhausted(B.Bucket.DERIVATIVES)
                if translation.place_outcome is None:
                    raise translation.error from None
                if translation.place_outcome is OrderOutcome.REJECTED:
                    return PlaceResult(OrderOutcome.REJECTED, cid, reason=translation.raw_status)
                # an id taken before may belong to an order of any age: the whole lookback is searched
                taken = translation.raw_status == ORDER_EXISTS_STATUS
                return self._resolve(request, str(translation.error), None if taken else sent_at)
            self._breaker.record_success()

        send_status = created.get("info") if isinstance(created, Mapping) else None
        if not isinstance(send_status, Mapping):
            return self._resolve(request, "the venue's answer carried no sendStatus", sent_at)
        status = str(send_status.get("status"))
        rejected_event = any(
            isinstance(e, Mapping) and e.get("type") == "REJECT" for e in send_status.get("orderEvents") or []
        )
        # The raw sendStatus is authoritative: ccxt parses an accepted order with no events as "rejected".
        ccxt_rejected = created.get("status") == "rejected" and status not in kp.ACCEPTED_SEND_STATUSES
        if status in REFUSED_STATUSES or rejected_event or ccxt_rejected:
            # silent rejections ccxt does not raise for (wouldCauseLiquidation, tooManyOrders, ...)
            return PlaceResult(OrderOutcome.REJECTED, cid, reason=status)
        if status not in kp.ACCEPTED_SEND_STATUSES:
            return self._resolve(request, f"unrecognised sendStatus {status!r}", sent_at)
        try:
            order, fills = kp.send_status_order(send_status, request.order_type, cid, self._key, self._clock.now())
        except MalformedResponse as exc:
            return self._resolve(request, str(exc), sent_at)
        return PlaceResult(OrderOutcome.ACCEPTED, cid, order=order, fills=fills)

    def _order_params(self, request: OrderRequest, instrument: Instrument) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {"clientOrderId": request.client_order_id}
        if request.reduce_only:
            params["reduceOnly"] = True
        # limitPrice goes as the venue's own param (a Decimal string) so ccxt never turns it into a float
        if request.limit_price is not None and request.order_type is not OrderType.MARKET:
            params["limitPrice"] = format(round_price(request.limit_price, instrument), "f")
        if request.order_type is OrderType.LIMIT:
            return "limit", params
        if request.order_type is OrderType.MARKET:
            return "market", params
        if request.trigger_price is None:  # require_complete refused it already; this narrows the type
            raise InvalidOrderRequest(
                f"{request.order_type.value} order {request.client_order_id} has no trigger price; not sent"
            )
        params["triggerPrice"] = format(round_price(request.trigger_price, instrument), "f")
        params["triggerSignal"] = request.trigger_signal.value
        # ccxt maps triggerPrice to `stp`; the explicit orderType makes a take-profit a take_profit
        params["orderType"] = "stp" if request.order_type is OrderType.STOP else "take_profit"
        return ("limit" if request.limit_price is not None else "market"), params

    def _resolve(self, request: OrderRequest, detail: str, sent_at: datetime | None) -> PlaceResult:
        """After an ambiguous send: look for the order, never re-send it.

        Only DEBUG lines here: the verdict is the caller's to log, once, with the order's purpose; an UNKNOWN
        reason names the send failure and the evidence that was looked at."""
        cid = request.client_order_id
        detail = detail[:200]
        if sent_at is None:
            span = f"last {self._lookback.total_seconds() / 86400:g} days"
        else:
            span = f"since {_iso(sent_at - SENT_AFTER_MARGIN)}"
        looked = f"open orders, order and trigger history ({span}), the latest {FILLS_PAGE} fills"
        log.debug("place_order %s %s: ambiguous send (%s); looking in %s", cid, request.symbol, detail, looked)
        try:
            found = self.find_order(cid, sent_after=sent_at)
        except VenueError as exc:
            lookup = f"{type(exc).__name__}: {str(exc)[:160]}"
            return PlaceResult(OrderOutcome.UNKNOWN, cid, reason=f"{detail}; the evidence lookup failed ({lookup})")
        if found is None:
            return PlaceResult(OrderOutcome.UNKNOWN, cid, reason=f"{detail}; no evidence in {looked}")
        log.debug("place_order %s: resolved by evidence as %s", cid, found.status.value)
        if found.status is OrderStatus.REJECTED:
            return PlaceResult(OrderOutcome.REJECTED, cid, order=found, reason="rejected (found in history)")
        return PlaceResult(OrderOutcome.ACCEPTED, cid, order=found, reason="resolved by evidence")

    def cancel_order(self, order_id: str) -> None:
        charge = _Charge(B.Bucket.DERIVATIVES, B.COST_CANCEL, B.Priority.PROTECT, f"cancelorder {order_id}")
        self._call(Operation.CANCEL, lambda: self._ex.cancel_order(order_id), charge)

    def edit_order(
        self,
        order_id: str,
        *,
        trigger_price: Decimal | None,
        limit_price: Decimal | None,
        size: Decimal | None = None,
    ) -> VenueOrder:
        """One `editorder` with `qtyMode=ABSOLUTE` (our sizes include past fills; Kraken's default, RELATIVE, would
        add them again), the stop's `stopPrice` on every edit of a stop and `limitPrice` where the order has one.
        An edit, not cancel-and-replace: the stop never leaves the book, and a refused edit leaves the old stop
        covering what it covered (docs/venue.md, "Resizing a stop")."""
        if size is None and trigger_price is None and limit_price is None:
            raise ValueError("edit_order needs a new size or price")
        current = next((o for o in self._open_orders(B.Priority.PROTECT) if o.order_id == order_id), None)
        params: dict[str, Any] = {}
        amount: str | None = None
        if current is not None:
            require_edit_prices(current, trigger_price, limit_price)
            instrument = self._instrument(current.symbol)
            if size is not None:
                amount = format(round_size(size, instrument), "f")
            if trigger_price is not None:
                params["stopPrice"] = format(round_price(trigger_price, instrument), "f")
            if limit_price is not None:
                params["limitPrice"] = format(round_price(limit_price, instrument), "f")
        else:
            # let the venue say it does not know the order (OrderNotFound), with our values unrounded
            amount = format(size, "f") if size is not None else None
            if trigger_price is not None:
                params["stopPrice"] = format(trigger_price, "f")
            if limit_price is not None:
                params["limitPrice"] = format(limit_price, "f")
        if amount is not None:
            params["qtyMode"] = "ABSOLUTE"

        def send() -> VenueOrder:
            answer = self._ex.edit_order(order_id, None, None, None, amount, None, params)
            return kp.edited_order(answer.get("info"), self._key, current)

        charge = _Charge(B.Bucket.DERIVATIVES, B.COST_EDIT, B.Priority.PROTECT, f"editorder {order_id}")
        return self._call(Operation.EDIT, send, charge)


@dataclass(frozen=True)
class _Charge:
    bucket: B.Bucket
    cost: int
    priority: B.Priority
    what: str


def _no_sleep(seconds: float) -> None:
    """Simulated time: a client cannot wait for it to pass; the budget then spends or defers at once."""


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


__all__ = [
    "DEMO_BASE_URL",
    "LIVE_BASE_URL",
    "CcxtVenue",
    "FillWindowExceeded",
    "InvalidOrderRequest",
    "VenueUnavailable",
    "api_urls",
]
