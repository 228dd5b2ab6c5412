"""Venue faults for DST, in process: a `Venue` around `SimVenue` that fails calls the way the real adapter
(`exchange.ccxt_venue.CcxtVenue` with `exchange.error_map.translate`) surfaces HTTP faults to the operations layer.

What each fault looks like from above the `Venue` interface (the adapter's own mapping, not a guess):
- a 5xx storm: every call raises `VenueUnavailable`. A `sendorder` answered 500 is an ambiguous send: the adapter
  does not raise but looks the order up by client order id (`_resolve`), and during the storm that lookup fails
  too, so `place_order` returns UNKNOWN. A 500 can come after the engine took the order (Kraken: "the order may
  exist"), so a share of the storm's sends do take effect. Cancels and edits raise `VenueUnavailable`, some after
  taking effect.
- 429s: every call raises `RateLimited`; nothing was done (Kraken's limiter answers before the matching engine),
  and `place_order` raises it too (the adapter re-raises a rate-limited send: "the order was not placed").
- lost replies: an action takes effect on the engine and its reply is lost (a read timeout after sending). For
  `place_order` the adapter then resolves by evidence: ACCEPTED "resolved by evidence" (with the order found, and no
  fills: they come through the fill poll), or UNKNOWN when the lookup fails as well. `cancel_order` and
  `edit_order` raise `VenueUnavailable` although the cancel or edit happened.
- failing reads: a share of reads raise `VenueUnavailable` (timeouts) or `MalformedResponse` (garbage bodies).

Every decision comes from the seed's own fault rng, so a schedule replays exactly. `injected` counts the faults
served: the harness calls a slice "clean" when none was, and extends its grace over the others (docs/dst.md).
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from exchange.errors import MalformedResponse, OrderNotSent, RateLimited, VenueError, VenueUnavailable
from exchange.rounding import round_size
from exchange.venue import require_complete
from lifecycle.account_log import PAGE as ACCOUNT_LOG_PAGE
from lifecycle.account_log import AccountLogEntry
from lifecycle.clock import FakeClock
from lifecycle.values import (
    AccountSnapshot,
    Candle,
    Instrument,
    MarginSnapshot,
    OrderOutcome,
    OrderRequest,
    OrderStatus,
    PlaceResult,
    Ticker,
    VenueFill,
    VenueOrder,
    VenuePosition,
)
from simulator.venue import SimVenue

STORM_EFFECT_SHARE = 0.3  # of the sends and cancels a 5xx storm answers, the share the engine had taken already
LOST_LOOKUP_FAILS = 0.5  # after a lost reply, the share of evidence lookups that fail too (the outcome stays UNKNOWN)


class Fault(StrEnum):
    STORM = "5xx storm"
    RATE_LIMIT = "429s"
    LOST_REPLIES = "lost replies"
    FAILING_READS = "failing reads"


@dataclass
class Window:
    """One fault switched on: for `calls` faulted calls (None: no call bound) and at most `slices` daemon slices;
    `rate` is the probability that a call it applies to is faulted. `orders_only`: Kraken's matching engine in
    trouble (500s on `sendorder` while reads answer) or its order bucket's rate limit spent (429s on order calls only:
    the budgets are per bucket)."""

    fault: Fault
    slices: int
    calls: int | None = None
    rate: float = 1.0
    orders_only: bool = False  # only the order endpoints (sendorder, cancelorder, editorder) fail; reads answer


class FaultyVenue:
    """`Venue` over `SimVenue` with the seed's fault windows. The harness reads the truth from the `SimVenue`."""

    def __init__(self, inner: SimVenue, rng: random.Random) -> None:
        self.inner = inner
        self.rng = rng
        self.windows: list[Window] = []
        self.injected = 0
        self.served: dict[str, int] = {}  # "<fault> <method>" -> count, for the summary and the tests
        # client order id -> sends that left the process and were not refused outright (a 429 places nothing): the
        # harness's "one sendorder per intent" check, counted as the venue's request log would show them
        self.sends: dict[str, int] = {}

    # ------------------------------------------------------------------ windows
    def switch_on(self, window: Window) -> None:
        self.windows.append(window)

    def end_slice(self) -> None:
        for w in self.windows:
            w.slices -= 1
        self.windows = [w for w in self.windows if w.slices > 0 and (w.calls is None or w.calls > 0)]

    def active(self) -> list[Fault]:
        return [w.fault for w in self.windows]

    def _draw(self, method: str, applies: tuple[Fault, ...], *, read: bool = False) -> Fault | None:
        for w in self.windows:
            if w.fault not in applies or (w.calls is not None and w.calls <= 0) or (read and w.orders_only):
                continue
            if w.rate < 1.0 and self.rng.random() >= w.rate:
                continue
            if w.calls is not None:
                w.calls -= 1
            self.injected += 1
            key = f"{w.fault.value} {method}"
            self.served[key] = self.served.get(key, 0) + 1
            return w.fault
        return None

    def _read(self, method: str) -> None:
        fault = self._draw(method, (Fault.STORM, Fault.RATE_LIMIT, Fault.FAILING_READS), read=True)
        if fault is Fault.STORM:
            raise VenueUnavailable(f"{method}: HTTP 500 Server Error (injected); retry later")
        if fault is Fault.RATE_LIMIT:
            raise RateLimited(f"{method}: HTTP 429 (injected); back off", venue_status="apiLimitExceeded")
        if fault is Fault.FAILING_READS:
            if self.rng.random() < 0.5:
                raise MalformedResponse(f"{method}: the venue's answer could not be parsed (injected)")
            raise VenueUnavailable(f"{method}: read timed out (injected)")

    # ------------------------------------------------------------------ reads
    def instruments(self) -> dict[str, Instrument]:
        self._read("instruments")
        return self.inner.instruments()

    def tickers(self) -> dict[str, Ticker]:
        self._read("tickers")
        return self.inner.tickers()

    def candles(self, symbol: str, timeframe: str, since: datetime | None = None, limit: int = 100) -> list[Candle]:
        self._read("candles")
        return self.inner.candles(symbol, timeframe, since, limit)

    def margin(self) -> MarginSnapshot:
        self._read("margin")
        return self.inner.margin()

    def positions(self) -> list[VenuePosition]:
        self._read("positions")
        return self.inner.positions()

    def open_orders(self) -> list[VenueOrder]:
        self._read("open_orders")
        return self.inner.open_orders()

    def fills_since(self, since: datetime | None) -> list[VenueFill]:
        self._read("fills_since")
        return self.inner.fills_since(since)

    def account_log(self, after_id: int | None, limit: int = ACCOUNT_LOG_PAGE) -> list[AccountLogEntry]:
        self._read("account_log")
        return self.inner.account_log(after_id, limit)

    def find_order(self, client_order_id: str, *, sent_after: datetime | None = None) -> VenueOrder | None:
        self._read("find_order")
        return self.inner.find_order(client_order_id, sent_after=sent_after)

    def snapshot(self, fills_since: datetime | None) -> AccountSnapshot:
        self._read("snapshot")
        return self.inner.snapshot(fills_since)

    # ------------------------------------------------------------------ actions
    def place_order(self, request: OrderRequest) -> PlaceResult:
        if not self.windows:
            return self._send(request)
        # The adapter's local checks run before anything is sent, faults or not.
        require_complete(request)
        instrument = self.inner.instruments().get(request.symbol)
        if instrument is not None:
            round_size(request.size, instrument)
        fault = self._draw("place_order", (Fault.STORM, Fault.RATE_LIMIT, Fault.LOST_REPLIES))
        if fault is None:
            return self._send(request)
        if fault is Fault.RATE_LIMIT:
            raise RateLimited(
                "place order: HTTP 429 (injected); the order was not placed, retry later with the same client order id",
                venue_status="apiLimitExceeded",
            )
        self._count_send(request)  # it left the process: whether it took effect is the venue's
        if fault is Fault.LOST_REPLIES or self.rng.random() < STORM_EFFECT_SHARE:
            self._take_effect(request)
        detail = "read timed out after sending" if fault is Fault.LOST_REPLIES else "HTTP 500 Server Error"
        return self._resolve(request, f"{detail} (injected)", lookup_fails=fault is Fault.LOST_REPLIES)

    def _send(self, request: OrderRequest) -> PlaceResult:
        """A send without a fault: counted unless the local checks refused it (nothing left the process)."""
        try:
            result = self.inner.place_order(request)
        except OrderNotSent:
            raise
        except VenueError:
            self._count_send(request)
            raise
        self._count_send(request)
        return result

    def _count_send(self, request: OrderRequest) -> None:
        cid = request.client_order_id
        self.sends[cid] = self.sends.get(cid, 0) + 1

    def _take_effect(self, request: OrderRequest) -> None:
        try:
            self.inner.place_order(request)
        except OrderNotSent:
            raise  # the local checks refused it: nothing left the process, as without the fault
        except VenueError:
            pass  # a refusal whose answer was lost: the evidence lookup finds it in the history

    def _resolve(self, request: OrderRequest, detail: str, *, lookup_fails: bool) -> PlaceResult:
        """`CcxtVenue._resolve`: look the order up by client order id, never re-send it."""
        cid = request.client_order_id
        try:
            if lookup_fails and self.rng.random() < LOST_LOOKUP_FAILS:
                self.injected += 1
                raise VenueUnavailable("find_order: read timed out (injected)")
            found = self.find_order(cid)
        except VenueError as exc:
            return PlaceResult(OrderOutcome.UNKNOWN, cid, reason=f"{detail}; the evidence lookup failed ({exc})")
        if found is None:
            return PlaceResult(OrderOutcome.UNKNOWN, cid, reason=f"{detail}; no evidence in open orders or history")
        if found.status is OrderStatus.REJECTED:
            return PlaceResult(OrderOutcome.REJECTED, cid, order=found, reason="rejected (found in history)")
        return PlaceResult(OrderOutcome.ACCEPTED, cid, order=found, reason="resolved by evidence")

    def cancel_order(self, order_id: str) -> None:
        fault = self._draw("cancel_order", (Fault.STORM, Fault.RATE_LIMIT, Fault.LOST_REPLIES))
        if fault is None:
            self.inner.cancel_order(order_id)
            return
        if fault is Fault.RATE_LIMIT:
            raise RateLimited("cancel order: HTTP 429 (injected)", venue_status="apiLimitExceeded")
        if fault is Fault.LOST_REPLIES or self.rng.random() < STORM_EFFECT_SHARE:
            with contextlib.suppress(VenueError):  # whatever the venue answered, the answer is lost
                self.inner.cancel_order(order_id)
        raise VenueUnavailable(f"cancel order {order_id}: the venue did not answer usefully (injected); retry later")

    def edit_order(
        self,
        order_id: str,
        *,
        trigger_price: Decimal | None,
        limit_price: Decimal | None,
        size: Decimal | None = None,
    ) -> VenueOrder:
        fault = self._draw("edit_order", (Fault.STORM, Fault.RATE_LIMIT, Fault.LOST_REPLIES))
        if fault is None:
            return self.inner.edit_order(order_id, trigger_price=trigger_price, limit_price=limit_price, size=size)
        if fault is Fault.RATE_LIMIT:
            raise RateLimited("edit order: HTTP 429 (injected)", venue_status="apiLimitExceeded")
        if fault is Fault.LOST_REPLIES or self.rng.random() < STORM_EFFECT_SHARE:
            try:
                self.inner.edit_order(order_id, trigger_price=trigger_price, limit_price=limit_price, size=size)
            except OrderNotSent:
                raise
            except VenueError:
                pass
        raise VenueUnavailable(f"edit order {order_id}: the venue did not answer usefully (injected); retry later")

    def __getattr__(self, name: str) -> Any:
        # Anything beyond the `Venue` interface (the simulator's extras) passes through unfaulted.
        return getattr(self.inner, name)


MONOTONIC_ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)


class SkewedClock:
    """The daemon's host clock: the shared virtual clock plus an offset a schedule event steps (NTP corrections, a
    VM resumed, an operator setting the date). The venue keeps the unskewed clock."""

    def __init__(self, base: FakeClock) -> None:
        self.base = base
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return self.base.now() + self.offset

    def monotonic(self) -> float:
        """The host's monotonic clock (seconds): the true passage of time, which no step of `offset` moves."""
        return (self.base.now() - MONOTONIC_ORIGIN).total_seconds()
