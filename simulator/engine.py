"""The simulated venue: prices, order matching, positions, margin and history, driven by an injected clock.

Everything is deterministic given `SimConfig.seed` and the clock: prices, order ids, fill ids and faults draw
from separate seeded streams. All public methods take `Simulator.lock`, so the HTTP server thread and a test
or daemon thread can share one engine.
"""

from __future__ import annotations

import random
import threading
import uuid
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Protocol, TypeVar

from lifecycle.clock import FakeClock, to_ms
from simulator.candles import CandleBook
from simulator.faults import FaultKind, FaultPlan
from simulator.instruments import DEFAULT_INSTRUMENTS, InstrumentSpec
from simulator.ledger import AccountLog, PositionChange
from simulator.margin import AccountState, Holding, compute_account, initial_margin
from simulator.models import (
    ORDER_TYPES,
    TRIGGER_TYPES,
    AcceptedOrder,
    HistoryEvent,
    HistoryKind,
    OrderState,
    PlaceOutcome,
    RequestRecord,
    SimFill,
    SimOrder,
    SimPosition,
)
from simulator.prices import PricePath, RandomWalk, ReplayCandle, ReplayPath, gauss
from simulator.ratelimit import RateBudget, RateLimits

BPS = Decimal(10000)
MAX_BOOK_LEVELS = 500
MAX_CLIENT_ORDER_ID = 100
VIEW_HORIZON_S = 3600  # the oldest past a STALE_SNAPSHOT fault may serve (its lag_seconds is 30 s by default)


class AdvanceableClock(Protocol):
    def now(self) -> datetime: ...

    def advance(self, seconds: float) -> datetime: ...


@dataclass(frozen=True)
class SimConfig:
    seed: int = 0
    starting_usd: Decimal = Decimal(10000)
    instruments: tuple[InstrumentSpec, ...] = DEFAULT_INSTRUMENTS
    step_seconds: Decimal = Decimal(1)  # price and matching resolution of `advance`
    history_minutes: int = 720  # candles generated before the clock's start
    history_step_seconds: int = 15
    spread_bps: Decimal = Decimal(2)  # best ask minus best bid, and the distance between book levels
    level_notional_usd: Decimal = Decimal(50000)  # size of each simulated book level (market orders walk levels)
    market_protection: Decimal = Decimal("0.01")  # mkt orders fill no further than 1 % from the touch
    taker_fee: Decimal = Decimal("0.0005")
    maker_fee: Decimal = Decimal("0.0002")
    last_noise_bps: Decimal = Decimal(1)  # last and index deviate from mark by this much (std-dev)
    index_noise_bps: Decimal = Decimal(1)
    regime_seconds: Decimal = Decimal(14400)
    recent_order_seconds: Decimal = Decimal(5)  # orders/status keeps closed orders this long
    fills_page: int = 100
    liquidation: bool = True
    request_log_limit: int | None = None  # keep only the newest N requests (long paper runs); None keeps all
    candle_keep_minutes: int | None = None  # keep only the newest N one-minute bars per series (long paper runs)
    # Keep only the fills, account-history and account-log entries, order-log lines and closed orders of the last
    # N seconds (long paper runs: a week of trading would otherwise be held in memory, and every /fills answer
    # sorted it; a client order id may be reused once its order is dropped); None keeps them all (tests count
    # duplicates over the whole order log).
    history_keep_s: int | None = None
    rate_limits: RateLimits = field(default_factory=RateLimits)  # Kraken's REST budgets (simulator/ratelimit.py)
    funding_rate_hourly: Decimal = Decimal("0.00001")  # relative; longs pay shorts at each full hour when > 0
    # Kraken refuses new orders past an open-order count (`tooManyOrders`) and positions past the instrument's
    # `maxPositionSize` (`maxPositionViolation`); it publishes neither number per account, so these are ours.
    max_open_orders: int = 500
    # non-USD collateral held in the flex account (currency -> quantity, e.g. {"XBT": Decimal("0.05")}), valued at
    # the mark of PF_<currency>USD less `collateral_haircut` (Kraken's accounts example: 3 % on XBT)
    collateral: dict[str, Decimal] = field(default_factory=dict)
    collateral_haircut: Decimal = Decimal("0.03")
    replay: dict[str, list[ReplayCandle]] = field(default_factory=dict)


