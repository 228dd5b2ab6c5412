"""A registry file that becomes damaged while the daemon runs halts it (exit 3, INVARIANT_VIOLATION, alert)
instead of JOB_FAILED every cycle while every health cycle still reports violations_total=0 (issue 9 §2)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import peewee as pw

from operations.stats import RunStats
from scheduler.app import JobRunner
from store.integrity import RegistryDamaged, registry_damage
from tests.daemon.procs import daemon, live_simulator, write_config
from tests.failfast.helpers import closed_history, flip_bytes_mid_file


def malformed() -> None:
    raise sqlite3.DatabaseError("database disk image is malformed")


def test_registry_damage_classifies_the_errors_that_mean_a_damaged_file() -> None:
    assert registry_damage(sqlite3.DatabaseError("database disk image is malformed"))
    assert registry_damage(sqlite3.DatabaseError("file is not a database"))
    assert registry_damage(sqlite3.OperationalError("disk I/O error"))
    assert registry_damage(RegistryDamaged("PRAGMA quick_check failed: ..."))
    try:  # peewee wraps the sqlite3 error in its own class
        with getattr(pw, "__exception_wrapper__"):  # noqa: B009 - not in the stub
            malformed()
    except pw.DatabaseError as wrapped:
        assert type(wrapped) is pw.DatabaseError and registry_damage(wrapped)
    assert registry_damage(sqlite3.OperationalError("database is locked")) is None
    assert registry_damage(sqlite3.IntegrityError("UNIQUE constraint failed: fill.fill_id")) is None
    assert registry_damage(ValueError("malformed JSON from the venue")) is None


def test_a_damaged_registry_in_a_job_calls_the_fatal_hook_once_and_no_job_runs_again() -> None:
    errors: list[str] = []
    fatal: list[tuple[str, str]] = []
    runs: list[str] = []
    runner = JobRunner(
        None, RunStats(), lambda job, exc: errors.append(job), lambda job, cause: fatal.append((job, cause))
    )
    assert not runner.run("reconcile", malformed)
    assert not runner.run("tick", lambda: runs.append("tick"))
    assert fatal == [("reconcile", "DatabaseError: database disk image is malformed")]
    assert errors == [] and runs == [] and runner.fatal is not None


def test_an_ordinary_job_error_still_goes_on() -> None:
    errors: list[str] = []
    runner = JobRunner(None, RunStats(), lambda job, exc: errors.append(job), lambda job, cause: None)

    def boom() -> None:
        raise RuntimeError("a bug")

    assert not runner.run("tick", boom)
    assert runner.run("tick", lambda: None)
    assert errors == ["tick"] and runner.fatal is None


def test_a_registry_damaged_while_the_daemon_runs_halts_it_with_exit_3(tmp_path: Path) -> None:
    path = closed_history(tmp_path / "registry.db")
    with live_simulator(seed=8) as (_, base_url):
        config = write_config(tmp_path, base_url)
        proc = daemon(config, duration=40)
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:
            lines.append(line)
            if "DAEMON_STARTED" in line:
                break
        time.sleep(1.0)
        flip_bytes_mid_file(path, count=4096)
        started = time.monotonic()
        rest, _ = proc.communicate(timeout=60)
        out = "".join(lines) + rest
    assert proc.returncode == 3, out[-3000:]
    assert time.monotonic() - started < 30  # halted by the damage, not by --duration
    assert "INVARIANT_VIOLATION invariant=registry_damaged" in out
    assert "KILL_SWITCH_ACTIVATED reason=invariant_violation" in out
    assert "DAEMON_STOPPED reason=registry_damaged" in out
    [line] = [x for x in out.splitlines() if x.startswith("trading daemon:")]
    assert "halted" in line and "restore it from backup" in line
    assert "Traceback" not in out
