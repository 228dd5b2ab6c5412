"""The scheduler shell: APScheduler 3 jobs, one at a time, with graceful shutdown.

Jobs run on a `BackgroundScheduler` with one worker thread and a lock around every run. Serialising them is the
point: tick, reconcile, protect and health all write the registry and place orders for the same positions, and
two of them interleaving on one position is exactly the race the lifecycle exists to prevent. A job that raises
logs JOB_FAILED and the next run goes on, except when the error says the registry file is damaged
(`store.integrity.registry_damage`: corrupt, not a database, I/O error): then `on_fatal` runs once, no job runs
again, and the daemon stops (exit 3; see scheduler.startup.run_jobs). Retrying on a damaged file only logs the
same failure forever while every health cycle still looks clean.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType

import peewee as pw
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from lifecycle.events import Ev, emit
from operations.stats import RunStats
from scheduler import metrics
from store.integrity import registry_damage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobSpec:
    name: str
    func: Callable[[], object]
    seconds: float


class JobRunner:
    """Runs one job at a time, each in its own DB connection; failures become JOB_FAILED lines."""

    def __init__(
        self,
        db: pw.Database | None,
        stats: RunStats,
        on_error: Callable[[str, Exception], None] | None = None,
        on_fatal: Callable[[str, str], None] | None = None,
    ) -> None:
        """`on_error(job, exc)` runs after JOB_FAILED is logged, e.g. to halt on an invariant breach.
        `on_fatal(job, cause)` runs once, instead, when the error says the registry file is damaged; from then on
        no job runs (`fatal` holds the cause)."""
        self._db = db
        self._stats = stats
        self._on_error = on_error
        self._on_fatal = on_fatal
        self.fatal: str | None = None
        self.lock = threading.Lock()
        # When the last job returned (monotonic): the systemd watchdog pings only while this keeps moving.
        self.last_completed = time.monotonic()

    @contextmanager
    def _connection(self) -> Iterator[None]:
        if self._db is None:
            yield
            return
        # peewee connections are per thread; the worker thread opens and closes its own each run.
        with self._db.connection_context():
            yield

    def run(self, name: str, func: Callable[[], object]) -> bool:
        """Run `func` under the job lock. Returns False when it raised (already logged)."""
        with self.lock:
            if self.fatal is not None:
                return False  # the registry is damaged: nothing may read or write it again in this process
            try:
                with self._connection():
                    func()
            except Exception as exc:
                self._stats.job_failures += 1
                emit(Ev.JOB_FAILED, job=name, error=f"{type(exc).__name__}: {exc}")
                log.debug("job %s traceback:\n%s", name, traceback.format_exc())
                damage = registry_damage(exc)
                if damage is not None:
                    self.fatal = damage
                    if self._on_fatal is not None:
                        try:
                            self._on_fatal(name, damage)
                        except Exception:
                            log.exception("job %s: the fatal-error hook failed", name)
                    return False
                if self._on_error is not None:
                    try:
                        self._on_error(name, exc)
                    except Exception:
                        log.exception("job %s: the error hook failed too", name)
                return False
            return True

    def timed_run(self, name: str, func: Callable[[], object]) -> bool:
        """`run`, timed: the duration and result go to the metrics endpoint (when on), and the completion time
        feeds the systemd watchdog (scheduler.systemd_notify)."""
        started = time.monotonic()
        ok = self.run(name, func)
        self.last_completed = time.monotonic()
        metrics.job_finished(name, self.last_completed - started, ok)
        return ok


class Daemon:
    """Owns the APScheduler instance; `run_until_stopped` blocks the main thread until SIGTERM/SIGINT."""

    def __init__(self, jobs: Sequence[JobSpec], runner: JobRunner) -> None:
        self.jobs = tuple(jobs)
        self.runner = runner
        self.stop_event = threading.Event()
        self.stop_reason = "stopped"
        self.scheduler = BackgroundScheduler(
            timezone="UTC",
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 30},
        )
        start = datetime.now(UTC)
        for spec in self.jobs:
            self.scheduler.add_job(
                self.runner.timed_run,
                "interval",
                seconds=spec.seconds,
                args=(spec.name, spec.func),
                id=spec.name,
                name=spec.name,
                next_run_time=start,
                max_instances=1,
                coalesce=True,
            )

    def start(self) -> None:
        self.scheduler.start()

    def request_stop(self, reason: str) -> None:
        self.stop_reason = reason
        self.stop_event.set()

    def install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: FrameType | None) -> None:
            self.request_stop(signal.Signals(signum).name)

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run_until_stopped(self, timeout_s: float | None = None) -> str:
        """Block until a stop is requested (or `timeout_s` passes), then shut down after the current job."""
        if not self.stop_event.wait(timeout_s):
            self.stop_reason = "time_limit"
        self.shutdown()
        return self.stop_reason

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.pause()  # no new runs; the one in flight finishes
            self.scheduler.shutdown(wait=True)
        # Belt and braces: a job started by hand (startup) may still hold the lock.
        with self.runner.lock:
            pass
