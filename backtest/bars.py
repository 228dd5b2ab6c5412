"""Reading a candle store (`candles.db`, written by tools.backfill_historical_data) for a backtest.

Read-only: the file is opened with `mode=ro`, so a wrong path is never created or changed. Every problem is a
`BarsError` whose message is one line naming the problem and the fix.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from lifecycle.clock import from_ms, to_ms
from simulator.candles import TIMEFRAMES
from simulator.prices import ReplayCandle
from store.candles import file_problem

CANDLE_COLUMNS = {"symbol", "timeframe", "open_ms", "open", "high", "low", "close", "volume"}


class BarsError(Exception):
    """A candle file or range the backtest cannot use; the message says what to do."""


@dataclass(frozen=True)
class Gap:
    symbol: str
    first: datetime  # open time of the first missing bar
    count: int


@dataclass(frozen=True)
class Series:
    symbol: str
    timeframe: str
    bars: tuple[ReplayCandle, ...]
    gaps: tuple[Gap, ...]


def width_seconds(timeframe: str) -> int:
    try:
        return TIMEFRAMES[timeframe]
    except KeyError:
        raise BarsError(f"unknown timeframe {timeframe!r}: use one of {', '.join(TIMEFRAMES)}") from None


def _connect(path: Path) -> sqlite3.Connection:
    if not path.exists():
        raise BarsError(f"candle file {path} does not exist: fill it with python -m tools.backfill_historical_data")
    problem = file_problem(path, create=False)
    if problem is not None:
        raise BarsError(f"{problem}: pass the file backfill_historical_data wrote with --candles")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(candle)")}
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise BarsError(f"{path} cannot be read as a candle store ({exc}): pass another --candles file") from None
    if not columns >= CANDLE_COLUMNS:
        conn.close()
        raise BarsError(f"{path} is not a candle store (no candle table; the registry?): pass another --candles file")
    return conn


def load(path: Path, symbol: str, timeframe: str, start: datetime | None, end: datetime | None) -> Series:
    """The stored bars of one symbol opening in [start, end] (either end open), oldest first, with the gaps."""
    width_ms = width_seconds(timeframe) * 1000
    conn = _connect(path)
    try:
        query = "SELECT open_ms, open, high, low, close, volume FROM candle WHERE symbol = ? AND timeframe = ?"
        params: list[object] = [symbol, timeframe]
        if start is not None:
            query += " AND open_ms >= ?"
            params.append(to_ms(start))
        if end is not None:
            query += " AND open_ms <= ?"
            params.append(to_ms(end))
        rows = conn.execute(query + " ORDER BY open_ms", params).fetchall()
    except sqlite3.DatabaseError as exc:
        raise BarsError(f"{path} cannot be read as a candle store ({exc}): pass another --candles file") from None
    finally:
        conn.close()
    bars: list[ReplayCandle] = []
    gaps: list[Gap] = []
    for open_ms, *prices in rows:
        if int(open_ms) % width_ms:
            raise BarsError(f"{path}: {symbol} {timeframe} bar at {open_ms} ms is off the {timeframe} grid")
        try:
            o, h, low, c, v = (Decimal(str(p)) for p in prices)
        except InvalidOperation:
            raise BarsError(f"{path}: {symbol} bar at {from_ms(int(open_ms))} has a non-numeric price") from None
        if not (low <= min(o, c) and max(o, c) <= h and low > 0):
            raise BarsError(f"{path}: {symbol} bar at {from_ms(int(open_ms))} is not a valid OHLC bar (low>0<=o,c<=h)")
        if bars:
            missing = (int(open_ms) - to_ms(bars[-1].time)) // width_ms - 1
            if missing > 0:
                gaps.append(Gap(symbol, from_ms(to_ms(bars[-1].time) + width_ms), missing))
        bars.append(ReplayCandle(from_ms(int(open_ms)), o, h, low, c, v))
    return Series(symbol, timeframe, tuple(bars), tuple(gaps))
