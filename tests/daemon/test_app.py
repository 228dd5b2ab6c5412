"""The scheduler shell: job configuration, failures that do not stop the next run, shutdown after the job."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from lifecycle.events import EVENT_LOGGER
from operations.stats import RunStats
from scheduler.app import Daemon, JobRunner, JobSpec


def test_jobs_are_single_instance_and_coalesced() -> None:
    daemon = Daemon(
        [JobSpec("tick", lambda: None, 30.0), JobSpec("protect", lambda: None, 10.0)], JobRunner(None, RunStats())
    )
    daemon.start()
    try:
        for name, seconds in (("tick", 30.0), ("protect", 10.0)):
            job = daemon.scheduler.get_job(name)
            assert job.max_instances == 1
            assert job.coalesce is True
            assert job.trigger.interval.total_seconds() == seconds
    finally:
        daemon.shutdown()


def test_a_failing_job_logs_job_failed_and_the_next_run_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    def flaky() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("venue said no")

    stats = RunStats()
    runner = JobRunner(None, stats)
    with caplog.at_level(logging.INFO, logger=EVENT_LOGGER):
        assert runner.run("tick", flaky) is False
        assert runner.run("tick", flaky) is True
    failed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("JOB_FAILED")]
    assert failed == ['JOB_FAILED job=tick error="RuntimeError: venue said no"']
    assert stats.job_failures == 1
    assert len(calls) == 2


def test_stop_waits_for_the_job_in_flight() -> None:
    started = threading.Event()
    finished: list[float] = []

    def slow() -> None:
        started.set()
        time.sleep(0.3)
        finished.append(time.monotonic())

    daemon = Daemon([JobSpec("tick", slow, 60.0)], JobRunner(None, RunStats()))
    daemon.start()
    assert started.wait(5)
    daemon.request_stop("SIGTERM")
    reason = daemon.run_until_stopped()
    stopped_at = time.monotonic()
    assert reason == "SIGTERM"
    assert finished and finished[0] <= stopped_at
    assert not daemon.scheduler.running
