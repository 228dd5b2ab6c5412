"""The registry service: the only writer of positions, orders, fills and the transition log.

Every state change goes through `lifecycle.machine` (the spec), and is written together with its hash-chained
log row in one `IMMEDIATE` transaction, so a crash leaves either both or neither. Fills are idempotent by the
venue's fill id; the remaining quantity and the average entry price move in the same transaction as the
ledger row, so the audit's "stored quantity == ledger sum" holds after every commit.

Callers get frozen views, never peewee rows: nothing outside this module can mutate registry state.
"""

from __future__ import annotations

import functools
import inspect
import re
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence, Sized
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import peewee as pw

from lifecycle.clock import Clock, from_ms, to_ms
from lifecycle.errors import IllegalOrderTransition, LifecycleError, OverfillError, UnknownPosition
from lifecycle.events import Ev, emit
from lifecycle.machine import IMPORTED_STATE, INITIAL_STATE, Facts, next_state
from lifecycle.stops import within_limit
from lifecycle.symbols import canonical_key
from lifecycle.units import qty_to_units, units_to_qty
from lifecycle.values import PositionSide, RegistryPosition
from specs import lifecycle as spec
from store import chain, migrations
from store.db import bind, connect
from store.keys import ChainKey, Keyed, default_key_path, load_seal, prepare, verify_seal
from store.models import EntryDecision, Fill, Order, Position, db_proxy

POSITION_SIDES = spec.POSITION_SIDES
ORDER_SIDES = ("buy", "sell")
ORDER_TYPES = ("market", "limit", "stop", "take_profit")
PURPOSES = ("entry", "stop", "take_profit", "exit")
ORDER_STATUSES = spec.ORDER_STATUSES
UNRESOLVED_STATUSES = spec.ORDER_UNRESOLVED_STATUSES
MAX_CLIENT_ORDER_ID = 100
_COID_OK = re.compile(r"[A-Za-z0-9-]{1,100}")


class RegistryUsageError(LifecycleError, ValueError):
    """A caller passed a value the registry never stores (unknown side, purpose, status; non-positive qty)."""


class DuplicateActivePosition(LifecycleError):
    """A second non-terminal position for one canonical symbol key (invariant INV-01) was about to be created."""


class FillOnTerminalPosition(LifecycleError):
    """An entry fill for a position that is already terminal: the venue holds exposure the registry closed."""


class FillSideMismatch(LifecycleError):
    """A fill on the wrong side for its position and role (a buy exit of a long): it belongs to another position,
    or the position's side is wrong. Recording it would corrupt the ledger the audit trusts for direction."""


@dataclass(frozen=True)
class PositionView:
    uid: str
    symbol_key: str
    venue_symbol: str
    side: str
    state: str
    origin: str
    target_qty: Decimal
    remaining_qty: Decimal
    entry_price: Decimal | None
    stop_price: Decimal | None
    take_profit_price: Decimal | None
    sl_order_id: str | None
    tp_order_id: str | None
    created: datetime
    updated: datetime
    closed: datetime | None

    def held(self, began: datetime) -> RegistryPosition:
        """This position as the pure planners read it, dated by `began` (when it began against venue times: the
        daemon's `DaemonContext.created_of`, the tools' reading of the same rule)."""
        return RegistryPosition(
            uid=self.uid,
            symbol_key=self.symbol_key,
            side=PositionSide(self.side),
            state=self.state,
            remaining_qty=self.remaining_qty,
            created=began,
            sl_order_id=self.sl_order_id,
            tp_order_id=self.tp_order_id,
            entry_price=self.entry_price,
            stop_price=self.stop_price,
            take_profit_price=self.take_profit_price,
        )


@dataclass(frozen=True)
class OrderView:
    client_order_id: str
    venue_order_id: str | None
    position_uid: str
    purpose: str
    side: str
    order_type: str
    qty: Decimal
    limit_price: Decimal | None
    trigger_price: Decimal | None
    status: str
    reason: str | None
    created: datetime | None = None


def _text(d: Decimal | None) -> str | None:
    # Fixed-point text: `1E+2` and `100` must hash and compare the same in the ledger.
    return None if d is None else format(d, "f")


def _dec(s: str | None) -> Decimal | None:
    return None if s is None else Decimal(s)


def _check(value: str, allowed: Collection[str], what: str) -> str:
    v = str(value)
    if v not in allowed:
        raise RegistryUsageError(f"{what} {value!r} is not one of {', '.join(allowed)}")
    return v


def _positive_units(qty: Decimal, what: str) -> int:
    units = qty_to_units(Decimal(qty))
    if units <= 0:
        raise RegistryUsageError(f"{what} must be positive, got {qty}")
    return units


def _pk(row: pw.Model) -> int:
    # The models use peewee's implicit `id` primary key, which the bundled stub does not declare.
    return int(row.get_id())  # type: ignore[no-untyped-call]


def _position_view(p: Position) -> PositionView:
    # By attribute: a model made by `create` has no entry in `__data__` for a nullable column it was not given.
    return _position_view_of({name: getattr(p, name) for name in _POSITION_FIELDS})


def _position_view_of(v: Mapping[str, Any]) -> PositionView:
    """A view from a position's values by field name (a model's `__data__`, or a row zipped with its names)."""
    closed_ms = v["closed_ms"]
    return PositionView(
        uid=v["uid"],
        symbol_key=v["symbol_key"],
        venue_symbol=v["venue_symbol"],
        side=v["side"],
        state=v["state"],
        origin=v["origin"],
        target_qty=units_to_qty(v["target_qty_units"]),
        remaining_qty=units_to_qty(v["remaining_qty_units"]),
        entry_price=_dec(v["entry_price"]),
        stop_price=_dec(v["stop_price"]),
        take_profit_price=_dec(v["take_profit_price"]),
        sl_order_id=v["sl_order_id"],
        tp_order_id=v["tp_order_id"],
        created=from_ms(v["created_ms"]),
        updated=from_ms(v["updated_ms"]),
        closed=None if closed_ms is None else from_ms(closed_ms),
    )


