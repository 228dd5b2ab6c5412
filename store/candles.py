"""The candle store: closed OHLCV candles in their own SQLite file (default `candles.db`, never the registry).

One schema for its three users: `tools.backfill_historical_data` fills it from the venue, `tools.backtest` reads
history from it (`backtest.bars`), and the daemon's strategy reads its candles from it, asking the venue only for
the candles that closed since the newest stored one (`operations.candles`). Rows are keyed by (symbol,
timeframe, open time), so writing a candle twice changes nothing; prices are Decimal text, like the registry.
Only closed candles are ever written: a still-forming candle would freeze a value the venue later changes.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import peewee as pw

from lifecycle.clock import from_ms, to_ms
from lifecycle.values import Candle
from store.sqlite_file import header_problem

DEFAULT_CANDLES_NAME = "candles.db"
candle_db = pw.DatabaseProxy()


class StoredCandle(pw.Model):
    symbol = pw.CharField()
    timeframe = pw.CharField()
    open_ms = pw.BigIntegerField()
    open = pw.TextField()  # Decimal as text, like the registry
    high = pw.TextField()
    low = pw.TextField()
    close = pw.TextField()
    volume = pw.TextField()

    class Meta:
        database = candle_db
        table_name = "candle"
        indexes = ((("symbol", "timeframe", "open_ms"), True),)


TABLE = StoredCandle._meta.table_name


class CandleStoreError(Exception):
    """The file cannot serve as a candle store; the message names the file and what to do."""


class CandleStoreDamaged(CandleStoreError):
    """SQLite could not read the file (damaged, locked): the message names the file, SQLite's error and the fix;
    `cause` is SQLite's error, for callers that describe it their own way."""

    def __init__(self, message: str, cause: Exception) -> None:
        super().__init__(message)
        self.cause = cause


class CandleStore:
    """One candle file, opened for reading and writing by the daemon (WAL: backfill may write beside it).

    The daemon opens it in its main thread and ticks in the scheduler's worker threads, so the store holds one
    connection shared across threads (not bound to the opening thread) and serialises its use with a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = open_db(path, write=True, fix="set candles.path to another file")
        self._conn: sqlite3.Connection = self._db.connection()  # type: ignore[no-untyped-call]
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def latest(self, symbol: str, timeframe: str, limit: int, *, through_ms: int | None = None) -> list[Candle]:
        """The newest `limit` stored candles (opened at or before `through_ms` when given), oldest first."""
        bound = "" if through_ms is None else " AND open_ms <= ?"
        params: tuple[object, ...] = (symbol, timeframe) if through_ms is None else (symbol, timeframe, through_ms)
        with self._lock:
            rows = self._conn.execute(
                f'SELECT open_ms, open, high, low, close, volume FROM "{TABLE}" WHERE symbol = ? AND timeframe = ?'  # noqa: S608
                f"{bound} ORDER BY open_ms DESC LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [
            Candle(from_ms(int(ms)), Decimal(o), Decimal(h), Decimal(lo), Decimal(c), Decimal(v))
            for ms, o, h, lo, c, v in reversed(rows)
        ]

    def add(self, symbol: str, timeframe: str, candles: Sequence[Candle]) -> int:
        """Write candles not stored yet (a stored one is never changed); returns how many were new."""
        if not candles:
            return 0
        rows = [
            (symbol, timeframe, to_ms(c.time), str(c.open), str(c.high), str(c.low), str(c.close), str(c.volume))
            for c in candles
        ]
        with self._lock, self._db.atomic():
            before = self._conn.total_changes
            self._conn.executemany(
                f'INSERT OR IGNORE INTO "{TABLE}" (symbol, timeframe, open_ms, open, high, low, close, volume)'  # noqa: S608
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            return self._conn.total_changes - before


def file_problem(path: Path, *, create: bool) -> str | None:
    """Why `path` is not (or, with `create`, cannot become) a candle store file, or None: a missing file is fine
    when it can be created, and so is SQLite's empty database (0 bytes). The message names the file and the fault;
    the caller adds what its operator should do."""
    if not path.exists():
        if create and not path.parent.is_dir():
            return f"cannot create candle store {path}: folder {path.parent} does not exist"
        return None
    if not path.is_file():
        return f"candle store {path} is not a file"
    size = path.stat().st_size
    problem = None if size == 0 else header_problem(path, size)
    return None if problem is None else f"{problem}, not a candle store"


def open_db(path: Path, *, write: bool, fix: str) -> pw.SqliteDatabase:
    """Open a candle store: for writing (created when absent, WAL, the table made) or read-only (nothing created:
    the caller has checked the file exists). Refuses any other file, such as the registry, before writing anything
    to it. The one opener for the daemon (`CandleStore`) and `backfill_historical_data`; `fix` is what the caller's
    operator does about a refused file (raised as CandleStoreError; a damaged one as CandleStoreDamaged)."""
    problem = file_problem(path, create=write)
    if problem is not None:
        raise CandleStoreError(f"{problem}: {fix}")
    # One connection for every thread (see CandleStore): peewee's per-thread connections would reopen the file in
    # each scheduler thread, and sqlite3's default refuses a connection used outside the thread that made it.
    db = pw.SqliteDatabase(
        str(path) if write else f"file:{path}?mode=ro",
        uri=not write,
        pragmas={"busy_timeout": 5000},
        thread_safe=False,
        check_same_thread=False,
    )
    try:
        db.connect()
        foreign = sorted(set(db.get_tables()) - {TABLE})
        if foreign:
            raise CandleStoreError(
                f"{path} is not a candle store (it holds the tables {', '.join(foreign)}; the registry?): {fix}"
            )
        if write:  # only now: a file refused above must not have been switched to WAL
            db.pragma("journal_mode", "wal")
            with db.bind_ctx([StoredCandle]):
                db.create_tables([StoredCandle], safe=True)
    except (pw.DatabaseError, sqlite3.DatabaseError) as exc:
        db.close()
        raise CandleStoreDamaged(
            f"candle store {path} cannot be used ({exc}): move it away (it is rebuilt) or {fix}", exc
        ) from None
    except BaseException:
        db.close()
        raise
    return db
