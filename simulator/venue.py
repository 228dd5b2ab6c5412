"""`Venue` on the simulator in process: typed values straight from the engine, no HTTP, no ccxt.

It mirrors what the ccxt path does at the client side (the checks of `exchange.venue`, sizes truncated to the
size increment with `SizeBelowMinimum` raised below the minimum, prices rounded to the tick with the same
`exchange.rounding` functions, `InvalidPrice` when one is not positive) so the same contract tests hold for
both: a request our own checks refuse never reaches the engine. HTTP-level faults do not apply here; use
`SimulatorServer` with `CcxtVenue` to exercise those.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from exchange.errors import OrderNotFound, OrderRejected, UnknownSymbol
from exchange.rounding import round_price, round_size
from exchange.venue import require_complete, require_edit_prices
from lifecycle.account_log import PAGE as ACCOUNT_LOG_PAGE
from lifecycle.account_log import AccountLogEntry
from lifecycle.clock import from_ms
from lifecycle.symbols import canonical_key
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
    PositionSide,
    Side,
    Ticker,
    VenueFill,
    VenueOrder,
    VenuePosition,
)
from simulator.engine import Simulator, SimulatorError
from simulator.instruments import InstrumentSpec
from simulator.models import HistoryEvent, HistoryKind, OrderState, SimFill, SimOrder

ORDER_EXISTS = "clientOrderIdAlreadyExist"

_TYPE_TO_KRAKEN = {
    OrderType.MARKET: "mkt",
    OrderType.LIMIT: "lmt",
    OrderType.STOP: "stp",
    OrderType.TAKE_PROFIT: "take_profit",
}
_KRAKEN_TO_TYPE = {
    "mkt": OrderType.MARKET,
    "ioc": OrderType.MARKET,
    "lmt": OrderType.LIMIT,
    "post": OrderType.LIMIT,
    "stp": OrderType.STOP,
    "take_profit": OrderType.TAKE_PROFIT,
}


class SimVenue:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    # ------------------------------------------------------------------ reads
    def instruments(self) -> dict[str, Instrument]:
        return {spec.symbol: self._instrument(spec) for spec in self.sim.instruments.values()}

    def _instrument(self, spec: InstrumentSpec) -> Instrument:
        return Instrument(
            symbol=spec.symbol,
            base=spec.base,
            tick_size=spec.tick_size,
            size_increment=spec.size_increment,
            min_size=spec.size_increment,
            contract_size=spec.contract_size,
            max_leverage=spec.max_leverage,
            tradeable=not self.sim.is_suspended(spec.symbol),
        )

    def tickers(self) -> dict[str, Ticker]:
        now = self.sim.now()
        out = {}
        for symbol in self.sim.instruments:
            q = self.sim.quote(symbol)
            out[symbol] = Ticker(symbol, q.last, q.mark, q.bid, q.ask, now)
        return out

    def candles(self, symbol: str, timeframe: str, since: datetime | None = None, limit: int = 100) -> list[Candle]:
        self._spec(symbol)
        from_s = int(since.timestamp()) if since is not None else None
        try:
            bars, _ = self.sim.candles.page(symbol, "trade", timeframe, from_s, None)
        except KeyError:
            raise ValueError(f"unknown timeframe {timeframe!r}; use 1m 5m 15m 30m 1h 4h 12h 1d 1w") from None
        bars = bars[:limit] if since is not None else bars[-limit:]
        return [Candle(from_ms(b.time_ms), b.open, b.high, b.low, b.close, b.volume) for b in bars]

    def margin(self) -> MarginSnapshot:
        a = self.sim.account()
        return MarginSnapshot(
            portfolio_value=a.portfolio_value,
            margin_equity=a.margin_equity,
            initial_margin=a.initial_margin,
            maintenance_margin=a.maintenance_margin,
            available_margin=a.available_margin,
            time=self.sim.now(),
        )

    def positions(self) -> list[VenuePosition]:
        return [
            VenuePosition(
                symbol=p.symbol,
                side=PositionSide.LONG if p.size > 0 else PositionSide.SHORT,
                size=abs(p.size),
                entry_price=p.entry_price,
                time=p.fill_time,
            )
            for p in self.sim.positions()
        ]

    def open_orders(self) -> list[VenueOrder]:
        return [_order(o) for o in self.sim.open_orders()]

    def account_log(self, after_id: int | None, limit: int = ACCOUNT_LOG_PAGE) -> list[AccountLogEntry]:
        with self.sim.lock:
            booked = self.sim.account_log.after(after_id, limit)
        return [
            AccountLogEntry(
                entry_id=e.id,
                time=e.time,
                info=e.info,
                cash=e.is_cash,
                symbol=canonical_key(e.contract.upper()) if e.contract else None,
                fill_id=e.execution,
                fee=e.fee,
                realized_funding=e.realized_funding,
            )
            for e in booked
        ]

    def fills_since(self, since: datetime | None) -> list[VenueFill]:
        """Pages back through the venue's 100-fill window exactly as the REST client must."""
        seen: dict[str, SimFill] = {}
        cursor: datetime | None = None
        while True:
            page = self.sim.fills(cursor)
            fresh = [f for f in page if f.fill_id not in seen]
            for fill in fresh:
                seen[fill.fill_id] = fill
            if not fresh or len(page) < self.sim.config.fills_page:
                break
            oldest = min(f.time for f in page)
            if since is not None and oldest <= since:
                break
            cursor = oldest
        chosen = [f for f in seen.values() if since is None or f.time > since]
        chosen.sort(key=lambda f: (f.time, f.seq))
        return [_fill(f) for f in chosen]

    def find_order(self, client_order_id: str, *, sent_after: datetime | None = None) -> VenueOrder | None:
        """Open orders, then history newest first. An accepted order beats any rejection under the same id (ids
        are globally unique: a later rejection is a refused retry), and a `clientOrderIdAlreadyExist` refusal is
        never evidence of anything. In process there is no budget to spare: `sent_after` is accepted and unused."""
        for order in self.sim.open_orders():
            if order.cli_ord_id == client_order_id:
                return _order(order)
        rejected: HistoryEvent | None = None
        for event in reversed(self.sim.history()):
            if event.order.cli_ord_id != client_order_id:
                continue
            if event.kind is HistoryKind.ORDER_REJECTED:
                if rejected is None and event.reason != ORDER_EXISTS:
                    rejected = event
                continue
            current = self.sim.order(event.order.order_id)
            return _order(current if current is not None else event.order)
        return None if rejected is None else _order(rejected.order, OrderStatus.REJECTED)

    def snapshot(self, fills_since: datetime | None) -> AccountSnapshot:
        with self.sim.lock:  # one consistent instant, as one reconcile cycle would like to see it
            return AccountSnapshot(
                positions=tuple(self.positions()),
                open_orders=tuple(self.open_orders()),
                fills=tuple(self.fills_since(fills_since)),
                margin=self.margin(),
                server_time=self.sim.now(),
            )

    # ------------------------------------------------------------------ actions
    def place_order(self, request: OrderRequest) -> PlaceResult:
        require_complete(request)
        instrument = self._instrument(self._spec(request.symbol))
        market = request.order_type is OrderType.MARKET  # a market order's limit price is never sent: not checked
        limit = round_price(request.limit_price, instrument) if request.limit_price is not None and not market else None
        trigger = round_price(request.trigger_price, instrument) if request.trigger_price is not None else None
        size = round_size(request.size, instrument)
        order_type = _TYPE_TO_KRAKEN[request.order_type]
        try:
            outcome = self.sim.place_order(
                symbol=request.symbol,
                side=request.side.value,
                order_type=order_type,
                size=size,
                limit_price=limit,
                stop_price=trigger,
                trigger_signal=request.trigger_signal.value,
                reduce_only=request.reduce_only,
                cli_ord_id=request.client_order_id,
            )
        except SimulatorError as exc:
            raise OrderRejected(f"order refused by the simulator: {exc}", venue_status=exc.code) from None
        if outcome.order is not None:
            return PlaceResult(
                OrderOutcome.ACCEPTED,
                request.client_order_id,
                _order(outcome.order),
                fills=tuple(_fill(f) for f in outcome.fills),
            )
        if outcome.status == ORDER_EXISTS:
            # The id was used before (open, filled or cancelled): the evidence decides, as after an ambiguous send.
            existing = self.find_order(request.client_order_id)
            if existing is None:
                return PlaceResult(
                    OrderOutcome.UNKNOWN, request.client_order_id, reason=f"{outcome.status}; no evidence found"
                )
            if existing.status is OrderStatus.REJECTED:
                return PlaceResult(OrderOutcome.REJECTED, request.client_order_id, existing, reason=outcome.status)
            return PlaceResult(OrderOutcome.ACCEPTED, request.client_order_id, existing, reason=outcome.status)
        return PlaceResult(OrderOutcome.REJECTED, request.client_order_id, reason=outcome.status)

    def cancel_order(self, order_id: str) -> None:
        status, _ = self.sim.cancel_order(order_id)
        if status != "cancelled":
            raise OrderNotFound(
                f"order {order_id} is not open on the venue (cancelStatus {status}); look up its fills",
                venue_status=status,
            )

    def edit_order(
        self,
        order_id: str,
        *,
        trigger_price: Decimal | None,
        limit_price: Decimal | None,
        size: Decimal | None = None,
    ) -> VenueOrder:
        current = self.sim.order(order_id)
        if current is None:
            raise OrderNotFound(f"order {order_id} is unknown to the venue", venue_status="orderForEditNotFound")
        if current.is_open:
            require_edit_prices(_order(current), trigger_price, limit_price)
        instrument = self._instrument(self._spec(current.symbol))
        if size is not None:
            size = round_size(size, instrument)
        if trigger_price is not None:
            trigger_price = round_price(trigger_price, instrument)
        if limit_price is not None:
            limit_price = round_price(limit_price, instrument)
        try:
            status, _, new = self.sim.edit_order(
                order_id, size=size, stop_price=trigger_price, limit_price=limit_price, qty_mode="ABSOLUTE"
            )
        except SimulatorError as exc:
            raise OrderRejected(f"edit of order {order_id} refused: {exc.code}", venue_status=exc.code) from None
        if status == "orderForEditNotFound":
            raise OrderNotFound(f"order {order_id} is no longer open; look up its fills", venue_status=status)
        if new is None:
            raise OrderRejected(f"edit of order {order_id} refused: {status}", venue_status=status)
        return _order(new)

    def _spec(self, symbol: str) -> InstrumentSpec:
        spec = self.sim.instruments.get(symbol)
        if spec is None:
            raise UnknownSymbol(f"{symbol!r} is not a simulator instrument; valid: {sorted(self.sim.instruments)}")
        return spec


def _order(order: SimOrder, status: OrderStatus | None = None) -> VenueOrder:
    if status is None:
        status = {
            OrderState.OPEN: OrderStatus.OPEN,
            OrderState.FILLED: OrderStatus.FILLED,
            OrderState.CANCELLED: OrderStatus.CANCELLED,
        }[order.state]
    return VenueOrder(
        order_id=order.order_id,
        client_order_id=order.cli_ord_id,
        symbol=order.symbol,
        side=Side(order.side) if order.side in ("buy", "sell") else Side.BUY,
        order_type=_KRAKEN_TO_TYPE.get(order.original_type, OrderType.LIMIT),
        size=order.size,
        filled=order.filled,
        limit_price=order.limit_price,
        trigger_price=order.stop_price,
        reduce_only=order.reduce_only,
        status=status,
        time=order.received,
    )


def _fill(fill: SimFill) -> VenueFill:
    return VenueFill(
        fill_id=fill.fill_id,
        order_id=fill.order_id,
        client_order_id=fill.cli_ord_id,
        symbol=fill.symbol,
        side=Side(fill.side),
        size=fill.size,
        price=fill.price,
        time=fill.time,
    )
