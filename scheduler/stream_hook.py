"""The order stream inside the daemon (docs/stream.md): fills go through the one door, `operations.fills.ingest`,
under the same job lock as every job (`JobRunner.run`, job name `stream`); every gap in the stream asks the
scheduler to run the `reconcile` job now. REST polling (exits, reconcile) keeps running whatever the stream does.

Order updates have no door of their own yet: a removal the venue made (not our cancel, not a fill; e.g.
`cancelled_by_admin`) asks for a reconciliation now; the others only count for the stream's health.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lifecycle.values import VenueFill, VenueOrder
from operations.context import DaemonContext
from operations.fills import ingest
from scheduler import metrics
from scheduler.app import Daemon, JobRunner
from scheduler.stream_status import STREAMS
from settings.config import StreamSettings
from specs.lifecycle import Event

if TYPE_CHECKING:
    from exchange.stream import OrderStream

log = logging.getLogger(__name__)
RECONCILE_JOB = "reconcile"
MIN_RECONCILE_SPACING_S = 1.0  # a burst of gaps asks for one reconciliation, not one per message


class DaemonStreamHandler:
    def __init__(self, ctx: DaemonContext, runner: JobRunner, reconcile_now: Callable[[str], None]) -> None:
        self._ctx = ctx
        self._runner = runner
        self._reconcile_now = reconcile_now
        self.recorded = 0  # fills the stream brought into the ledger first (REST found them already there)
        self.closed_by_stream = 0

    def on_fills(self, fills: Sequence[VenueFill]) -> bool:
        unowned: list[VenueFill] = []

        def run() -> None:
            result = ingest(self._ctx, fills, source="stream")
            self.recorded += len(result.recorded)
            self.closed_by_stream += sum(1 for _, event in result.events if event is Event.POSITION_CLOSED)
            unowned.extend(result.unowned)

        # `run`, not `timed_run`: the systemd watchdog follows the scheduled jobs only (a stream delivering fills
        # must not keep a stalled scheduler looking alive); the duration still goes to the metrics endpoint
        started = time.monotonic()
        ok = self._runner.run("stream", run)
        metrics.job_finished("stream", time.monotonic() - started, ok)
        if unowned:
            # fills nothing we hold explains (a position opened by hand, a liquidation of something untracked):
            # reconciliation judges them; now rather than at its next interval
            self._reconcile_now("unowned_fill")
        return ok

    def on_orders(self, orders: Sequence[VenueOrder], venue_cancels: int) -> None:
        if venue_cancels:
            self._reconcile_now("venue_cancel")

    def on_gap(self, reason: str) -> None:
        self._reconcile_now(reason)


def reconcile_now(daemon: Daemon) -> Callable[[str], None]:
    """Move the reconcile job's next run to now (APScheduler), at most once per MIN_RECONCILE_SPACING_S."""
    lock = threading.Lock()
    last = [0.0]

    def request(reason: str) -> None:
        with lock:
            now = time.monotonic()
            if now - last[0] < MIN_RECONCILE_SPACING_S:
                return
            last[0] = now
        log.info("order stream gap (%s): reconciliation from REST now", reason)
        with contextlib.suppress(Exception):  # not running yet / shutting down: the next scheduled run covers it
            daemon.scheduler.modify_job(RECONCILE_JOB, next_run_time=datetime.now(UTC))

    return request


def order_stream(
    settings: StreamSettings,
    ctx: DaemonContext,
    *,
    api_key: str | None,
    api_secret: str | None,
    base_url: str | None,
) -> Callable[[Daemon], AbstractContextManager[OrderStream | None]]:
    """What `scheduler.startup.run_jobs(stream=...)` enters once the scheduler runs."""
    enabled = settings.enabled and bool(api_key) and bool(api_secret)
    if enabled:
        # Imported here, before the jobs start (so the stream is up by the first tick): ccxt.pro costs about 0.5 s
        # of import, which a daemon with the stream off never pays.
        from exchange.stream import OrderStream

    @contextmanager
    def running(daemon: Daemon) -> Iterator[OrderStream | None]:
        if not enabled or not api_key or not api_secret:
            log.info("order stream off (stream.enabled=%s); REST polling only", settings.enabled)
            yield None
            return
        handler = DaemonStreamHandler(ctx, daemon.runner, reconcile_now(daemon))
        stream = OrderStream(
            api_key=api_key,
            api_secret=api_secret,
            base_url=base_url,
            handler=handler,
            clock=ctx.clock,
            max_silence_s=settings.max_silence_s,
            degraded_after_s=settings.degraded_after_s,
        )
        STREAMS.stream = stream
        stream.start()
        try:
            yield stream
        finally:
            stream.stop()
            STREAMS.stream = None

    return running