def _order_view(o: Order, uid: str) -> OrderView:
    return OrderView(
        client_order_id=o.client_order_id,
        venue_order_id=o.venue_order_id,
        position_uid=uid,
        purpose=o.purpose,
        side=o.side,
        order_type=o.order_type,
        qty=units_to_qty(o.qty_units),
        limit_price=_dec(o.limit_price),
        trigger_price=_dec(o.trigger_price),
        status=o.status,
        reason=o.reason,
        created=from_ms(o.created_ms),
    )


_ORDER_FIELDS = (
    "position_id",
    "client_order_id",
    "venue_order_id",
    "purpose",
    "side",
    "order_type",
    "qty_units",
    "limit_price",
    "trigger_price",
    "status",
    "reason",
    "created_ms",
)
_ORDER_COLUMNS = ", ".join(_ORDER_FIELDS)
_ORDER_COLUMNS_O = ", ".join(f"o.{c}" for c in _ORDER_FIELDS)


_CLAIMED_ORDERS = (
    'SELECT o.client_order_id, o.venue_order_id FROM "order" o JOIN "position" p ON p.id = o.position_id'
    " WHERE p.uid != ? AND o.{column} IN ({marks})"
)
_CLAIMED_LINKS = (
    'SELECT sl_order_id, tp_order_id FROM "position"'
    " WHERE uid != ? AND (sl_order_id IN ({marks}) OR tp_order_id IN ({marks}))"
)


def _marks(values: Sized) -> str:
    return ", ".join("?" * len(values))


def _order_view_of_row(row: Sequence[Any], names: dict[int, str]) -> OrderView:
    """An OrderView from one row of `SELECT {_ORDER_COLUMNS}`; `names` maps position ids to uids."""
    pid, coid, vid, purpose, side, order_type, qty_units, limit_price, trigger_price, status, reason, created_ms = row
    return OrderView(
        client_order_id=coid,
        venue_order_id=vid,
        position_uid=names[int(pid)],
        purpose=purpose,
        side=side,
        order_type=order_type,
        qty=units_to_qty(int(qty_units)),
        limit_price=_dec(limit_price),
        trigger_price=_dec(trigger_price),
        status=status,
        reason=reason,
        created=from_ms(int(created_ms)),
    )


def _one_sql(model: type[pw.Model]) -> tuple[tuple[str, ...], str]:
    fields = model._meta.sorted_fields
    columns = ", ".join(f'"{f.column_name}"' for f in fields)
    sql = f'SELECT {columns} FROM "{model._meta.table_name}" WHERE {{condition}} LIMIT 1'  # noqa: S608 - schema names
    return tuple(f.name for f in fields), sql


def _db_value(field: pw.Field, value: Any) -> Any:
    """The value as the ORM would bind it (a foreign key's id, a boolean as 0/1)."""
    return field.db_value(value)  # type: ignore[no-untyped-call]


def _written_fields(model: type[pw.Model]) -> tuple[pw.Field, ...]:
    """Every column a write sets: all but the primary key (`id`, autoincrement, in every registry table)."""
    return tuple(f for f in model._meta.sorted_fields if f is not model._meta.primary_key)


def _save_sql(model: type[pw.Model]) -> tuple[tuple[pw.Field, ...], str]:
    """What `Model.save()` writes for a row with a primary key, as one fixed statement."""
    fields = _written_fields(model)
    assigns = ", ".join(f'"{f.column_name}" = ?' for f in fields)
    return fields, f'UPDATE "{model._meta.table_name}" SET {assigns} WHERE "id" = ?'  # noqa: S608 - schema names


def _insert_sql(model: type[pw.Model]) -> tuple[tuple[pw.Field, ...], str]:
    """What `Model.create()` writes, as one fixed statement."""
    fields = _written_fields(model)
    columns = ", ".join(f'"{f.column_name}"' for f in fields)
    marks = ", ".join("?" for _ in fields)
    return fields, f'INSERT INTO "{model._meta.table_name}" ({columns}) VALUES ({marks})'  # noqa: S608


# Fixed statements instead of the ORM's query building, which was most of the CPU of a registry write (`save()`
# and `create()` built their SQL anew each call; bench_registry, bench_backtest).
_ONE_SQL = {m.__name__: _one_sql(m) for m in (Position, Order)}
_SAVE_SQL = {m.__name__: _save_sql(m) for m in (Position, Order)}
_INSERT_SQL = {m.__name__: _insert_sql(m) for m in (Position, Order, EntryDecision)}
_POSITION_FIELDS = _ONE_SQL["Position"][0]
_ALL_SQL = {name: (names, sql.removesuffix(" WHERE {condition} LIMIT 1")) for name, (names, sql) in _ONE_SQL.items()}
_M = TypeVar("_M", bound=pw.Model)
_R = TypeVar("_R")


def _on_own_database(cls: type[_R]) -> type[_R]:
    """Make every public method of `cls` run with the models pointed at the instance's own database.

    peewee binds the models process-wide: with two registries open in one process (a tool comparing two files,
    tests), the models would serve whichever was opened last, and the other one's calls would silently read and
    write that file. One pointer check per call; with one registry per process (the daemon) it never rebinds.
    Two registries used from two threads at the same moment remain unsupported."""
    for name, member in list(vars(cls).items()):
        if name.startswith("_") or not inspect.isfunction(member):
            continue
        setattr(cls, name, _bound_call(member))
    return cls


def _bound_call(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: Registry, *args: Any, **kwargs: Any) -> Any:
        if db_proxy.obj is not self.db:
            bind(self.db)
        return method(self, *args, **kwargs)

    return call


