"""check_db_health on real files: healthy, missing (never created), locked, foreign, and schema-version problems."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from lifecycle.clock import FakeClock
from lifecycle.values import Side, VenueFill
from specs.lifecycle import INVARIANT_FIELDS
from store.models import SCHEMA_VERSION
from store.registry import Registry
from tests.audit.helpers import health, raw, small_registry


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    return small_registry(tmp_path / "registry.db", positions=30)


def test_healthy_registry_text_and_json(registry: Path) -> None:
    before = registry.read_bytes()
    text = health(registry)
    assert text.returncode == 0, text.stderr
    assert text.stderr == ""
    assert "status:          HEALTHY" in text.stdout and str(registry) in text.stdout
    for name in ("violations_total", *INVARIANT_FIELDS):
        assert f"{name}=0" in text.stdout
    doc = json.loads(health(registry, "--json").stdout)
    assert doc["ok"] is True and doc["problems"] == [] and doc["integrity_check"] == ["ok"]
    assert doc["rows"]["position"] == 30 and doc["rows"]["transition"] == 30 * 4
    assert doc["schema"] == {
        "code": SCHEMA_VERSION,
        "table": SCHEMA_VERSION,
        "user_version": doc["schema"]["user_version"],
    }
    assert set(doc["audit"]) == {"violations_total", *INVARIANT_FIELDS, "details", "scope"}
    assert doc["anchors"] == {} and doc["notes"] == []
    assert doc["size_bytes"] == registry.stat().st_size
    assert registry.read_bytes() == before, "the health check wrote to the registry"


def test_missing_file_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "position_registry.db"
    result = health(missing)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and str(missing) in result.stderr and "does not exist" in result.stderr
    assert not missing.exists() and not missing.parent.exists()
    missing_here = tmp_path / "position_registry.db"
    assert health(missing_here, "--json").returncode == 2
    assert list(tmp_path.iterdir()) == []


def test_locked_file(registry: Path) -> None:
    holder = sqlite3.connect(registry)
    try:
        holder.execute("PRAGMA locking_mode = EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("UPDATE position SET updated_ms = updated_ms WHERE id = 1")
        result = health(registry, "--busy-timeout-ms", "50")
    finally:
        holder.rollback()
        holder.close()
    assert result.returncode == 1
    assert "locked" in result.stderr and str(registry) in result.stderr and "Traceback" not in result.stderr
    assert health(registry).returncode == 0


@pytest.mark.parametrize(
    ("args", "limit_s"),
    [
        ((), 4.0),  # the default wait (1 s) plus interpreter start, well under the registry connection's 5 s
        (("--busy-timeout-ms", "100"), 3.0),
        (("--reset-anchors", "--busy-timeout-ms", "100"), 3.0),
        (("--reset-anchors", "--execute", "--busy-timeout-ms", "100"), 3.0),
    ],
    ids=["check_default", "check_100ms", "reset_dry_run_100ms", "reset_execute_100ms"],
)
def test_lock_is_reported_after_the_timeout_asked_for(registry: Path, args: tuple[str, ...], limit_s: float) -> None:
    before = registry.read_bytes()
    holder = sqlite3.connect(registry)
    try:
        holder.execute("PRAGMA locking_mode = EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("UPDATE position SET updated_ms = updated_ms WHERE id = 1")
        started = time.monotonic()
        result = health(registry, *args)
        elapsed = time.monotonic() - started
    finally:
        holder.rollback()
        holder.close()
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "is locked by another process" in result.stderr and "Traceback" not in result.stderr
    assert elapsed < limit_s, f"the lock was reported after {elapsed:.1f}s"
    assert registry.read_bytes() == before


def test_directory_instead_of_file(tmp_path: Path) -> None:
    result = health(tmp_path)
    assert result.returncode == 2 and "not a file" in result.stderr


def test_newer_schema_version_is_a_problem(registry: Path) -> None:
    with raw(registry) as c:
        c.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    result = health(registry)
    assert result.returncode == 1 and "newer than this code" in result.stderr


def test_missing_schema_version_is_a_problem(registry: Path) -> None:
    with raw(registry) as c:
        c.execute("DELETE FROM schema_version")
        c.execute("PRAGMA user_version = 0")
    result = health(registry)
    assert result.returncode == 1 and "no schema version" in result.stderr


def test_foreign_sqlite_database(tmp_path: Path) -> None:
    other = tmp_path / "candles.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE candle (ts INTEGER, close TEXT)")
    conn.commit()
    conn.close()
    result = health(other)
    assert result.returncode == 1 and "missing tables" in result.stderr and "Traceback" not in result.stderr


def test_recorded_unowned_fills_are_a_note_not_a_problem(registry: Path) -> None:
    """A fill no position could own is accounted for (recorded, reported once as UNOWNED_FILL): the health check names
    the latest for an operator who investigates the alert, and the registry stays HEALTHY."""
    reg = Registry.open(registry, FakeClock())
    at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    fill = VenueFill("f-9", "o-9", None, "PF_XBTUSD", Side.SELL, Decimal("0.003"), Decimal(63707), at)
    assert reg.record_unowned(fill, position_uid=None, reason="larger than what position p1 holds")
    assert not reg.record_unowned(fill, position_uid=None, reason="again")  # once
    reg.close()
    doc = json.loads(health(registry, "--json").stdout)
    assert doc["ok"] is True and doc["rows"]["unowned_fill"] == 1
    [note] = doc["notes"]
    assert note.startswith("1 unowned fill(s) recorded") and "f-9 PF_XBTUSD sell 0.003 @ 63707" in note
    assert "2026-03-01T12:00:00" in note and note.endswith("larger than what position p1 holds")
