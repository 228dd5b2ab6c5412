"""What the jobs need from the parts they orchestrate, stated narrowly so each job can be read (and tested) on
its own. The real registry, strategy and safety classes satisfy these structurally."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from exchange.types import VenueFill


class PositionView(Protocol):
    @property
    def uid(self) -> str: ...
    @property
    def symbol_key(self) -> str: ...
    @property
    def side(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def remaining_qty(self) -> Decimal: ...
    @property
    def entry_price(self) -> Decimal | None: ...
    @property
    def stop_price(self) -> Decimal | None: ...
    @property
    def take_profit_price(self) -> Decimal | None: ...
    @property
    def created(self) -> datetime: ...
    @property
    def sl_order_id(self) -> str | None: ...
    @property
    def tp_order_id(self) -> str | None: ...


class OrderView(Protocol):
    @property
    def client_order_id(self) -> str: ...
    @property
    def venue_order_id(self) -> str | None: ...
    @property
    def position_uid(self) -> str: ...
    @property
    def purpose(self) -> str: ...
    @property
    def status(self) -> str: ...


class RegistryPort(Protocol):
    def open_intent(
        self,
        *,
        symbol: str,
        side: str,
        target_qty: Decimal,
        stop_price: Decimal | None,
        take_profit_price: Decimal | None,
        cause: str,
    ) -> PositionView: ...

    def import_position(
        self, *, symbol: str, side: str, qty: Decimal, entry_price: Decimal, cause: str
    ) -> PositionView: ...

    def apply(self, uid: str, event: str, *, cause: str) -> PositionView: ...

    def record_order_intent(
        self,
        uid: str,
        *,
        purpose: str,
        side: str,
        order_type: str,
        qty: Decimal,
        limit_price: Decimal | None = None,
        trigger_price: Decimal | None = None,
    ) -> OrderView: ...

    def mark_order(
        self, client_order_id: str, *, status: str, venue_order_id: str | None = None, reason: str | None = None
    ) -> None: ...

    def record_fill(self, uid: str, fill: VenueFill, *, is_entry: bool) -> bool: ...

    def set_protection(self, uid: str, *, sl_order_id: str | None = None, tp_order_id: str | None = None) -> None: ...

    def set_stop_price(self, uid: str, stop_price: Decimal) -> None: ...

    def close_external(self, uid: str, *, cause: str) -> PositionView:
        """Close a position the venue no longer holds (phantom), writing the balancing ledger entry."""
        ...

    def get(self, uid: str) -> PositionView: ...

    def active_positions(self) -> Sequence[PositionView]: ...

    def unresolved_orders(self) -> Sequence[OrderView]: ...

    def orders_for(self, uid: str) -> Sequence[OrderView]: ...

    def known_fill_ids(self) -> set[str]: ...

    def last_fill_time(self) -> datetime | None: ...
