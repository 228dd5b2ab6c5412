"""The narrow interface the rest of the system uses to talk to a venue.

Two implementations: `exchange.ccxt_venue.CcxtVenue` (the live path, also used against the simulator's HTTP
server) and `simulator.venue.SimVenue` (the simulator in process). One contract test suite runs on both.

Refused before sending vs rejected by the venue: both implementations run the same local checks before an
order leaves the process (a complete request, a size that is at least the instrument's minimum once truncated to
its increment, prices that stay positive on the tick) and raise one of `NOT_SENT_ERRORS` when a check fails.
Nothing was sent, so it is neither a venue rejection nor an unknown outcome. `PlaceResult.REJECTED` is kept for
what the venue itself refused, with the venue's own status as the reason.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Protocol

from exchange.budget import BudgetDeferred
from exchange.errors import InvalidOrderRequest, OrderNotSent, VenueError
from lifecycle.account_log import PAGE as ACCOUNT_LOG_PAGE
from lifecycle.account_log import AccountLogEntry
from lifecycle.values import (
    AccountSnapshot,
    Candle,
    Instrument,
    MarginSnapshot,
    OrderRequest,
    OrderType,
    PlaceResult,
    Ticker,
    VenueFill,
    VenueOrder,
    VenuePosition,
)

# SizeBelowMinimum and InvalidPrice (exchange/rounding.py) are OrderNotSent too; named here for the reader.
# BudgetDeferred: our copy of Kraken's rate budget held the call back (exchange/budget.py); nothing left either.
NOT_SENT_ERRORS: tuple[type[VenueError], ...] = (OrderNotSent, BudgetDeferred)


def require_complete(request: OrderRequest) -> None:
    """The pre-send check both venues share: a limit needs its price, a stop or take-profit its trigger."""
    if request.order_type is OrderType.LIMIT and request.limit_price is None:
        raise InvalidOrderRequest(f"limit order {request.client_order_id} has no limit price; not sent")
    if request.order_type in (OrderType.STOP, OrderType.TAKE_PROFIT) and request.trigger_price is None:
        raise InvalidOrderRequest(
            f"{request.order_type.value} order {request.client_order_id} has no trigger price; not sent"
        )


class Venue(Protocol):
    # --- reads (retry-safe) ---------------------------------------------------------------------------
    def instruments(self) -> dict[str, Instrument]: ...

    def tickers(self) -> dict[str, Ticker]: ...

    def candles(self, symbol: str, timeframe: str, since: datetime | None = None, limit: int = 100) -> list[Candle]: ...

    def margin(self) -> MarginSnapshot: ...

    def positions(self) -> list[VenuePosition]: ...

    def open_orders(self) -> list[VenueOrder]: ...

    def fills_since(self, since: datetime | None) -> list[VenueFill]:
        """All fills strictly after `since` (oldest first), paging past the venue's 100-fill window."""
        ...

    def account_log(self, after_id: int | None, limit: int = ACCOUNT_LOG_PAGE) -> list[AccountLogEntry]:
        """Account-log entries with an id above `after_id` (from the first when None), oldest first, at most
        `limit`: one page. Fees and funding are read from it (lifecycle.account_log, operations.account_log)."""
        ...

    def find_order(self, client_order_id: str, *, sent_after: datetime | None = None) -> VenueOrder | None:
        """Evidence lookup by client order id across open orders, order and trigger history.

        `sent_after`: when the caller knows the order cannot be older (the intent's creation time), history is read
        from then on instead of the whole lookback, which spares Kraken's 100-token history budget. Returns None
        only when no source knows the order (which on Kraken is evidence, not proof)."""
        ...

    def snapshot(self, fills_since: datetime | None) -> AccountSnapshot:
        """Positions, open orders, fills and margin: a constant number of REST calls."""
        ...

    # --- actions (never blindly retried) --------------------------------------------------------------
    def place_order(self, request: OrderRequest) -> PlaceResult:
        """Send one order at most once.

        ACCEPTED: the venue has the order (placed now, already there under this client order id, or found by
        evidence after an ambiguous send). REJECTED: the venue refused it; `reason` is its own status.
        UNKNOWN: the send was ambiguous and no evidence was found; `reason` says what was looked at. Raises one
        of `NOT_SENT_ERRORS` (e.g. `SizeBelowMinimum`) when the local checks refuse it: nothing was sent."""
        ...

    def cancel_order(self, order_id: str) -> None: ...

    def edit_order(
        self,
        order_id: str,
        *,
        trigger_price: Decimal | None,
        limit_price: Decimal | None,
        size: Decimal | None = None,
    ) -> VenueOrder:
        """Set an open order's size and prices; what is returned is the order after the edit.

        `trigger_price` and `limit_price` are the order's prices *after* the edit and every caller states them:
        Kraken's `editorder` requires `stopPrice` on any edit of a stop (and `limitPrice` on a stop-limit), so a
        resize that sent the size alone is refused on the venue each time (docs/venue.md, "Resizing a stop").
        None means the order has no such price (a stop-market's limit) or, on a plain limit order, that its
        limit stays. A stop edited with `trigger_price=None` (or a stop-limit with `limit_price=None`) raises
        `InvalidOrderRequest` before anything is sent. `size` is the absolute new size including past fills
        (None: unchanged); below the instrument's minimum it raises `SizeBelowMinimum`."""
        ...


def require_edit_prices(current: VenueOrder, trigger_price: Decimal | None, limit_price: Decimal | None) -> None:
    """The pre-send check of an edit both venues share: a stop keeps a trigger, a stop-limit keeps its limit."""
    trigger_kind = current.order_type in (OrderType.STOP, OrderType.TAKE_PROFIT)
    if trigger_kind and trigger_price is None:
        raise InvalidOrderRequest(
            f"edit of {current.order_type.value} order {current.order_id} has no stop price; Kraken requires "
            "stopPrice on every edit of a stop (pass its current trigger to keep it); not sent"
        )
    if trigger_kind and current.limit_price is not None and limit_price is None:
        raise InvalidOrderRequest(
            f"edit of stop-limit order {current.order_id} has no limit price; Kraken requires limitPrice on every "
            "edit of a stop-limit (pass its current limit to keep it); not sent"
        )
