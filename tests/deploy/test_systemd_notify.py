"""sd_notify over a real unix datagram socket: READY=1 after startup, WATCHDOG=1 only while jobs complete."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from operations.stats import RunStats
from scheduler import systemd_notify
from scheduler.app import JobRunner
from tests.deploy.conftest import ROOT


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield sock, path
    sock.close()


def test_notify_sends_one_datagram_and_is_a_no_op_without_the_socket(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    assert systemd_notify.ready("trading", {"NOTIFY_SOCKET": path})
    assert sock.recv(4096).decode() == "READY=1\nSTATUS=trading"
    assert not systemd_notify.notify("WATCHDOG=1", {})
    assert not systemd_notify.notify("WATCHDOG=1", {"NOTIFY_SOCKET": "/nonexistent/socket"})  # logged, not raised


def test_watchdog_seconds_reads_watchdog_usec_for_this_process_only() -> None:
    assert systemd_notify.watchdog_seconds({"WATCHDOG_USEC": "120000000"}) == 120.0
    assert systemd_notify.watchdog_seconds({"WATCHDOG_USEC": "120000000", "WATCHDOG_PID": "1"}) is None
    assert systemd_notify.watchdog_seconds({}) is None
    assert systemd_notify.watchdog_seconds({"WATCHDOG_USEC": "0"}) is None


def test_a_stuck_job_stops_the_pings_and_a_completing_one_resumes_them(
    notify_socket: tuple[socket.socket, str],
) -> None:
    sock, path = notify_socket
    runner = JobRunner(None, RunStats())
    dog = systemd_notify.Watchdog(
        lambda: runner.last_completed, interval_s=0.1, stale_after_s=0.5, environ={"NOTIFY_SOCKET": path}
    )
    runner.timed_run("quick", lambda: None)
    assert dog.beat()
    assert sock.recv(64) == b"WATCHDOG=1"

    release = threading.Event()
    stuck = threading.Thread(target=runner.timed_run, args=("stuck", release.wait), daemon=True)
    stuck.start()
    time.sleep(0.7)  # the job has been running longer than stale_after_s: no completion since
    assert not dog.beat() and not dog.beat()
    assert dog.withheld == 2
    release.set()
    stuck.join(timeout=5)
    assert dog.beat()  # the job finished: pings again
    assert sock.recv(64) == b"WATCHDOG=1"


def test_a_failing_job_still_counts_as_the_scheduler_making_progress() -> None:
    runner = JobRunner(None, RunStats())
    before = runner.last_completed

    def boom() -> None:
        raise RuntimeError("venue down")

    time.sleep(0.01)
    assert not runner.timed_run("tick", boom)
    assert runner.last_completed > before


def test_stale_after_covers_the_shortest_interval_plus_the_longest_job() -> None:
    assert systemd_notify.stale_after([30, 60, 300], 120) == 30 + systemd_notify.LONGEST_JOB_S
    assert systemd_notify.stale_after([0.5], 300) == 300


def test_the_paper_daemon_sends_ready_then_watchdog_pings_then_stopping(
    notify_socket: tuple[socket.socket, str], tmp_path: Path
) -> None:
    sock, path = notify_socket
    env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1500000"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "scheduler", "--paper", "--duration", "6", "--db", str(tmp_path / "r.db")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    messages: list[str] = []
    sock.settimeout(60)
    try:
        while not messages or messages[-1] != "STOPPING=1":
            messages.append(sock.recv(4096).decode())
    finally:
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert messages[0].startswith("READY=1")
    assert messages.count("WATCHDOG=1") >= 3  # every 0.5 s while the jobs run
    assert messages[-1] == "STOPPING=1"
    assert "DAEMON_STARTED" in err.split("READY", 1)[0] or "DAEMON_STARTED" in err