@_on_own_database
class Registry:
    """The position registry over one SQLite database. Methods take keyword arguments after the uid."""

    def __init__(self, db: pw.SqliteDatabase, clock: Clock, key: ChainKey | None = None) -> None:
        self.db = db
        self.clock = clock
        self.key = key
        self._secret = None if key is None else key.secret
        self.key_detail = ""
        """What the key step did (`prepare_key=True`): one line for the startup log, never the key."""
        self._memos: dict[tuple[object, ...], tuple[tuple[object, ...], Any]] = {}
        self._memo_stamp: tuple[object, ...] = ()

    @classmethod
    def open(
        cls,
        path: Path | str,
        clock: Clock,
        *,
        create: bool = True,
        key_file: Path | None = None,
        prepare_key: bool = False,
    ) -> Registry:
        """Connect, bring the schema up to date (refusing a newer one) and bind the models to the database.

        Keys (`store.keys`): a sealed registry is opened with its key from `key_file` (default `<path>.key`), or
        not at all (KeyFileError, a RegistryOpenError with one line naming where the key is expected): writing
        unkeyed rows into a keyed chain would break it. `prepare_key` (the daemon's startup): create the key
        and seal the registry when it is not sealed yet. Otherwise an unsealed registry stays unkeyed."""
        db = connect(path, create=create)
        try:
            now_ms = to_ms(clock.now())
            migrations.ensure_schema(db, now_ms=now_ms)
            key_path = key_file or default_key_path(path)
            key: ChainKey | None = None
            detail = ""
            if prepare_key:
                key, detail = prepare(db, path, key_path, now_ms)
            elif load_seal(db):
                key, detail = prepare(db, path, key_path, now_ms)  # sealed: reads and checks, never creates
        except BaseException:
            db.close()
            raise
        bind(db)
        registry = cls(db, clock, key)
        registry.key_detail = detail
        return registry

    def keyed(self) -> Keyed | None:
        """The key and the verified seal, for the audit (None for an unkeyed registry)."""
        return None if self.key is None else verify_seal(self.db, self.key)

    def batch(self) -> AbstractContextManager[object]:
        """One transaction around several writes; each write's own transaction nests in it as a savepoint. A process
        that dies inside leaves none of the batch's rows, so a row that must not exist without another never does
        (the booked part of a split fill without its unowned rest: both carry one fill id, and a fill found judged
        is never judged again)."""
        return self.db.atomic("IMMEDIATE")

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------------------------------------ internals

    def _now_ms(self) -> int:
        return to_ms(self.clock.now())

    def _row(self, uid: str) -> Position:
        row = self._one(Position, "uid = ?", uid)
        if row is None:
            raise UnknownPosition(uid)
        return row

    def _row_by_id(self, position_id: int) -> Position:
        row = self._one(Position, "id = ?", position_id)
        if row is None:
            raise UnknownPosition(f"#{position_id}")
        return row

    def _one(self, model: type[_M], condition: str, value: object) -> _M | None:
        """One row as a model instance, the same as `model.get_or_none(...)`: a fixed statement and the instance
        built from the tuple (every fill and transition reads two such rows; the ORM's query building and
        `Model.raw`'s column resolution were most of their CPU, bench_registry)."""
        names, sql = _ONE_SQL[model.__name__]
        found = self._sql(sql.format(condition=condition), (value,)).fetchone()
        return None if found is None else model(**dict(zip(names, found, strict=True)))

    def _save(self, row: pw.Model) -> None:
        """`row.save()` (every column written back by its primary key) as one fixed statement."""
        fields, sql = _SAVE_SQL[type(row).__name__]
        data = row.__data__
        self._sql(sql, (*(_db_value(f, data.get(f.name)) for f in fields), _pk(row)))

    def _insert(self, model: type[_M], **values: Any) -> _M:
        """`model.create(**values)` as one fixed statement: the new row, with its id."""
        row = model(**values)
        fields, sql = _INSERT_SQL[model.__name__]
        data = row.__data__
        for f in fields:  # every column present, as stored: a later `_save` of this row writes back exactly these
            data.setdefault(f.name, None)
        cursor = self._sql(sql, tuple(_db_value(f, data.get(f.name)) for f in fields))
        data["id"] = cursor.lastrowid  # every registry table's key is peewee's implicit autoincrement `id`
        return row

    def _facts(self, row: Position) -> Facts:
        # raw SQL on the hot path: peewee's query building was most of a transition's CPU (bench_registry)
        (entries,) = self._sql("SELECT count(*) FROM fill WHERE position_id = ? AND is_entry", (_pk(row),)).fetchone()
        return Facts(
            fills_count=entries,
            has_stop=bool(row.sl_order_id and row.sl_order_id.strip()),
            remaining_units=row.remaining_qty_units,
        )

    def _log(self, row: Position, event: str, source: str | None, target: str, cause: str, at_ms: int) -> None:
        prev = self._last_hash("transition")
        row_hash = chain.transition_hash(prev, _pk(row), event, source, target, cause, at_ms, key=self._secret)
        self._sql(
            'INSERT INTO "transition" (position_id, event, source, target, cause, at_ms, prev_hash, row_hash)'
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (_pk(row), event, source, target, cause, at_ms, prev, row_hash),
        )

    def _read_stamp(self) -> tuple[object, ...] | None:
        """What a remembered read is valid for: this thread's connection, the rows it has changed so far (SQLite's
        `total_changes`: every insert, update and delete) and the commits of every other connection (`PRAGMA
        data_version`). Equal stamps: nothing anyone wrote since could change the answer. None inside a
        transaction: what it reads may be rolled back without moving either counter, so it is never remembered."""
        conn = self.db.connection()  # type: ignore[no-untyped-call]
        if conn.in_transaction:
            return None
        (version,) = conn.execute("PRAGMA data_version").fetchone()
        return (conn, conn.total_changes, version)

    def _memo(self, key: tuple[object, ...], compute: Callable[[], _R]) -> _R:
        """`compute()`, or what it returned for `key` when the database has not changed since (`_read_stamp`).
        The jobs of one cycle read the same active positions and orders many times while nothing is written
        (a backtest bar, a quiet daemon cycle); each read cost a query and a view per row. Callers must return
        copies of mutable containers: the views themselves are frozen."""
        stamp = self._read_stamp()
        if stamp is None:
            return compute()
        if stamp != self._memo_stamp or len(self._memos) > 256:
            self._memos = {}  # rebound, not cleared: another thread may be reading the old one
            self._memo_stamp = stamp
        memos = self._memos
        found = memos.get(key)
        if found is not None and found[0] == stamp:
            value: _R = found[1]
            return value
        value = compute()
        memos[key] = (stamp, value)
        return value

    def _sql(self, sql: str, params: tuple[object, ...] = ()) -> Any:
        return self.db.execute_sql(sql, params)  # type: ignore[no-untyped-call]

    def _last_hash(self, table: str) -> str:
        """The chain's last stored hash (GENESIS when empty): one indexed lookup of the last rowid."""
        found = self._sql(f'SELECT row_hash FROM "{table}" ORDER BY id DESC LIMIT 1').fetchone()  # noqa: S608
        return chain.GENESIS if found is None else str(found[0])

    def _append_fill(
        self,
        row: Position,
        *,
        fill_id: str,
        client_order_id: str | None,
        venue_order_id: str | None,
        side: str,
        is_entry: bool,
        units: int,
        price: str,
        fill_ms: int,
        prev: str | None = None,
    ) -> bool:
        """Append one chained ledger row; `prev`: the chain's last hash when the caller has just read it."""
        if prev is None:
            prev = self._last_hash("fill")
        row_hash = chain.fill_hash(prev, fill_id, _pk(row), side, is_entry, units, price, fill_ms, key=self._secret)
        cursor = self._sql(
            "INSERT OR IGNORE INTO fill (fill_id, position_id, client_order_id, venue_order_id, side, is_entry,"
            " qty_units, price, fill_ms, recorded_ms, prev_hash, row_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (fill_id, _pk(row), client_order_id, venue_order_id, side, int(is_entry), units, price, fill_ms,
             self._now_ms(), prev, row_hash),
        )  # fmt: skip
        return bool(cursor.rowcount)

    def _average_entry(self, row: Position) -> str | None:
        # Recomputed from the whole ledger so that the result does not depend on the order fills arrived in.
        fills = self._sql("SELECT qty_units, price FROM fill WHERE position_id = ? AND is_entry", (_pk(row),))
        total = 0
        notional = Decimal(0)
        for qty_units, price in fills.fetchall():
            total += qty_units
            notional += Decimal(qty_units) * Decimal(price)
        if total == 0:
            return None
        return _text((notional / Decimal(total)).normalize())

    def _emit(self, row: Position, event: str, source: str | None, target: str, cause: str) -> None:
        emit(
            Ev.POSITION_TRANSITION,
            position=row.uid,
            symbol=row.symbol_key,
            event=event,
            source=source or "-",
            target=target,
            cause=cause,
        )

    def _create(
        self,
        *,
        symbol: str,
        side: str,
        origin: str,
        state: str,
        event: str,
        target_units: int,
        stop_price: Decimal | None,
        take_profit_price: Decimal | None,
        cause: str,
    ) -> Position:
        key = canonical_key(symbol)
        side = _check(side, POSITION_SIDES, "position side")
        active = sorted(spec.ACTIVE_STATES)
        existing = self._sql(
            f'SELECT uid, state FROM "position" WHERE symbol_key = ? AND state IN ({_marks(active)}) LIMIT 1',  # noqa: S608
            (key, *active),
        ).fetchone()
        if existing is not None:
            raise DuplicateActivePosition(
                f"{symbol!r} (key {key}) already has active position {existing[0]} in {existing[1]}; one "
                "active position per symbol. Close or resolve it first (nothing was recorded)"
            )
        now = self._now_ms()
        row = self._insert(
            Position,
            uid=uuid.uuid4().hex[:16],
            symbol_key=key,
            venue_symbol=symbol,
            side=side,
            state=state,
            origin=origin,
            target_qty_units=target_units,
            remaining_qty_units=0,
            stop_price=_text(stop_price),
            take_profit_price=_text(take_profit_price),
            created_ms=now,
            updated_ms=now,
        )
        self._log(row, event, None, state, cause, now)
        return row

    # ---------------------------------------------------------------------------------------- positions

    def open_intent(
        self,
        *,
        symbol: str,
        side: str,
        target_qty: Decimal,
        stop_price: Decimal | None,
        take_profit_price: Decimal | None = None,
        cause: str,
        decision_price: Decimal | None = None,
    ) -> PositionView:
        """Record a strategy's decision to enter, before any order exists (state PENDING_ENTRY). `decision_price`,
        the price the strategy sized its risk at, is kept beside it (`entry_decision`) to measure slippage from."""
        units = _positive_units(target_qty, "target quantity")
        if decision_price is not None and not (decision_price.is_finite() and decision_price > 0):
            raise RegistryUsageError(f"decision price must be a positive number, got {decision_price}")
        with self.db.atomic("IMMEDIATE"):
            row = self._create(
                symbol=symbol,
                side=side,
                origin="strategy",
                state=INITIAL_STATE,
                event="open_intent",
                target_units=units,
                stop_price=stop_price,
                take_profit_price=take_profit_price,
                cause=cause,
            )
            if decision_price is not None:
                self._insert(EntryDecision, position=_pk(row), decision_price=str(decision_price), at_ms=row.created_ms)
        self._emit(row, "open_intent", None, INITIAL_STATE, cause)
        return _position_view(row)

    def import_position(
        self,
        *,
        symbol: str,
        side: str,
        qty: Decimal,
        entry_price: Decimal,
        cause: str,
        fill_id: str | None = None,
        fill_time: datetime | None = None,
    ) -> PositionView:
        """Adopt a venue position we did not track (state OPEN), with one synthetic entry fill explaining its size.

        `fill_id` defaults to `import:<uid>`; pass a stable id (e.g. `import:<venue>:<symbol>:<ts>`) to make a
        retried import idempotent at the ledger.
        """
        units = _positive_units(qty, "imported quantity")
        side = _check(side, POSITION_SIDES, "position side")
        with self.db.atomic("IMMEDIATE"):
            row = self._create(
                symbol=symbol,
                side=side,
                origin="imported",
                state=IMPORTED_STATE,
                event="import",
                target_units=units,
                stop_price=None,
                take_profit_price=None,
                cause=cause,
            )
            price = _text(Decimal(entry_price))
            assert price is not None
            fid = fill_id or f"import:{row.uid}"
            if not self._append_fill(
                row,
                fill_id=fid,
                client_order_id=None,
                venue_order_id=None,
                side="buy" if side == "long" else "sell",
                is_entry=True,
                units=units,
                price=price,
                fill_ms=row.created_ms if fill_time is None else to_ms(fill_time),
            ):
                raise LifecycleError(f"fill id {fid!r} is already in the ledger; an import needs a fresh fill id")
            row.remaining_qty_units = units
            row.entry_price = price
            self._save(row)
        self._emit(row, "import", None, IMPORTED_STATE, cause)
        return _position_view(row)

    def apply(self, uid: str, event: spec.Event, *, cause: str) -> PositionView:
        """Take `event` on position `uid` if the spec allows it for the position's facts; log it in the same commit.

        Raises IllegalTransition / GuardFailed (nothing written) or UnknownPosition.
        """
        with self.db.atomic("IMMEDIATE"):
            row = self._row(uid)
            source = row.state
            target = next_state(source, event, self._facts(row), uid=uid)
            now = self._now_ms()
            row.state = target
            row.updated_ms = now
            row.closed_ms = now if target in spec.TERMINAL_STATES else None
            self._sql(
                'UPDATE "position" SET state = ?, updated_ms = ?, closed_ms = ? WHERE id = ?',
                (row.state, row.updated_ms, row.closed_ms, _pk(row)),
            )
            self._log(row, event, source, target, cause, now)
        self._emit(row, event, source, target, cause)
        return _position_view(row)

    def close_external(self, uid: str, *, cause: str) -> PositionView:
        """Close an exposed position the venue no longer holds (evidence: absent there).

        Writes a balancing exit fill (`external_close:<uid>`, at the average entry price) for the remaining
        quantity, so the ledger still explains the quantity, then `position_closed`, all in one transaction.
        """
        with self.db.atomic("IMMEDIATE"):
            row = self._row(uid)
            if row.remaining_qty_units > 0:
                self._append_fill(
                    row,
                    fill_id=f"external_close:{row.uid}",
                    client_order_id=None,
                    venue_order_id=None,
                    side="sell" if row.side == "long" else "buy",
                    is_entry=False,
                    units=row.remaining_qty_units,
                    price=row.entry_price or "0",
                    fill_ms=self._now_ms(),
                )
                row.remaining_qty_units = 0
                self._save(row)
            view = self.apply(uid, spec.Event.POSITION_CLOSED, cause=cause)
        return view

    def set_protection(
        self, uid: str, *, sl_order_id: str | None = None, tp_order_id: str | None = None, clear: bool = False
    ) -> PositionView:
        """Record the venue ids of the live stop-loss / take-profit. With `clear`, None values erase them."""
        with self.db.atomic("IMMEDIATE"):
            row = self._row(uid)
            for name, value in (("sl_order_id", sl_order_id), ("tp_order_id", tp_order_id)):
                if value is not None and not value.strip():
                    raise RegistryUsageError(f"{name} must be a venue order id, got {value!r}; use clear=True")
            if row.state == spec.State.PROTECTED and clear and not sl_order_id:
                # INV-07: a PROTECTED position always names its stop; losing it is a transition, not an edit
                raise RegistryUsageError(
                    f"position {uid} is PROTECTED: apply protection_lost before clearing its stop-loss order id"
                )
            if sl_order_id is not None or clear:
                row.sl_order_id = sl_order_id
            if tp_order_id is not None or clear:
                row.tp_order_id = tp_order_id
            row.updated_ms = self._now_ms()
            self._save(row)
        return _position_view(row)

    def update_prices(
        self, uid: str, *, stop_price: Decimal | None = None, take_profit_price: Decimal | None = None
    ) -> PositionView:
        with self.db.atomic("IMMEDIATE"):
            row = self._row(uid)
            if stop_price is not None:
                row.stop_price = _text(stop_price)
            if take_profit_price is not None:
                row.take_profit_price = _text(take_profit_price)
            row.updated_ms = self._now_ms()
            self._save(row)
        return _position_view(row)

    def get(self, uid: str) -> PositionView:
        return self._memo(("get", uid), lambda: _position_view(self._row(uid)))

    def positions(self, states: Iterable[str] | None = None) -> list[PositionView]:
        # Raw SQL (as `_row`): every job asks for the active positions each cycle, and the ORM spent more time
        # building this statement than SQLite spent running it. Remembered until the next write (`_memo`).
        wanted = None if states is None else tuple(sorted(set(states)))
        return list(self._memo(("positions", wanted), lambda: self._positions(wanted)))

    def _positions(self, wanted: tuple[str, ...] | None) -> list[PositionView]:
        names, select = _ALL_SQL["Position"]
        if wanted is None:
            rows = self._sql(f"{select} ORDER BY created_ms, id").fetchall()
        else:
            rows = self._sql(f"{select} WHERE state IN ({_marks(wanted)}) ORDER BY created_ms, id", wanted)
        return [_position_view_of(dict(zip(names, row, strict=True))) for row in rows]

    def active_positions(self) -> list[PositionView]:
        return self.positions(spec.ACTIVE_STATES)

    def active_by_symbol(self, symbol_key: str) -> list[PositionView]:
        names, select = _ALL_SQL["Position"]
        active = sorted(spec.ACTIVE_STATES)
        rows = self._sql(
            f"{select} WHERE symbol_key = ? AND state IN ({_marks(active)}) ORDER BY created_ms, id",
            (canonical_key(symbol_key), *active),
        )
        return [_position_view_of(dict(zip(names, row, strict=True))) for row in rows]

    # ------------------------------------------------------------------------------------------- orders

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
    ) -> OrderView:
        """Record an order before it is sent, with a deterministic client order id `<uid>-<purpose>-<n>`."""
        purpose = _check(purpose, PURPOSES, "order purpose")
        side = _check(side, ORDER_SIDES, "order side")
        order_type = _check(order_type, ORDER_TYPES, "order type")
        units = _positive_units(qty, "order quantity")
        with self.db.atomic("IMMEDIATE"):
            row = self._row(uid)
            (count,) = self._sql(
                'SELECT count(*) FROM "order" WHERE position_id = ? AND purpose = ?', (_pk(row), purpose)
            ).fetchone()
            n = count + 1
            coid = f"{row.uid}-{purpose.replace('_', '')}-{n}"
            if not _COID_OK.fullmatch(coid):
                raise RegistryUsageError(f"client order id {coid!r} is not 1-100 characters of [A-Za-z0-9-]")
            now = self._now_ms()
            order = self._insert(
                Order,
                position=_pk(row),
                client_order_id=coid,
                purpose=purpose,
                side=side,
                order_type=order_type,
                qty_units=units,
                limit_price=_text(limit_price),
                trigger_price=_text(trigger_price),
                status="intent",
                created_ms=now,
                updated_ms=now,
            )
        return _order_view(order, row.uid)

    def mark_order(
        self, client_order_id: str, *, status: str, venue_order_id: str | None = None, reason: str | None = None
    ) -> OrderView:
        status = _check(status, ORDER_STATUSES, "order status")
        with self.db.atomic("IMMEDIATE"):
            order = self._order(client_order_id)
            if not spec.order_edge_legal(order.status, status):
                raise IllegalOrderTransition(
                    f"order {client_order_id} cannot go from {order.status} to {status} (specs.lifecycle"
                    ".ORDER_TRANSITIONS); nothing written"
                )
            order.status = status
            if venue_order_id is not None:
                order.venue_order_id = venue_order_id
            if reason is not None:
                order.reason = reason
            order.updated_ms = self._now_ms()
            self._save(order)
            # by the foreign key's id: `order.position` would load the whole position through the ORM
            (uid,) = self._sql('SELECT uid FROM "position" WHERE id = ?', (order.position_id,)).fetchone()  # type: ignore[attr-defined]
        return _order_view(order, str(uid))

    def _order(self, client_order_id: str) -> Order:
        order = self._one(Order, "client_order_id = ?", client_order_id)
        if order is None:
            raise LifecycleError(f"no order with client order id {client_order_id!r} in the registry")
        return order

    def _order_views(self, condition: str, params: Sequence[object]) -> list[OrderView]:
        """Orders matching a SQL condition on `"order" o` (placeholders only, values in `params`), oldest first.
        Raw SQL: building the same statement through the ORM cost about 0.5 ms a call, more than running it.
        Remembered until the next write (`_memo`)."""
        return list(self._memo(("orders", condition, tuple(params)), lambda: self._query_orders(condition, params)))

    def _query_orders(self, condition: str, params: Sequence[object]) -> list[OrderView]:
        query = (
            f'SELECT {_ORDER_COLUMNS_O}, p.uid FROM "order" o JOIN "position" p ON p.id = o.position_id'  # noqa: S608
            f" WHERE {condition} ORDER BY o.created_ms, o.id"  # code only: every value is in `params`
        )
        return [_order_view_of_row(row[:-1], {int(row[0]): str(row[-1])}) for row in self._sql(query, tuple(params))]

    def orders(self, uid: str) -> list[OrderView]:
        return list(self._memo(("orders_of_uid", uid), lambda: self._orders_of_uid(uid)))

    def _orders_of_uid(self, uid: str) -> list[OrderView]:
        row = self._row(uid)
        return self._orders_of_ids({_pk(row): row.uid}).get(row.uid, [])

    def orders_of(self, uids: Collection[str]) -> dict[str, list[OrderView]]:
        """uid -> its orders, oldest first, for many positions in one query per 500 (a reconcile cycle reads the
        orders of every active position: one query each cost more than the rest of the cycle). A uid without
        orders maps to an empty list; an unknown uid is left out."""
        if not uids:
            return {}
        wanted = tuple(sorted(set(uids)))
        found = self._memo(("orders_of", wanted), lambda: self._orders_of_uids(wanted))
        return {uid: list(views) for uid, views in found.items()}

    def _orders_of_uids(self, uids: Sequence[str]) -> dict[str, list[OrderView]]:
        names: dict[int, str] = {}
        for chunk in _chunks(uids):
            query = f'SELECT id, uid FROM "position" WHERE uid IN ({_marks(chunk)})'  # noqa: S608 - placeholders only
            for pk, uid in self._sql(query, tuple(chunk)):
                names[int(pk)] = str(uid)
        found = self._orders_of_ids(names)
        return {uid: found.get(uid, []) for uid in names.values()}

    def _orders_of_ids(self, names: dict[int, str]) -> dict[str, list[OrderView]]:
        out: dict[str, list[OrderView]] = {}
        ids = sorted(names)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            query = (
                f'SELECT {_ORDER_COLUMNS} FROM "order" WHERE position_id IN ({_marks(chunk)})'  # noqa: S608 - placeholders
                " ORDER BY created_ms, id"
            )
            rows = self._sql(query, tuple(chunk))
            for row in rows:
                view = _order_view_of_row(row, names)
                out.setdefault(view.position_uid, []).append(view)
        return out

    def orders_for(self, uid: str) -> list[OrderView]:
        """The scheduler's spelling of `orders(uid)`."""
        return self.orders(uid)

    def order_by_client_id(self, client_order_id: str) -> OrderView | None:
        views = self._order_views("o.client_order_id = ?", (client_order_id,))
        return views[0] if views else None

    def orders_matching(self, client_order_ids: Collection[str], venue_order_ids: Collection[str]) -> list[OrderView]:
        """Our orders with one of these client or venue order ids (of any position, terminal ones included): what
        fill attribution needs for one batch, looked up by index instead of loading every order ever recorded."""
        views: list[OrderView] = []
        for chunk in _chunks(sorted(set(client_order_ids))):
            views.extend(self._order_views(f"o.client_order_id IN ({_marks(chunk)})", chunk))
        for chunk in _chunks(sorted(set(venue_order_ids))):
            views.extend(self._order_views(f"o.venue_order_id IN ({_marks(chunk)})", chunk))
        return list({v.client_order_id: v for v in views}.values())

    def order_ids_claimed(self, ids: Collection[str], *, exclude_uid: str) -> set[str]:
        """Those of `ids` (venue or client order ids, e.g. of the orders live on the venue now) that the registry
        records for a position other than `exclude_uid`, open or closed: as an order row, or as a position's
        stop or take-profit id. What the protection planner must never relink to `exclude_uid`. Indexed lookups of
        the given ids only, so the cost does not grow with history. Remembered until the next write (`_memo`)."""
        wanted = tuple(sorted(set(ids)))
        return set(self._memo(("claimed", exclude_uid, wanted), lambda: self._ids_claimed(wanted, exclude_uid)))

    def _ids_claimed(self, wanted: Sequence[str], exclude_uid: str) -> set[str]:
        claimed: set[str] = set()
        for chunk in _chunks(wanted):
            marks = _marks(chunk)
            for column in ("client_order_id", "venue_order_id"):
                query = _CLAIMED_ORDERS.format(column=column, marks=marks)
                for coid, vid in self._sql(query, (exclude_uid, *chunk)).fetchall():
                    claimed.update(i for i in (coid, vid) if i)
            query = _CLAIMED_LINKS.format(marks=marks)
            for sl, tp in self._sql(query, (exclude_uid, *chunk, *chunk)).fetchall():
                claimed.update(i for i in (sl, tp) if i)
        return claimed & set(wanted)

    def position_states(self, uids: Collection[str]) -> dict[str, str]:
        wanted = tuple(sorted(set(uids)))
        return dict(self._memo(("states", wanted), lambda: self._position_states(wanted)))

    def _position_states(self, uids: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for chunk in _chunks(uids):
            query = f'SELECT uid, state FROM "position" WHERE uid IN ({_marks(chunk)})'  # noqa: S608 - placeholders
            out.update((str(uid), str(state)) for uid, state in self._sql(query, tuple(chunk)))
        return out

    def unresolved_orders(self) -> list[OrderView]:
        statuses = sorted(UNRESOLVED_STATUSES)
        return self._order_views(f"o.status IN ({_marks(statuses)})", statuses)

    # -------------------------------------------------------------------------------------------- fills

    def record_fill(
        self,
        *,
        fill_id: str,
        client_order_id: str,
        side: str,
        qty: Decimal,
        price: Decimal,
        fill_time: datetime,
        venue_order_id: str | None = None,
    ) -> bool:
        """Append one venue fill to the ledger; False (and nothing changed) when its fill id is already there.

        Entry vs exit comes from the order's purpose. An exit fill larger than the remaining quantity raises
        OverfillError and records nothing (the caller retries it once the entry fills it follows are in).
        """
        with self.db.atomic("IMMEDIATE"):
            order = self._order(client_order_id)
            return self._record(
                self._row_by_id(order.position_id),  # type: ignore[attr-defined]  # peewee's FK id column
                fill_id=fill_id,
                client_order_id=client_order_id,
                venue_order_id=venue_order_id or order.venue_order_id,
                side=side,
                is_entry=order.purpose == "entry",
                qty=qty,
                price=price,
                fill_time=fill_time,
            )

    def record_venue_fill(
        self, uid: str, fill: Any, *, is_entry: bool, stop_limit: tuple[Decimal, Decimal] | None = None
    ) -> bool:
        """Record an `lifecycle.values.VenueFill` for position `uid` (the scheduler's call shape).

        `stop_limit` (`risk.max_stop_distance_pct`, the instrument's tick): an entry-side fill of an exposed position
        (a hand's add) moves the average entry; a recorded stop it leaves beyond the limit is brought to the limit
        (`lifecycle.stops.within_limit`) in the same transaction, so the registry never holds a stop its audit
        rejects, not even until the next protect cycle or across a crash: that tightens it, and the planner then
        tightens the live stop on the venue to the same level. A stop the add leaves on the profit side of the new
        entry (DST seed 2088: one already across the mark) risks no loss and is kept as it is. A pending entry's stop
        is left to `operations.entry.anchor`."""
        with self.db.atomic("IMMEDIATE"):
            row = self._row(uid)
            recorded = self._record(
                row,
                fill_id=str(fill.fill_id),
                client_order_id=fill.client_order_id,
                venue_order_id=fill.order_id,
                side=str(fill.side),
                is_entry=is_entry,
                qty=fill.size,
                price=fill.price,
                fill_time=fill.time,
            )
            if recorded and is_entry and stop_limit is not None and row.state in spec.EXPOSED_STATES:
                self._keep_stop_within(row, *stop_limit)
            return recorded

    def _keep_stop_within(self, row: Position, max_distance_pct: Decimal, tick: Decimal) -> None:
        if row.stop_price is None or row.entry_price is None:
            return
        stop, entry = Decimal(str(row.stop_price)), Decimal(str(row.entry_price))
        tightened = within_limit(row.side, entry, stop, max_distance_pct, tick)
        if tightened == stop:
            return
        self._sql('UPDATE "position" SET stop_price = ? WHERE id = ?', (_text(tightened), _pk(row)))
        emit(
            Ev.STOP_PRICE_TIGHTENED,
            position=row.uid,
            symbol=row.symbol_key,
            entry_price=entry,
            registry_stop=stop,
            stop_price=tightened,
            max_stop_distance_pct=max_distance_pct,
        )

    def _record(
        self,
        row: Position,
        *,
        fill_id: str,
        client_order_id: str | None,
        venue_order_id: str | None,
        side: str,
        is_entry: bool,
        qty: Decimal,
        price: Decimal,
        fill_time: datetime,
    ) -> bool:
        side = _check(side, ORDER_SIDES, "fill side")
        units = _positive_units(qty, "fill quantity")
        # One statement for both: is the fill recorded already, and where does the chain end (what it links to).
        known, last = self._sql(
            "SELECT EXISTS (SELECT 1 FROM fill WHERE fill_id = ?),"
            " (SELECT row_hash FROM fill ORDER BY id DESC LIMIT 1)",
            (fill_id,),
        ).fetchone()
        if known:
            return False
        expected = spec.fill_side(row.side, is_entry)
        if side != expected:
            role = "entry" if is_entry else "exit"
            raise FillSideMismatch(
                f"{role} fill {fill_id} is a {side}, but {role} fills of {row.side} position {row.uid} are {expected}s;"
                " nothing recorded. The fill belongs to another position, or this position's side is wrong: compare"
                " with the venue (python -m tools.sync_positions, dry-run)"
            )
        if is_entry and row.state in spec.TERMINAL_STATES:
            raise FillOnTerminalPosition(
                f"entry fill {fill_id} for position {row.uid}, which is {row.state}: the venue holds exposure the "
                "registry considers gone. Nothing recorded; run reconciliation and inspect the venue position"
            )
        if not is_entry and units > row.remaining_qty_units:
            raise OverfillError(
                f"exit fill {fill_id} of {units_to_qty(units)} exceeds position {row.uid}'s remaining "
                f"{units_to_qty(row.remaining_qty_units)}; nothing recorded. If its entry fills have not been "
                "recorded yet, record them first; otherwise the venue position differs: run reconciliation"
            )
        text_price = _text(Decimal(price))
        assert text_price is not None
        if not self._append_fill(
            row,
            fill_id=fill_id,
            client_order_id=client_order_id,
            venue_order_id=venue_order_id,
            side=side,
            is_entry=is_entry,
            units=units,
            price=text_price,
            fill_ms=to_ms(fill_time),
            prev=chain.GENESIS if last is None else str(last),
        ):
            return False
        row.remaining_qty_units += units if is_entry else -units
        if is_entry:
            row.entry_price = self._average_entry(row)
        row.updated_ms = self._now_ms()
        self._sql(
            'UPDATE "position" SET remaining_qty_units = ?, entry_price = ?, updated_ms = ? WHERE id = ?',
            (row.remaining_qty_units, row.entry_price, row.updated_ms, _pk(row)),
        )
        return True

    def fill_ids_known(self, fill_ids: Collection[str]) -> set[str]:
        """Which of these fill ids the ledger holds: an indexed lookup of the batch, so the cost of a cycle does not
        grow with the history (loading every fill id ever recorded did)."""
        return self._fill_ids_in("fill", fill_ids)

    def fill_ids_judged(self, fill_ids: Collection[str]) -> set[str]:
        """Which of these fill ids the fill door has judged: booked in the ledger, or recorded unowned (a fill split
        through zero is in both). A judged fill is never judged again, by the door or by reconciliation's plan: the
        one "new fill" set for both, so the plan never counts a fill the door will skip."""
        return self.fill_ids_known(fill_ids) | self.unowned_known(fill_ids)

    def _fill_ids_in(self, table: str, fill_ids: Collection[str]) -> set[str]:
        """Which of these fill ids `table` holds, by its unique fill_id index, in chunks of SQL variables."""
        known: set[str] = set()
        for chunk in _chunks(sorted(set(fill_ids))):
            query = f'SELECT fill_id FROM "{table}" WHERE fill_id IN ({_marks(chunk)})'  # noqa: S608 - code, placeholders
            known.update(str(fid) for (fid,) in self._sql(query, tuple(chunk)))
        return known

    def record_unowned(self, fill: Any, *, position_uid: str | None, reason: str) -> bool:
        """Record a `lifecycle.values.VenueFill` no position can own (`unowned_fill`); True when it is new, False when
        it was recorded before (the same fill read again, by another door or after a restart)."""
        with self.db.atomic("IMMEDIATE"):
            cursor = self._sql(
                "INSERT OR IGNORE INTO unowned_fill (fill_id, symbol_key, side, qty, price, fill_ms, client_order_id,"
                " venue_order_id, position_uid, reason, recorded_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    str(fill.fill_id),
                    canonical_key(str(fill.symbol)),
                    str(fill.side),
                    str(fill.size),
                    str(fill.price),
                    to_ms(fill.time),
                    fill.client_order_id,
                    fill.order_id,
                    position_uid,
                    reason,
                    self._now_ms(),
                ),
            )
            return bool(cursor.rowcount)

    def unowned_known(self, fill_ids: Collection[str]) -> set[str]:
        """Which of these fill ids are recorded as unowned (an indexed lookup of the batch)."""
        return self._fill_ids_in("unowned_fill", fill_ids)

    def unowned_fills(self) -> list[dict[str, object]]:
        """Every recorded unowned fill, oldest first (for reports and tests)."""
        rows = self._sql(
            "SELECT fill_id, symbol_key, side, qty, price, fill_ms, client_order_id, position_uid, reason"
            " FROM unowned_fill ORDER BY fill_ms, id"
        )
        names = ("fill_id", "symbol", "side", "qty", "price", "fill_ms", "client_order_id", "position", "reason")
        return [dict(zip(names, row, strict=True)) for row in rows]

    def known_fill_ids(self, since_ms: int | None = None) -> set[str]:
        q = Fill.select(Fill.fill_id)
        if since_ms is not None:
            q = q.where(Fill.fill_ms >= since_ms)
        return {f.fill_id for f in q}

    def first_fill_time(self, uid: str) -> datetime | None:
        """When the venue says the position began: its earliest ledger fill (stamped by the venue's clock; an
        import's just after the snapshot's server time), or None without fills.
        One indexed aggregate, not the ledger."""
        found = self._sql(
            "SELECT MIN(fill_ms) FROM fill WHERE position_id = (SELECT id FROM position WHERE uid = ?)", (uid,)
        ).fetchone()
        return None if found is None or found[0] is None else from_ms(int(found[0]))

    def decision_price(self, uid: str) -> Decimal | None:
        """The price the strategy sized the entry's risk at (`open_intent`'s `decision_price`), or None."""
        found = self._sql(
            "SELECT decision_price FROM entry_decision WHERE position_id = ? LIMIT 1", (_pk(self._row(uid)),)
        ).fetchone()
        return None if found is None else Decimal(str(found[0]))

    def last_fill_time(self) -> datetime | None:
        ms = Fill.select(pw.fn.MAX(Fill.fill_ms)).scalar()
        return None if ms is None else from_ms(int(ms))

    def fills(self, uid: str) -> list[dict[str, object]]:
        """The ledger rows of one position in recording order (for reports and tests)."""
        row = self._row(uid)
        rows = self._sql(
            "SELECT fill_id, side, is_entry, qty_units, price, fill_ms, client_order_id FROM fill"
            " WHERE position_id = ? ORDER BY id",
            (_pk(row),),
        )
        return [
            {
                "fill_id": fill_id,
                "side": side,
                "is_entry": bool(is_entry),
                "qty": units_to_qty(int(qty_units)),
                "price": Decimal(price),
                "fill_time": from_ms(int(fill_ms)),
                "client_order_id": coid,
            }
            for fill_id, side, is_entry, qty_units, price, fill_ms, coid in rows
        ]


def _chunks(items: Sequence[str], size: int = 500) -> Iterator[list[str]]:
    # SQLite caps the number of bound parameters per statement; 500 stays far below every build's limit.
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
