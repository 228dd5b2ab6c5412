"""The narrow interface the rest of the system uses to talk to a venue.

Two implementations: `exchange.ccxt_venue.CcxtVenue` (the live path, also used against the simulator's HTTP
server) and `exchange.sim_venue.SimVenue` (the simulator in process). One contract test suite runs on both.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Protocol

from exchange.types import (
    AccountSnapshot,
    Candle,
    Instrument,
    MarginSnapshot,
    OrderRequest,
    PlaceResult,
    Ticker,
    VenueFill,
    VenueOrder,
    VenuePosition,
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

    def find_order(self, client_order_id: str) -> VenueOrder | None:
        """Evidence lookup by client order id across open orders, order and trigger history.

        Returns None only when no source knows the order (which on Kraken is evidence, not proof)."""
        ...

    def snapshot(self, fills_since: datetime | None) -> AccountSnapshot:
        """Positions, open orders, fills and margin: a constant number of REST calls."""
        ...

    # --- actions (never blindly retried) --------------------------------------------------------------
    def place_order(self, request: OrderRequest) -> PlaceResult: ...

    def cancel_order(self, order_id: str) -> None: ...

    def edit_order(
        self, order_id: str, *, size: Decimal | None = None, trigger_price: Decimal | None = None
    ) -> VenueOrder: ...
