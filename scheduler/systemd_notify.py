"""systemd's notify protocol, spoken directly (sd_notify(3): one datagram to the socket in $NOTIFY_SOCKET).

The unit is `Type=notify` with `WatchdogSec=`: `ready()` is sent once the startup sequence has finished (so
`systemctl start` returns only when the daemon trades, or fails with its refusal), and a `Watchdog` thread sends
`WATCHDOG=1` every third of the watchdog interval, but only while the scheduler's jobs keep completing: a job stuck
on a socket or a lock (or a dead scheduler thread) stops the pings, and systemd kills and restarts the daemon.

Without $NOTIFY_SOCKET (a terminal, `make run`, the tests) every call is a no-op. A failed send is logged once at
DEBUG and never raised: systemd being unreachable must not stop trading.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

log = logging.getLogger(__name__)


def _address(environ: Mapping[str, str]) -> str | None:
    path = environ.get("NOTIFY_SOCKET", "")
    if not path or not (path.startswith("/") or path.startswith("@")):
        return None  # unset, or a vsock address we do not speak
    return "\0" + path[1:] if path.startswith("@") else path


def notify(message: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send one notify datagram ("READY=1", "WATCHDOG=1", "STOPPING=1", "STATUS=..."). True when it was sent."""
    address = _address(os.environ if environ is None else environ)
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message.encode(), address)
    except OSError as exc:
        log.debug("sd_notify %s failed: %s", message.split("=", 1)[0], exc)
        return False
    return True


def ready(status: str, environ: Mapping[str, str] | None = None) -> bool:
    return notify(f"READY=1\nSTATUS={status}", environ)


def stopping(environ: Mapping[str, str] | None = None) -> bool:
    return notify("STOPPING=1", environ)


def watchdog_seconds(environ: Mapping[str, str] | None = None) -> float | None:
    """The unit's WatchdogSec, from $WATCHDOG_USEC (None: no watchdog, or it is meant for another process)."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 1_000_000


class Watchdog:
    """Pings `WATCHDOG=1` while `last_completed()` (monotonic seconds of the last job that returned, successfully
    or not) is younger than `stale_after_s`; stops pinging once it is older, so systemd's watchdog fires.

    `stale_after_s` must cover the longest legitimate gap between two job completions: the shortest job
    interval plus the longest a single job may take (see `stale_after`)."""

    def __init__(
        self,
        last_completed: Callable[[], float],
        *,
        interval_s: float,
        stale_after_s: float,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._last_completed = last_completed
        self._interval_s = interval_s
        self._stale_after_s = stale_after_s
        self._environ = dict(os.environ if environ is None else environ)
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sd-watchdog", daemon=True)
        self.pings = 0
        self.withheld = 0

    def beat(self) -> bool:
        """One decision: ping when the jobs are alive. Returns whether a ping was sent."""
        age = self._clock() - self._last_completed()
        if age > self._stale_after_s:
            if self.withheld == 0:
                log.error(
                    "no scheduled job has completed for %.0f s (limit %.0f s): watchdog pings withheld, "
                    "systemd will restart the daemon",
                    age,
                    self._stale_after_s,
                )
            self.withheld += 1
            return False
        self.withheld = 0
        sent = notify("WATCHDOG=1", self._environ)
        self.pings += int(sent)
        return sent

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.beat()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


# The longest one job may legitimately run (a reconcile through a slow venue with retries, a full audit).
LONGEST_JOB_S = 120.0


def stale_after(job_intervals: list[float], watchdog_s: float) -> float:
    """How old the last completion may get before the pings stop: the shortest job interval (some job is due at
    least that often) plus the longest a job may take, and never less than the watchdog interval itself."""
    return max(min(job_intervals, default=0.0) + LONGEST_JOB_S, watchdog_s)


def start_watchdog(last_completed: Callable[[], float], job_intervals: list[float]) -> Watchdog | None:
    """The daemon's watchdog when systemd asked for one ($WATCHDOG_USEC), started; None otherwise."""
    seconds = watchdog_seconds()
    if seconds is None:
        return None
    dog = Watchdog(last_completed, interval_s=seconds / 3, stale_after_s=stale_after(job_intervals, seconds))
    dog.start()
    return dog


@contextmanager
def supervised(last_completed: Callable[[], float], job_intervals: list[float]) -> Iterator[Watchdog | None]:
    """Around the scheduler's run: READY=1 on entry (startup is over), the watchdog while it runs, STOPPING=1
    and the watchdog stopped on exit. Without $NOTIFY_SOCKET nothing is sent and no thread starts."""
    if _address(os.environ) is None:
        yield None
        return
    ready("trading: jobs running")
    dog = start_watchdog(last_completed, job_intervals)
    try:
        yield dog
    finally:
        stopping()
        if dog is not None:
            dog.stop()
