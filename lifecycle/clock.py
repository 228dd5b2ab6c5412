"""The one place time comes from. The core never reads the wall clock itself; tests inject `FakeClock`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Timezone-aware UTC now."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A manually advanced clock, safe to share between the simulator's server thread and the daemon."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = when


class VenueClock:
    """The daemon's clock: the venue's time, so that every time window (the stop churn bound's hour, a row's age,
    the escalator's cycles) and every registry stamp reads one clock that a step of the host's does not move.

    Each snapshot's server time anchors it (`anchor`, from `observe_server_time`); between anchors it advances by
    `monotonic` (seconds; never stepped by NTP, a resumed VM or an operator setting the date). Before the first
    anchor of a process, and for a clock that is never anchored, it is the host clock: a new process starts on it
    until its startup reconciliation's snapshot, because a monotonic reading means nothing across processes.
    Thread-safe: the order stream's thread reads it while a job anchors it."""

    def __init__(self, host: Clock, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.host = host
        self._monotonic = monotonic
        self._anchor: tuple[datetime, float] | None = None
        self._lock = threading.Lock()

    @property
    def anchored(self) -> bool:
        with self._lock:
            return self._anchor is not None

    def anchor(self, server_time: datetime) -> None:
        """The venue said it is `server_time` now (a snapshot's server time)."""
        with self._lock:
            self._anchor = (server_time, self._monotonic())

    def now(self) -> datetime:
        with self._lock:
            anchor = self._anchor
            if anchor is None:
                return self.host.now()
            server_time, at = anchor
            return server_time + timedelta(seconds=self._monotonic() - at)


def observe_server_time(clock: Clock, server_time: datetime) -> None:
    """A venue answer stamped `server_time` was just read: the daemon's clock follows it when it is a `VenueClock`
    (other clocks, a test's `FakeClock` or a tool's `SystemClock`, are left as they are)."""
    if isinstance(clock, VenueClock):
        clock.anchor(server_time)


def window_end(clock: Clock, newest: datetime | None) -> datetime:
    """Where a look-back window over rows stamped by `clock` ends (`newest`: the newest row it counts): the clock's
    now. Before a `VenueClock`'s first anchor (a startup whose snapshot failed) now is the host's, which may be
    stepped either way, so the window ends no later than its newest row: a host clock ahead cannot age the rows out
    of it. The window then counts at least the rows a true clock would (a bound it enforces may refuse early, until
    the next snapshot anchors the clock; it is never exceeded)."""
    now = clock.now()
    if isinstance(clock, VenueClock) and not clock.anchored and newest is not None:
        return min(now, newest)
    return now


def position_began(created: datetime, first_fill: datetime | None, now: datetime) -> datetime:
    """When a position began, as the rules compare it with venue times (a fill's stamp, a snapshot's server time):
    its first ledger fill, stamped by the venue's clock, whenever it has one. Its `created` column is the writer's
    clock, which may be skewed or stepped either way: read against venue stamps, a host clock an hour behind made
    every hand fill of the hour before the entry an "external add" of it, and the old fills that built an orphan
    count twice. Without fills (a pending entry) `created`, clamped to `now`, so that a row stamped in the future (a
    registry reused from a clock that ran ahead, a host clock stepped back) is neither "young" for ever nor blind to
    its fills. The one rule for the daemon (`DaemonContext.created_of`) and the tools alike."""
    return min(created, now) if first_fill is None else first_fill


def to_ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