class SimulatorError(Exception):
    """A request the engine cannot act on; `code` is the Kraken error string the server answers with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Quote:
    mark: Decimal
    last: Decimal
    index: Decimal
    bid: Decimal
    ask: Decimal
    level_size: Decimal


@dataclass(frozen=True)
class View:
    time: datetime
    positions: tuple[SimPosition, ...]
    open_orders: tuple[SimOrder, ...]


class Simulator:
    def __init__(self, config: SimConfig | None = None, clock: AdvanceableClock | None = None) -> None:
        self.config = config or SimConfig()
        self.clock: AdvanceableClock = clock if clock is not None else FakeClock()
        self.lock = threading.RLock()
        self.faults = FaultPlan(self.config.seed)
        self.request_log: list[RequestRecord] = []
        self.budget = RateBudget(self.config.rate_limits, self.clock.now())
        self.account_log = AccountLog(self.config.seed)
        self._next_funding = _next_hour(self.clock.now())
        self.order_log: list[AcceptedOrder] = []
        self.instruments: dict[str, InstrumentSpec] = {spec.symbol: spec for spec in self.config.instruments}
        no_mark = {c for c in self.config.collateral if f"PF_{c}USD" not in self.instruments}
        if no_mark:
            raise ValueError(f"SimConfig.collateral needs a PF_<currency>USD instrument for {sorted(no_mark)}")
        unknown = set(self.config.replay) - set(self.instruments)
        if unknown:
            raise ValueError(f"SimConfig.replay names unknown instruments {sorted(unknown)}; use PF_*USD ids")
        seed = self.config.seed
        self._ids = random.Random(f"{seed}:ids")
        self._noise = {s: random.Random(f"{seed}:noise:{s}") for s in self.instruments}
        self._paths: dict[str, PricePath] = {}
        for symbol, spec in self.instruments.items():
            if symbol in self.config.replay:
                self._paths[symbol] = ReplayPath(self.config.replay[symbol])
            else:
                rng = random.Random(f"{seed}:prices:{symbol}")
                self._paths[symbol] = RandomWalk(rng, spec.start_price, spec.volatility, self.config.regime_seconds)
        self._mark: dict[str, Decimal] = {}
        self._last: dict[str, Decimal] = {}
        self._index: dict[str, Decimal] = {}
        self._last_trade: dict[str, tuple[datetime, Decimal]] = {}
        self.candles = CandleBook(self.config.candle_keep_minutes)
        self._orders: dict[str, SimOrder] = {}
        self._open: dict[str, SimOrder] = {}
        self._cli_ids: set[str] = set()  # every id an accepted order ever carried (Kraken: globally unique)
        self._fills: list[SimFill] = []
        self._fills_in_order = True  # (time, seq) ascending: `fills` pages by bisection
        self._positions: dict[str, SimPosition] = {}
        self._history: list[HistoryEvent] = []
        self._history_dropped = 0  # events dropped from the front by `history_keep_s`
        self._balance = self.config.starting_usd
        self._leverage: dict[str, Decimal] = {}
        self._thin: dict[str, tuple[Decimal, int]] = {}  # symbol -> (contracts per level, levels): set_depth
        self._suspended: set[str] = set()
        self._views: deque[View] = deque(maxlen=5000)
        self._seq = 0
        self._dead_man: datetime | None = None
        self._warm_up()
        self._record_view()

    # ------------------------------------------------------------------ time and prices
    def _warm_up(self) -> None:
        now = self.clock.now()
        step = self.config.history_step_seconds
        steps = self.config.history_minutes * 60 // step
        start = now - timedelta(seconds=steps * step)
        for i in range(1, steps + 1):
            self._step_prices(start + timedelta(seconds=i * step), Decimal(step))
        if steps == 0:
            self._step_prices(now, Decimal(0))

    def _step_prices(self, now: datetime, dt: Decimal) -> None:
        now_ms = to_ms(now)
        for symbol in self.instruments:
            fair = self._paths[symbol].step(now, dt)
            self._set_prices(symbol, fair, now_ms, dt)

    def _set_prices(self, symbol: str, fair: Decimal, now_ms: int, dt: Decimal) -> None:
        spec = self.instruments[symbol]
        rng = self._noise[symbol]
        mark = max(spec.tick_size, spec.round_price(fair))
        last_dev = self.config.last_noise_bps * gauss(rng) / BPS
        index_dev = self.config.index_noise_bps * gauss(rng) / BPS
        self._mark[symbol] = mark
        self._last[symbol] = max(spec.tick_size, spec.round_price(fair * (1 + last_dev)))
        self._index[symbol] = max(spec.tick_size, spec.round_price(fair * (1 + index_dev)))
        # Synthetic market volume so charts look like a traded market; our own fills are added on top.
        volume = (self._level_size(symbol) * dt / 60 * Decimal(f"{rng.random():.4f}")).quantize(spec.size_increment)
        self.candles.record(symbol, "trade", now_ms, self._last[symbol], volume)
        self.candles.record(symbol, "mark", now_ms, mark, Decimal(0))
        self.candles.record(symbol, "spot", now_ms, self._index[symbol], Decimal(0))

    def now(self) -> datetime:
        return self.clock.now()

    def advance(self, seconds: float) -> None:
        """Move simulated time forward: prices walk, triggers fire, resting orders fill, margin is checked."""
        remaining = Decimal(str(seconds))
        with self.lock:
            while remaining > 0:
                dt = min(self.config.step_seconds, remaining)
                now = self.clock.advance(float(dt))
                self._step_prices(now, dt)
                self._match_all()
                self._random_stop_cancels()
                self._check_liquidation()
                if now >= self._next_funding:
                    self._book_funding(self._next_funding)
                    self._next_funding = _next_hour(now)
                if self._dead_man is not None and now >= self._dead_man:
                    self._dead_man = None
                    self.cancel_all()
                remaining -= dt
            self._drop_old_history(self.clock.now())

    def set_mark(self, symbol: str, price: Decimal) -> None:
        """Scenario control: a price shock. Mark, last and index jump to `price`; triggers and orders react."""
        with self.lock:
            spec = self._spec(symbol)
            price = spec.round_price(Decimal(price))
            self._paths[symbol].shock(price)
            now_ms = to_ms(self.now())
            self._mark[symbol] = self._last[symbol] = self._index[symbol] = price
            for ptype in ("trade", "mark", "spot"):
                self.candles.record(symbol, ptype, now_ms, price, Decimal(0))
            self._match_all()
            self._check_liquidation()

    def set_last(self, symbol: str, price: Decimal) -> None:
        """Scenario control: move only the last traded price (mark and index stay), e.g. a wick."""
        self.set_prices(symbol, last=price)

    def set_prices(
        self, symbol: str, *, mark: Decimal | None = None, last: Decimal | None = None, index: Decimal | None = None
    ) -> None:
        """Scenario control: set any of the three prices for this instant (the path is not moved, so the next
        `advance` step recomputes them); triggers and resting orders react at once."""
        with self.lock:
            spec = self._spec(symbol)
            now_ms = to_ms(self.now())
            for book, ptype, value in (
                (self._mark, "mark", mark),
                (self._last, "trade", last),
                (self._index, "spot", index),
            ):
                if value is not None:
                    book[symbol] = spec.round_price(Decimal(value))
                    self.candles.record(symbol, ptype, now_ms, book[symbol], Decimal(0))
            self._match_all()
            self._check_liquidation()

    def suspend(self, symbol: str, suspended: bool = True) -> None:
        with self.lock:
            self._spec(symbol)
            if suspended:
                self._suspended.add(symbol)
            else:
                self._suspended.discard(symbol)

    def is_suspended(self, symbol: str) -> bool:
        return symbol in self._suspended

    def quote(self, symbol: str) -> Quote:
        with self.lock:
            spec = self._spec(symbol)
            last = self._last[symbol]
            half = last * self.config.spread_bps / BPS / 2
            bid = _floor_to(last - half, spec.tick_size)
            ask = _ceil_to(last + half, spec.tick_size)
            if ask <= bid:
                ask = bid + spec.tick_size
            return Quote(self._mark[symbol], last, self._index[symbol], bid, ask, self._level_size(symbol))

    def last_trade(self, symbol: str) -> tuple[datetime, Decimal] | None:
        return self._last_trade.get(symbol)

    def set_depth(self, symbol: str, level_size: Decimal | None, levels: int = MAX_BOOK_LEVELS) -> None:
        """Scenario control: a thin book on `symbol`, each of `levels` levels holding `level_size` contracts (None:
        the configured depth again). A market order, an IOC or a triggered stop then fills partly and its remainder
        is cancelled (`ioc_remainder`), as on a venue whose book is thinner than the order within its price
        protection."""
        with self.lock:
            self._spec(symbol)
            if level_size is None:
                self._thin.pop(symbol, None)
            else:
                self._thin[symbol] = (level_size, max(levels, 1))

    def _level_size(self, symbol: str) -> Decimal:
        thin = self._thin.get(symbol)
        if thin is not None:
            return thin[0]
        spec = self.instruments[symbol]
        raw = self.config.level_notional_usd / (self._last.get(symbol) or spec.start_price)
        return max(spec.size_increment, _floor_to(raw, spec.size_increment))

    def _level_step(self, symbol: str) -> Decimal:
        spec = self.instruments[symbol]
        return max(spec.tick_size, spec.round_price(self._last[symbol] * self.config.spread_bps / BPS))

    def _spec(self, symbol: str) -> InstrumentSpec:
        spec = self.instruments.get(symbol)
        if spec is None:
            raise SimulatorError("contractNotFound", f"unknown contract {symbol!r}; instruments lists the valid ids")
        return spec

    # ------------------------------------------------------------------ ids, views, history
    def _new_id(self) -> str:
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def _record_view(self) -> None:
        now = self.now()
        self._views.append(
            View(
                now,
                tuple(SimPosition(p.symbol, p.size, p.entry_price, p.fill_time) for p in self._positions.values()),
                tuple(o.snapshot() for o in self._open.values()),
            )
        )
        # Only views a stale answer may still serve are kept (two that old: `view` picks the newest at or before
        # its cutoff), so a long run's memory does not grow with every order event.
        horizon = now - timedelta(seconds=VIEW_HORIZON_S)
        while len(self._views) > 2 and self._views[1].time <= horizon:
            self._views.popleft()

    def view(self, lag_seconds: float = 0.0) -> View:
        """Positions and open orders as they were `lag_seconds` ago (the STALE_SNAPSHOT fault serves these)."""
        with self.lock:
            if lag_seconds <= 0:
                return self._views[-1]
            cutoff = self.now() - timedelta(seconds=lag_seconds)
            chosen = self._views[0]
            for view in self._views:
                if view.time <= cutoff:
                    chosen = view
                else:
                    break
            return chosen

    def _history_event(
        self, kind: HistoryKind, order: SimOrder, *, old: SimOrder | None = None, reason: str = ""
    ) -> None:
        seq = self.history_end() + 1
        self._history.append(HistoryEvent(self._new_id(), self.now(), kind, order.snapshot(), old, reason, seq=seq))

    def history_end(self) -> int:
        """How many history events were ever recorded: the sequence number of the newest (call under the lock)."""
        return self._history_dropped + len(self._history)

    def history_from(self, cursor: int) -> list[HistoryEvent]:
        """The events after the first `cursor` ever recorded (call under the lock); events dropped by
        `history_keep_s` are gone, so a reader that fell that far behind gets what is left."""
        return self._history[max(cursor - self._history_dropped, 0) :]

    def _drop_old_history(self, now: datetime) -> None:
        """`history_keep_s`: drop what is older than the window, in batches (a list shift per batch, not per
        event); the records are in time order because the clock only moves forward."""
        keep = self.config.history_keep_s
        if keep is None:
            return
        cutoff = now - timedelta(seconds=keep)
        dropped = _drop_before(self._history, cutoff, batch=256)
        self._history_dropped += dropped
        _drop_before(self._fills, cutoff, batch=64)
        _drop_before(self.order_log, cutoff, batch=64)
        self.account_log.drop_before(cutoff)
        if dropped:  # every few hundred events: the orders closed before the window, and their client ids
            for order_id, order in list(self._orders.items()):
                if order_id not in self._open and order.last_update < cutoff:
                    del self._orders[order_id]
                    self._cli_ids.discard(order.cli_ord_id or "")

    # ------------------------------------------------------------------ reads
    def positions(self) -> list[SimPosition]:
        with self.lock:
            return list(self.view().positions)

    def open_orders(self) -> list[SimOrder]:
        with self.lock:
            return [o.snapshot() for o in self._open.values()]

    def order(self, order_id: str) -> SimOrder | None:
        with self.lock:
            found = self._orders.get(order_id)
            return found.snapshot() if found else None

    def orders_status(self, order_ids: Iterable[str] = (), cli_ord_ids: Iterable[str] = ()) -> list[SimOrder]:
        """Open orders plus those closed within `recent_order_seconds` (Kraken's 5-second window)."""
        ids, clis = set(order_ids), set(cli_ord_ids)
        with self.lock:
            cutoff = self.now() - timedelta(seconds=float(self.config.recent_order_seconds))
            out = []
            for order in self._orders.values():
                visible = order.is_open or (order.closed_at is not None and order.closed_at >= cutoff)
                if not visible:
                    continue
                if (ids or clis) and order.order_id not in ids and order.cli_ord_id not in clis:
                    continue
                out.append(order.snapshot())
            return out

    def fills(self, last_fill_time: datetime | None = None) -> list[SimFill]:
        """Newest first, at most `fills_page`; with `last_fill_time`, fills at or before it (Kraken pages back)."""
        with self.lock:
            if self._fills_in_order:
                # The list is in (time, seq) order: a page is its tail up to the last fill at or before the cursor,
                # cut by bisection (a long run's every read no longer filters and sorts every fill).
                fills = self._fills
                end = len(fills) if last_fill_time is None else bisect_right(fills, last_fill_time, key=_fill_time)
                return fills[max(0, end - self.config.fills_page) : end][::-1]
            chosen = [f for f in self._fills if last_fill_time is None or f.time <= last_fill_time]
            chosen.sort(key=lambda f: (f.time, f.seq), reverse=True)
            return chosen[: self.config.fills_page]

    def all_fills(self) -> list[SimFill]:
        """Every fill ever, oldest first (ground truth for tests; the API only pages 100 at a time)."""
        with self.lock:
            return list(self._fills)

    def history(self) -> list[HistoryEvent]:
        with self.lock:
            return list(self._history)

    def account(self) -> AccountState:
        with self.lock:
            return compute_account(
                self._balance,
                self._positions.values(),
                self._open.values(),
                self._mark,
                self.instruments,
                self._leverage,
                self._holdings(),
            )

    def _holdings(self) -> tuple[Holding, ...]:
        keep = 1 - self.config.collateral_haircut
        out = []
        for currency, quantity in sorted(self.config.collateral.items()):
            value = quantity * self._mark[f"PF_{currency}USD"]
            out.append(Holding(currency, quantity, value, value * keep))
        return tuple(out)

    def leverage_preferences(self) -> dict[str, Decimal]:
        with self.lock:
            return dict(self._leverage)

    def set_leverage(self, symbol: str, max_leverage: Decimal | None) -> None:
        with self.lock:
            spec = self._spec(symbol)
            if max_leverage is None:
                self._leverage.pop(symbol, None)
                return
            if max_leverage <= 0 or max_leverage > spec.max_leverage:
                raise SimulatorError(
                    "invalidArgument", f"maxLeverage must be within (0, {spec.max_leverage}] for {symbol}"
                )
            self._leverage[symbol] = max_leverage

    # ------------------------------------------------------------------ order entry
    def place_order(
        self,
        *,
        symbol: str,
        side: str,
        order_type: str,
        size: Decimal,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
        trigger_signal: str = "last",
        reduce_only: bool = False,
        cli_ord_id: str | None = None,
    ) -> PlaceOutcome:
        """Validate and accept (or reject, with Kraken's status string) one order, executing what crosses."""
        with self.lock:
            spec = self._spec(symbol)
            status = self._validate(spec, side, order_type, size, limit_price, stop_price, trigger_signal, cli_ord_id)
            if status is not None:
                return self._reject(status, symbol, side, order_type, size, limit_price, cli_ord_id, reduce_only)
            now = self.now()
            order = SimOrder(
                order_id=self._new_id(),
                cli_ord_id=cli_ord_id,
                symbol=symbol,
                side=side,
                order_type=order_type,
                size=size,
                limit_price=limit_price,
                stop_price=stop_price,
                trigger_signal=trigger_signal,
                reduce_only=reduce_only,
                received=now,
                last_update=now,
                was_trigger=order_type in TRIGGER_TYPES,
            )
            reduced: Decimal | None = None
            if reduce_only and not order.is_trigger:
                allowed = self._reducible(symbol, side)
                if allowed <= 0:
                    return self._reject(
                        "wouldNotReducePosition", symbol, side, order_type, size, limit_price, cli_ord_id, True
                    )
                if allowed < size:
                    reduced = size - allowed
                    order.size = allowed
            if not reduce_only and self._beyond_max_position(order):
                return self._reject(
                    "maxPositionViolation", symbol, side, order_type, size, limit_price, cli_ord_id, False
                )
            if not reduce_only and not self._margin_ok(order):
                return self._reject(
                    "insufficientAvailableFunds", symbol, side, order_type, size, limit_price, cli_ord_id, False
                )
            quote = self.quote(symbol)
            if order_type == "post" and limit_price is not None and self._crosses(order, quote):
                return self._reject("postWouldExecute", symbol, side, order_type, size, limit_price, cli_ord_id, False)
            if order_type == "ioc" and not self._crosses(order, quote):
                return self._reject(
                    "iocWouldNotExecute", symbol, side, order_type, size, limit_price, cli_ord_id, reduce_only
                )
            prior = order.snapshot()
            self._orders[order.order_id] = order
            if cli_ord_id is not None:
                self._cli_ids.add(cli_ord_id)
            self.order_log.append(
                AcceptedOrder(order.order_id, cli_ord_id, symbol, side, order_type, order.size, now, "api")
            )
            if order.is_trigger:
                self._open[order.order_id] = order
                self._history_event(HistoryKind.TRIGGER_PLACED, order)
                fills: list[SimFill] = []
                self._match_triggers()
            else:
                self._history_event(HistoryKind.ORDER_PLACED, order)
                fills = self._execute(order, taker_limit=self._taker_limit(order, quote), fill_type="taker")
                if order.remaining > 0:
                    if order.order_type in ("mkt", "ioc"):
                        self._close(order, OrderState.CANCELLED, "ioc_remainder")
                    else:
                        self._open[order.order_id] = order
            self._record_view()
            return PlaceOutcome("placed", order.snapshot(), prior, tuple(fills), reduced)

    def _validate(
        self,
        spec: InstrumentSpec,
        side: str,
        order_type: str,
        size: Decimal,
        limit_price: Decimal | None,
        stop_price: Decimal | None,
        trigger_signal: str,
        cli_ord_id: str | None,
    ) -> str | None:
        if order_type not in ORDER_TYPES:
            return "invalidOrderType"
        if side not in ("buy", "sell"):
            return "invalidSide"
        if size <= 0 or not spec.is_size_step(size):
            return "invalidSize"
        for price in (limit_price, stop_price):
            if price is not None and (price <= 0 or not spec.is_on_tick(price)):
                return "invalidPrice"
        if order_type in ("lmt", "post", "ioc") and limit_price is None:
            raise SimulatorError("requiredArgumentMissing", f"orderType {order_type} needs limitPrice")
        if order_type in TRIGGER_TYPES and stop_price is None:
            raise SimulatorError("requiredArgumentMissing", f"orderType {order_type} needs stopPrice")
        if trigger_signal not in ("mark", "last", "index"):
            raise SimulatorError("invalidArgument", "triggerSignal must be one of mark, last, index")
        if cli_ord_id is not None:
            if len(cli_ord_id) > MAX_CLIENT_ORDER_ID:
                return "clientOrderIdTooBig"  # the spec's spelling (sendorder status enum)
            # Kraken's spec: "must be globally unique" -- a filled or cancelled order keeps its id for ever
            if cli_ord_id in self._cli_ids:
                return "clientOrderIdAlreadyExist"
        if spec.symbol in self._suspended:
            return "marketSuspended"
        if len(self._open) >= self.config.max_open_orders:
            return "tooManyOrders"
        return None

    def _reject(
        self,
        status: str,
        symbol: str,
        side: str,
        order_type: str,
        size: Decimal,
        limit_price: Decimal | None,
        cli_ord_id: str | None,
        reduce_only: bool,
    ) -> PlaceOutcome:
        """Record Kraken's `OrderRejected` history event; nothing else changes."""
        now = self.now()
        ghost = SimOrder(
            self._new_id(),
            cli_ord_id,
            symbol,
            side,
            order_type,
            size,
            limit_price,
            None,
            "last",
            reduce_only,
            now,
            now,
            state=OrderState.CANCELLED,
            closed_at=now,
        )
        self._history_event(HistoryKind.ORDER_REJECTED, ghost, reason=status)
        return PlaceOutcome(status, None, ghost)

    def reject_injected(
        self,
        status: str,
        *,
        symbol: str,
        side: str,
        order_type: str,
        size: Decimal,
        limit_price: Decimal | None = None,
        cli_ord_id: str | None = None,
        reduce_only: bool = False,
    ) -> PlaceOutcome:
        """The REJECT fault: the venue refuses with `status` whatever the order."""
        with self.lock:
            return self._reject(status, symbol, side, order_type, size, limit_price, cli_ord_id, reduce_only)

    def _reducible(self, symbol: str, side: str) -> Decimal:
        pos = self._positions.get(symbol)
        if pos is None:
            return Decimal(0)
        sign = 1 if side == "buy" else -1
        return abs(pos.size) if pos.size * sign < 0 else Decimal(0)

    def _beyond_max_position(self, order: SimOrder) -> bool:
        pos = self._positions.get(order.symbol)
        held = pos.size if pos else Decimal(0)
        return abs(held + order.sign * order.size) > self.instruments[order.symbol].max_position_size

    def _margin_ok(self, order: SimOrder) -> bool:
        spec = self.instruments[order.symbol]
        account = self.account()
        pos = self._positions.get(order.symbol)
        held = pos.size if pos else Decimal(0)
        increasing = order.size if held * order.sign >= 0 else max(Decimal(0), order.size - abs(held))
        if increasing == 0:
            return True
        price = order.limit_price or order.stop_price or self._mark[order.symbol]
        notional = increasing * price * spec.contract_size
        held_usd = abs(held) * self._mark[order.symbol] * spec.contract_size if held * order.sign > 0 else Decimal(0)
        lev = self._leverage.get(order.symbol)
        # the margin this order adds at the tier the position would reach, plus the taker fee
        needed = initial_margin(spec, held_usd + notional, lev) - initial_margin(spec, held_usd, lev)
        needed += notional * self.config.taker_fee
        return needed <= account.available_margin

    def _crosses(self, order: SimOrder, quote: Quote) -> bool:
        if order.limit_price is None:
            return True
        return quote.ask <= order.limit_price if order.side == "buy" else quote.bid >= order.limit_price

    def _taker_limit(self, order: SimOrder, quote: Quote) -> Decimal:
        if order.order_type == "mkt" or order.limit_price is None:
            spec = self.instruments[order.symbol]
            if order.side == "buy":
                return _floor_to(quote.ask * (1 + self.config.market_protection), spec.tick_size)
            return _ceil_to(quote.bid * (1 - self.config.market_protection), spec.tick_size)
        return order.limit_price

    def protected_price(self, symbol: str, side: str) -> Decimal:
        """The price-protection limit a market order gets (Kraken's `orderPriorExecution.limitPrice`)."""
        with self.lock:
            probe = SimOrder(
                "", None, symbol, side, "mkt", Decimal(0), None, None, "last", False, self.now(), self.now()
            )
            return self._taker_limit(probe, self.quote(symbol))

    # ------------------------------------------------------------------ execution
    def _execute(self, order: SimOrder, *, taker_limit: Decimal, fill_type: str) -> list[SimFill]:
        """Take liquidity from the simulated book, level by level, up to `taker_limit`."""
        quote = self.quote(order.symbol)
        step = self._level_step(order.symbol)
        fills: list[SimFill] = []
        thin = self._thin.get(order.symbol)
        for level in range(MAX_BOOK_LEVELS if thin is None else thin[1]):
            if order.remaining <= 0:
                break
            price = quote.ask + step * level if order.side == "buy" else quote.bid - step * level
            if price <= 0 or (price > taker_limit if order.side == "buy" else price < taker_limit):
                break
            qty = min(order.remaining, quote.level_size)
            if order.reduce_only:
                qty = min(qty, self._reducible(order.symbol, order.side))
                if qty <= 0:
                    break
            fills.append(self._fill(order, qty, price, fill_type))
        return fills

    def _fill(self, order: SimOrder, qty: Decimal, price: Decimal, fill_type: str) -> SimFill:
        now = self.now()
        spec = self.instruments[order.symbol]
        old = order.snapshot()
        fee_rate = self.config.maker_fee if fill_type == "maker" else self.config.taker_fee
        fee = qty * price * spec.contract_size * fee_rate
        old_balance = self._balance
        self._balance -= fee
        change = self._apply_to_position(order.symbol, qty * order.sign, price, now)
        self._seq += 1
        fill = SimFill(
            self._new_id(),
            order.order_id,
            order.cli_ord_id,
            order.symbol,
            order.side,
            qty,
            price,
            now,
            fill_type,
            self._seq,
        )
        if self._fills and (fill.time, fill.seq) <= (self._fills[-1].time, self._fills[-1].seq):
            self._fills_in_order = False  # never with a forward clock; `fills` then filters and sorts, as before
        self._fills.append(fill)
        self.account_log.trade(
            time=now,
            symbol=order.symbol,
            fill_id=fill.fill_id,
            liquidation=fill_type == "liquidation",
            fee=fee,
            change=change,
            old_balance=old_balance,
            new_balance=self._balance,
            price=price,
            mark=self._mark[order.symbol],
            funding_rate=self.funding_rate(order.symbol),
        )
        self._last_trade[order.symbol] = (now, qty)
        self.candles.record(order.symbol, "trade", to_ms(now), self._last[order.symbol], qty)
        order.filled += qty
        order.last_update = now
        self._history.append(
            HistoryEvent(
                self._new_id(), now, HistoryKind.EXECUTION, order.snapshot(), fill=fill, seq=self.history_end() + 1
            )
        )
        done = order.remaining <= 0
        self._history_event(HistoryKind.ORDER_UPDATED, order, old=old, reason="full_fill" if done else "partial_fill")
        if done:
            self._close(order, OrderState.FILLED, None)
        return fill

    def _apply_to_position(self, symbol: str, signed_qty: Decimal, price: Decimal, now: datetime) -> PositionChange:
        spec = self.instruments[symbol]
        pos = self._positions.get(symbol)
        if pos is None:
            self._positions[symbol] = SimPosition(symbol, signed_qty, price, now)
            return PositionChange(Decimal(0), signed_qty, None, price, None)
        old_size, old_entry = pos.size, pos.entry_price
        if pos.size * signed_qty > 0:
            total = abs(pos.size) + abs(signed_qty)
            pos.entry_price = (abs(pos.size) * pos.entry_price + abs(signed_qty) * price) / total
            pos.size += signed_qty
            pos.fill_time = now
            return PositionChange(old_size, pos.size, old_entry, pos.entry_price, None)
        closing = min(abs(signed_qty), abs(pos.size))
        direction = 1 if pos.size > 0 else -1
        realized = closing * (price - pos.entry_price) * direction * spec.contract_size
        self._balance += realized
        new_size = pos.size + signed_qty
        new_entry: Decimal | None = pos.entry_price
        if new_size == 0:
            del self._positions[symbol]
            new_entry = None
        elif new_size * pos.size < 0:
            self._positions[symbol] = SimPosition(symbol, new_size, price, now)
            new_entry = price
        else:
            pos.size = new_size
            pos.fill_time = now
        return PositionChange(old_size, new_size, old_entry, new_entry, realized)

    # ------------------------------------------------------------------ funding
    def funding_rate(self, symbol: str) -> Decimal:
        """The absolute hourly funding rate (USD per contract unit), as Kraken's ticker `fundingRate` is."""
        return self._mark[symbol] * self.config.funding_rate_hourly

    def _book_funding(self, now: datetime) -> None:
        """At each full hour every open position pays (long, positive rate) or receives funding, booked in the
        account log and taken from the balance."""
        for pos in list(self._positions.values()):
            rate = self.funding_rate(pos.symbol)
            amount = -pos.size * rate * self.instruments[pos.symbol].contract_size
            if amount == 0:
                continue
            old_balance = self._balance
            self._balance += amount
            self.account_log.funding(
                time=now,
                symbol=pos.symbol,
                amount=amount,
                rate=rate,
                mark=self._mark[pos.symbol],
                old_balance=old_balance,
                new_balance=self._balance,
            )

    def _close(self, order: SimOrder, state: OrderState, reason: str | None) -> None:
        now = self.now()
        order.state = state
        order.closed_at = now
        order.last_update = now
        self._open.pop(order.order_id, None)
        if state is OrderState.CANCELLED:
            kind = HistoryKind.TRIGGER_CANCELLED if order.is_trigger else HistoryKind.ORDER_CANCELLED
            self._history_event(kind, order, reason=reason or "cancelled_by_user")

    # ------------------------------------------------------------------ matching on price moves
    def _match_all(self) -> None:
        changed = self._match_triggers()
        changed |= self._match_resting()
        if changed:
            self._record_view()

    def _signal_price(self, order: SimOrder) -> Decimal:
        if order.trigger_signal == "mark":
            return self._mark[order.symbol]
        if order.trigger_signal == "index":
            return self._index[order.symbol]
        return self._last[order.symbol]

    def _is_triggered(self, order: SimOrder) -> bool:
        price = self._signal_price(order)
        assert order.stop_price is not None
        falling = (order.order_type == "stp") == (order.side == "sell")
        return price <= order.stop_price if falling else price >= order.stop_price

    def _match_triggers(self) -> bool:
        fired = [o for o in list(self._open.values()) if o.is_trigger and self._is_triggered(o)]
        for order in fired:
            self._history_event(HistoryKind.TRIGGER_ACTIVATED, order)
            self._open.pop(order.order_id, None)
            order.triggered = True
            order.order_type = "lmt" if order.limit_price is not None else "ioc"
            order.last_update = self.now()
            if order.reduce_only:
                allowed = self._reducible(order.symbol, order.side)
                if allowed <= 0:
                    self._close(order, OrderState.CANCELLED, "reduce_only_no_position")
                    continue
                order.size = order.filled + min(order.remaining, allowed)
            self._history_event(HistoryKind.ORDER_PLACED, order)
            quote = self.quote(order.symbol)
            limit = order.limit_price if order.limit_price is not None else self._taker_limit(order, quote)
            self._execute(order, taker_limit=limit, fill_type="taker")
            if order.remaining > 0:
                if order.order_type == "ioc":
                    self._close(order, OrderState.CANCELLED, "ioc_remainder")
                else:
                    self._open[order.order_id] = order
        return bool(fired)

    def _match_resting(self) -> bool:
        changed = False
        for order in list(self._open.values()):
            if order.is_trigger or order.limit_price is None:
                continue
            quote = self.quote(order.symbol)
            if not self._crosses(order, quote):
                continue
            qty = min(order.remaining, quote.level_size)
            if order.reduce_only:
                qty = min(qty, self._reducible(order.symbol, order.side))
                if qty <= 0:
                    self._close(order, OrderState.CANCELLED, "reduce_only_no_position")
                    changed = True
                    continue
            self._fill(order, qty, order.limit_price, "maker")
            changed = True
        return changed

    def _random_stop_cancels(self) -> None:
        for fault in self.faults.active:
            if fault.kind is not FaultKind.CANCEL_STOP:
                continue
            stops = [o for o in self._open.values() if o.is_trigger]
            if not stops:
                continue
            if self.faults.draw("ENGINE", "cancel_stop", self.now(), frozenset({FaultKind.CANCEL_STOP})):
                victim = stops[0]
                self._close(victim, OrderState.CANCELLED, "cancelled_by_admin")
                self._record_view()

    def _check_liquidation(self) -> None:
        if not self.config.liquidation or not self._positions:
            return
        account = self.account()
        if account.margin_equity >= account.maintenance_margin:
            return
        for order in list(self._open.values()):
            self._close(order, OrderState.CANCELLED, "liquidation")
        for pos in list(self._positions.values()):
            self._direct_fill(
                pos.symbol,
                "sell" if pos.size > 0 else "buy",
                abs(pos.size),
                self._mark[pos.symbol],
                "liquidation",
                "liquidation",
            )
        self._record_view()

    # ------------------------------------------------------------------ cancel / edit
    def cancel_order(self, order_id: str | None = None, cli_ord_id: str | None = None) -> tuple[str, SimOrder | None]:
        """Kraken's cancelStatus: `cancelled`, `filled` (already executed) or `notFound`."""
        with self.lock:
            order = self._find(order_id, cli_ord_id)
            if order is None:
                return "notFound", None
            if order.state is OrderState.FILLED:
                return "filled", order.snapshot()
            if order.state is OrderState.CANCELLED:
                return "notFound", order.snapshot()
            self._close(order, OrderState.CANCELLED, "cancelled_by_user")
            self._record_view()
            return "cancelled", order.snapshot()

    def _find(self, order_id: str | None, cli_ord_id: str | None) -> SimOrder | None:
        if order_id:
            return self._orders.get(order_id)
        if cli_ord_id:
            for order in self._open.values():
                if order.cli_ord_id == cli_ord_id:
                    return order
            matches = [o for o in self._orders.values() if o.cli_ord_id == cli_ord_id]
            return matches[-1] if matches else None
        return None

    def cancel_all(self, symbol: str | None = None) -> list[SimOrder]:
        with self.lock:
            if symbol is not None:
                self._spec(symbol)
            victims = [o for o in self._open.values() if symbol is None or o.symbol == symbol]
            for order in victims:
                self._close(order, OrderState.CANCELLED, "cancelled_by_user")
            if victims:
                self._record_view()
            return [o.snapshot() for o in victims]

    def fill_now(self, order_id: str) -> SimFill | None:
        """Scenario control: an open order's remainder fills at once (at its limit, else at mark), e.g. in
        the window between a cancel request leaving the bot and reaching the venue."""
        with self.lock:
            order = self._open.get(order_id)
            if order is None:
                return None
            if order.reduce_only and self._reducible(order.symbol, order.side) < order.remaining:
                return None
            self._open.pop(order_id)
            if order.is_trigger:
                self._history_event(HistoryKind.TRIGGER_ACTIVATED, order)
                order.triggered = True
                order.order_type = "lmt" if order.limit_price is not None else "ioc"
            price = order.limit_price if order.limit_price is not None else self._mark[order.symbol]
            fill = self._fill(order, order.remaining, price, "maker" if order.limit_price is not None else "taker")
            self._record_view()
            return fill

    def set_dead_man_switch(self, timeout_seconds: int) -> datetime | None:
        """Kraken's cancelallordersafter: cancel every open order unless called again within the timeout."""
        with self.lock:
            self._dead_man = self.now() + timedelta(seconds=timeout_seconds) if timeout_seconds > 0 else None
            return self._dead_man

    def cancel_silently(self, order_id: str) -> bool:
        """The venue drops an open order on its own (e.g. a stop). False if it was not open."""
        with self.lock:
            order = self._open.get(order_id)
            if order is None:
                return False
            self._close(order, OrderState.CANCELLED, "cancelled_by_admin")
            self._record_view()
            return True

    def edit_order(
        self,
        order_id: str | None,
        *,
        cli_ord_id: str | None = None,
        size: Decimal | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
        qty_mode: str = "RELATIVE",
    ) -> tuple[str, SimOrder | None, SimOrder | None]:
        """Kraken's editStatus: `edited`, `orderForEditNotFound`, `invalidSize`, `invalidPrice`, ...

        The rules of Kraken's spec (`futures-rest/trading/public.yml`, `/editorder`): `qtyMode` RELATIVE (the
        default) sets the *open* size to `size`, ABSOLUTE sets the total size including past fills; `stopPrice`
        is required when the order is a stop (and `limitPrice` too for a stop-limit): a missing one raises
        `SimulatorError("requiredArgumentMissing")`, which the server answers as an error envelope."""
        if qty_mode not in ("RELATIVE", "ABSOLUTE"):
            raise SimulatorError("invalidArgument", "qtyMode must be ABSOLUTE or RELATIVE")
        with self.lock:
            order = self._find(order_id, cli_ord_id)
            if order is None or not order.is_open:
                return "orderForEditNotFound", None, None
            if stop_price is not None and not order.is_trigger:
                return "orderForEditNotAStop", order.snapshot(), None
            if order.is_trigger and stop_price is None:
                raise SimulatorError("requiredArgumentMissing", "stopPrice is required when editing a stop order")
            if order.is_trigger and order.limit_price is not None and limit_price is None:
                raise SimulatorError("requiredArgumentMissing", "limitPrice is required when editing a stop-limit")
            spec = self.instruments[order.symbol]
            total = None if size is None else (size if qty_mode == "ABSOLUTE" else order.filled + size)
            bad_size = size is not None and (size <= 0 or not spec.is_size_step(size))
            if total is not None and (bad_size or total <= order.filled):
                return "invalidSize", order.snapshot(), None
            for price in (limit_price, stop_price):
                if price is not None and (price <= 0 or not spec.is_on_tick(price)):
                    return "invalidPrice", order.snapshot(), None
            old = order.snapshot()
            if total is not None:
                order.size = total
            if limit_price is not None:
                order.limit_price = limit_price
            if stop_price is not None:
                order.stop_price = stop_price
            order.last_update = self.now()
            if order.is_trigger:
                self._history_event(HistoryKind.TRIGGER_UPDATED, order, old=old, reason="edited_by_user")
                self._match_triggers()
            else:
                self._history_event(HistoryKind.ORDER_UPDATED, order, old=old, reason="edited_by_user")
                if order.limit_price is not None and self._crosses(order, self.quote(order.symbol)):
                    self._execute(order, taker_limit=order.limit_price, fill_type="takerAfterEdit")
            self._record_view()
            return "edited", old, order.snapshot()

    # ------------------------------------------------------------------ scenario control outside the API
    def open_position_direct(self, symbol: str, side: str, size: Decimal, price: Decimal | None = None) -> SimFill:
        """An 'orphan': a position opened outside the bot (by hand). Adds to any existing position."""
        with self.lock:
            spec = self._spec(symbol)
            order_side = {"long": "buy", "short": "sell"}.get(str(side), str(side))
            fill_price = spec.round_price(Decimal(price)) if price is not None else self._mark[symbol]
            fill = self._direct_fill(symbol, order_side, Decimal(size), fill_price, "taker", "manual")
            self._record_view()
            return fill

    def close_position_direct(self, symbol: str) -> SimFill | None:
        """A 'phantom' from the bot's view: the position is closed on the venue (at mark) behind its back."""
        with self.lock:
            self._spec(symbol)
            pos = self._positions.get(symbol)
            if pos is None:
                return None
            fill = self._direct_fill(
                symbol, "sell" if pos.size > 0 else "buy", abs(pos.size), self._mark[symbol], "taker", "manual"
            )
            self._record_view()
            return fill

    def _direct_fill(
        self, symbol: str, side: str, size: Decimal, price: Decimal, fill_type: str, source: str
    ) -> SimFill:
        if side not in ("buy", "sell") or size <= 0:
            raise ValueError(f"side must be buy/sell/long/short and size positive, got {side!r} {size}")
        now = self.now()
        order = SimOrder(self._new_id(), None, symbol, side, "mkt", size, None, None, "last", False, now, now)
        self._orders[order.order_id] = order
        self.order_log.append(AcceptedOrder(order.order_id, None, symbol, side, "mkt", size, now, source))
        self._history_event(HistoryKind.ORDER_PLACED, order)
        return self._fill(order, size, price, fill_type)

    def deposit(self, usd: Decimal) -> None:
        with self.lock:
            self._balance += Decimal(usd)

    @property
    def balance(self) -> Decimal:
        return self._balance


class _Timed(Protocol):
    @property
    def time(self) -> datetime: ...


_T = TypeVar("_T", bound=_Timed)


def _fill_time(fill: SimFill) -> datetime:
    return fill.time


def _drop_before(records: list[_T], cutoff: datetime, *, batch: int) -> int:
    """Drop the records (in time order) older than `cutoff` once at least `batch` of them are; returns how many."""
    if len(records) < batch or records[batch - 1].time >= cutoff:
        return 0
    old = bisect_left(records, cutoff, key=lambda r: r.time)
    del records[:old]
    return old


def _next_hour(when: datetime) -> datetime:
    return when.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def _floor_to(value: Decimal, step: Decimal) -> Decimal:
    return ((value / step).to_integral_value(rounding=ROUND_FLOOR) * step).quantize(step)


def _ceil_to(value: Decimal, step: Decimal) -> Decimal:
    return ((value / step).to_integral_value(rounding=ROUND_CEILING) * step).quantize(step)
