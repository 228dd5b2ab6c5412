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

SQLITE_HEADER = b"SQLite format 3\x00"
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


class CandleStore:
    """One candle file, opened for reading and writing by the daemon (WAL: backfill may write beside it).

    The daemon opens it in its main thread and ticks in the scheduler's worker threads, so the store holds one
    connection shared across threads (not bound to the opening thread) and serialises its use with a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = _open(path)
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


def _open(path: Path) -> pw.SqliteDatabase:
    """Open (creating when absent) a candle store; refuse any other file, such as the registry."""
    if path.exists():
        if not path.is_file():
            raise CandleStoreError(f"candle store {path} is not a file: set candles.path to a file")
        if path.stat().st_size:
            with path.open("rb") as fh:
                if fh.read(16) != SQLITE_HEADER:
                    raise CandleStoreError(f"{path} is not a SQLite candle store: set candles.path to another file")
    elif not path.parent.is_dir():
        raise CandleStoreError(f"cannot create candle store {path}: folder {path.parent} does not exist")
    # One connection for every thread (see CandleStore): peewee's per-thread connections would reopen the file in
    # each scheduler thread, and sqlite3's default refuses a connection used outside the thread that made it.
    db = pw.SqliteDatabase(str(path), pragmas={"busy_timeout": 5000}, thread_safe=False, check_same_thread=False)
    try:
        db.connect()
        foreign = sorted(set(db.get_tables()) - {TABLE})
        if foreign:
            raise CandleStoreError(
                f"{path} is not a candle store (it holds the tables {', '.join(foreign)}; the registry?): set"
                " candles.path to another file"
            )
        db.pragma("journal_mode", "wal")
        with db.bind_ctx([StoredCandle]):
            db.create_tables([StoredCandle], safe=True)
    except (pw.DatabaseError, sqlite3.DatabaseError) as exc:
        db.close()
        raise CandleStoreError(f"candle store {path} cannot be used ({exc}): move it away (it is rebuilt)") from None
    except BaseException:
        db.close()
        raise
    return db
