"""Shared by the audit, corruption and health-check tests: real registry files and ways to damage them."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.registry_factory import build_registry
from store import chain
from store.audit import AuditReport, run_audit
from store.db import connect

REPO = Path(__file__).resolve().parents[2]


def small_registry(path: Path, *, seed: int = 7, positions: int = 80) -> Path:
    return build_registry(path, positions=positions, transitions_per_position=4, fills_per_position=4, seed=seed)


def audit(path: Path) -> AuditReport:
    db = connect(path, readonly=True)
    try:
        return run_audit(db)
    finally:
        db.close()


def nonzero(report: AuditReport) -> set[str]:
    return {name for name, count in report.fields().items() if count and name != "violations_total"}


@contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection with the append-only triggers dropped while it is open, committed on exit, and
    the triggers put back as they were (a careful tamperer's edit: the schema drift check sees nothing)."""
    conn = sqlite3.connect(path)
    try:
        triggers = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
        for name, _ in triggers:
            conn.execute(f'DROP TRIGGER "{name}"')
        yield conn
        for _, sql in triggers:
            conn.execute(sql)
        conn.commit()
    finally:
        conn.close()


def rechain(conn: sqlite3.Connection, table: str) -> None:
    """Recompute a whole chain, as a tamperer who knows the scheme would; only the other checks can catch it."""
    prev = chain.GENESIS
    if table == "transition":
        rows = conn.execute(
            "SELECT id, position_id, event, source, target, cause, at_ms FROM transition ORDER BY id"
        ).fetchall()
        for rid, pid, event, source, target, cause, at_ms in rows:
            h = chain.transition_hash(prev, pid, event, source, target, cause, at_ms)
            conn.execute("UPDATE transition SET prev_hash = ?, row_hash = ? WHERE id = ?", (prev, h, rid))
            prev = h
    else:
        rows = conn.execute(
            "SELECT id, fill_id, position_id, side, is_entry, qty_units, price, fill_ms FROM fill ORDER BY id"
        ).fetchall()
        for rid, fid, pid, side, is_entry, qty, price, fms in rows:
            h = chain.fill_hash(prev, fid, pid, side, bool(is_entry), qty, price, fms)
            conn.execute("UPDATE fill SET prev_hash = ?, row_hash = ? WHERE id = ?", (prev, h, rid))
            prev = h


def one(conn: sqlite3.Connection, sql: str, params: tuple[object, ...] = ()) -> tuple[object, ...]:
    row = conn.execute(sql, params).fetchone()
    assert row is not None, f"the fixture registry has no row for: {sql}"
    return tuple(row)


def health(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real tool as an operator would, in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "tools.check_db_health", "--db", str(path), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


Corruption = Callable[[sqlite3.Connection], None]


def assert_corruption_moves_exactly(path: Path, pristine: bytes, corrupt: Corruption, expected: set[str]) -> None:
    """Write `pristine` to `path`, damage it with raw SQL, and see exactly the `expected` audit fields go non-zero,
    each naming its rows, and check_db_health fail on it with one of them and no traceback."""
    path.write_bytes(pristine)
    with raw(path) as c:
        corrupt(c)
    report = audit(path)
    assert nonzero(report) == expected, report.summary()
    assert report.violations_total == sum(getattr(report, f) for f in expected) > 0
    assert not report.ok
    for name in expected:
        assert report.details[name], f"{name} has no offending rows to show"
    result = health(path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert any(name in result.stderr for name in expected)
