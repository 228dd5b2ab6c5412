"""Small builders for reconciliation inputs: venue values and registry rows with sensible defaults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from lifecycle.values import (
    AccountSnapshot,
    MarginSnapshot,
    OrderStatus,
    OrderType,
    PositionSide,
    RegistryPosition,
    Side,
    VenueFill,
    VenueOrder,
    VenuePosition,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)


def D(text: str) -> Decimal:
    return Decimal(text)


def pos(
    uid: str,
    symbol: str = "PF_XBTUSD",
    side: PositionSide = PositionSide.LONG,
    state: str = "PROTECTED",
    qty: str = "1",
    sl: str | None = "sl-1",
    created: datetime = T0,
) -> RegistryPosition:
    return RegistryPosition(uid, symbol, side, state, D(qty), created, sl)


def vpos(symbol: str = "PF_XBTUSD", side: PositionSide = PositionSide.LONG, size: str = "1") -> VenuePosition:
    return VenuePosition(symbol, side, D(size), D("50000"))


def fill(
    fill_id: str, order_id: str, cid: str | None, side: Side, size: str, symbol: str = "PF_XBTUSD", minute: int = 0
) -> VenueFill:
    return VenueFill(fill_id, order_id, cid, symbol, side, D(size), D("50000"), T0 + timedelta(minutes=minute))


def stop(
    order_id: str, side: Side = Side.SELL, symbol: str = "PF_XBTUSD", cid: str | None = None, size: str = "1"
) -> VenueOrder:
    return VenueOrder(
        order_id, cid, symbol, side, OrderType.STOP, D(size), D("0"), None, D("40000"), True, OrderStatus.OPEN
    )


def limit(order_id: str, cid: str, side: Side = Side.BUY, symbol: str = "PF_XBTUSD", size: str = "1") -> VenueOrder:
    return VenueOrder(
        order_id, cid, symbol, side, OrderType.LIMIT, D(size), D("0"), D("49000"), None, False, OrderStatus.OPEN
    )


def snap(
    positions: tuple[VenuePosition, ...] = (),
    orders: tuple[VenueOrder, ...] = (),
    fills: tuple[VenueFill, ...] = (),
    extra: dict[str, str] | None = None,
    margin_lag: timedelta = timedelta(0),
) -> AccountSnapshot:
    margin = MarginSnapshot(D("10000"), D("10000"), D("1000"), D("500"), D("9000"), NOW - margin_lag)
    return AccountSnapshot(positions, orders, fills, margin, NOW, extra or {})
