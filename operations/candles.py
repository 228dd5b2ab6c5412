"""The strategy's candles: closed candles from the candle store, with only the missing tail fetched from the venue.

Without a store (`candles.enabled = false`, the embedded paper simulator, tests) every call asks the venue for the
last `candle_limit` candles, as before the store existed. With one, a call returns the stored candles when the
newest closed candle is already there (no REST call: with the default 1 h candles and a 1 min tick, 59 ticks in 60
make none), and otherwise fetches from the venue only the candles since the newest stored one, writes the closed
ones and returns the newest `candle_limit` from the store. A store that fails (full disk, damaged file) never
stops the strategy: the venue's answer is used for that call and the failure is logged.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import peewee as pw

from exchange.ccxt_venue import TIMEFRAME_SECONDS
from exchange.venue import Venue
from lifecycle.clock import from_ms, to_ms
from lifecycle.values import Candle
from operations.context import DaemonContext
from store.candles import CandleStore

log = logging.getLogger(__name__)
STORE_ERRORS = (sqlite3.Error, pw.PeeweeException, OSError)


def closed_only(candles: list[Candle], timeframe: str, now: datetime) -> list[Candle]:
    """The candles that have closed by `now`: the venue's last one is still forming and would make a signal that
    changes before the candle closes."""
    width = timedelta(seconds=TIMEFRAME_SECONDS[timeframe])
    return [c for c in candles if c.time + width <= now]


@dataclass
class CandleSource:
    venue: Venue
    store: CandleStore | None = None
    rest_calls: int = 0  # candle requests sent to the venue (make bench compares them with and without a store)
    _checked: dict[tuple[str, str], int] = field(default_factory=dict)  # newest closed slot already asked for

    def closed(self, symbol: str, timeframe: str, limit: int, now: datetime) -> list[Candle]:
        """The closed candles among the newest `limit` of `symbol` (the still-forming one counts towards `limit`,
        as in the venue's answer, so the strategy sees the same candles with or without a store), oldest first.
        Raises VenueError as `Venue.candles` does when the venue must be asked and cannot answer."""
        if self.store is None:
            return self._from_venue(symbol, timeframe, limit, now, since=None)
        want = max(limit - 1, 1)
        width_ms = TIMEFRAME_SECONDS[timeframe] * 1000
        newest_closed = to_ms(now) // width_ms * width_ms - width_ms  # open time of the last candle that closed
        try:
            stored = self.store.latest(symbol, timeframe, want, through_ms=newest_closed)
        except STORE_ERRORS as exc:  # a damaged store must not stop the strategy: the venue answers
            log.warning("candle store %s unreadable (%s): candles from the venue this time", self.store.path, exc)
            return self._from_venue(symbol, timeframe, limit, now, since=None)
        up_to_date = bool(stored) and to_ms(stored[-1].time) >= newest_closed
        asked = self._checked.get((symbol, timeframe)) == newest_closed
        if (up_to_date and len(stored) >= want) or (asked and stored):
            # Current; or the venue was asked for this slot already and had nothing newer (no trades, a new listing).
            return stored
        tail_start = to_ms(stored[-1].time) + width_ms if len(stored) >= want else None
        if tail_start is not None and (newest_closed - tail_start) // width_ms >= want:
            tail_start = None  # a gap longer than the window: the newest candles are all the strategy reads
        fetched = self._from_venue(symbol, timeframe, limit, now, since=tail_start)
        self._checked[(symbol, timeframe)] = newest_closed
        try:
            self.store.add(symbol, timeframe, fetched)
            return self.store.latest(symbol, timeframe, want, through_ms=newest_closed)
        except STORE_ERRORS as exc:  # as above: the fetched candles still serve this tick
            log.warning("candle store %s not written (%s): candles from the venue this time", self.store.path, exc)
            return fetched if tail_start is None else [*stored, *fetched][-want:]

    def _from_venue(self, symbol: str, timeframe: str, limit: int, now: datetime, since: int | None) -> list[Candle]:
        self.rest_calls += 1
        start = None if since is None else from_ms(since)
        return closed_only(self.venue.candles(symbol, timeframe, since=start, limit=limit), timeframe, now)


def source_of(ctx: DaemonContext) -> CandleSource:
    """The context's candle source; a context built without one (tests, tools) asks the venue every time."""
    if ctx.candles is None:
        ctx.candles = CandleSource(ctx.venue)
    return ctx.candles
