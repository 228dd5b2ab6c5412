"""check_db_health and the chain anchors, on real registry files: the report, the findings only an anchor can
show (rows deleted at the end of a chain, a damaged anchor row), and `--reset-anchors`."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from store.anchors import audit_and_anchor
from store.audit import SCOPE_FULL
from store.db import connect
from store.migrations import ensure_schema
from store.models import SCHEMA_VERSION
from tests.audit.helpers import health, raw, small_registry

NOW_MS = 1_700_000_000_000
NOW_ISO = "2023-11-14T22:13:20Z"
POSITIONS = 30


def anchor(path: Path, now_ms: int = NOW_MS) -> None:
    """What the daemon does on a clean audit: record where each chain ends."""
    db = connect(path)
    try:
        assert ensure_schema(db) == [], "build_registry should already write the current schema"
        report = audit_and_anchor(db, now_ms)
        assert report.ok, report.summary()
    finally:
        db.close()


def anchor_rows(path: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT chain, through_id, through_hash, rows FROM chain_anchor ORDER BY chain").fetchall()
    finally:
        conn.close()


def last_id(path: Path, table: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f'SELECT max(id) FROM "{table}"').fetchone()[0])
    finally:
        conn.close()


def as_json(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    doc = json.loads(result.stdout)
    assert isinstance(doc, dict)
    return doc


def audit_of(doc: dict[str, object]) -> dict[str, object]:
    audit = doc["audit"]
    assert isinstance(audit, dict)
    return audit


def details(doc: dict[str, object], name: str) -> list[str]:
    found = audit_of(doc)["details"]
    assert isinstance(found, dict)
    return list(found.get(name, []))


def reset(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return health(path, "--reset-anchors", *args)


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    return small_registry(tmp_path / "registry.db", positions=POSITIONS)


@pytest.fixture
def anchored(registry: Path) -> Path:
    anchor(registry)
    return registry


def test_clean_anchored_registry_reports_its_anchors(anchored: Path) -> None:
    before = anchored.read_bytes()
    text = health(anchored)
    assert text.returncode == 0, text.stderr
    assert "status:          HEALTHY" in text.stdout
    transitions, fills = last_id(anchored, "transition"), last_id(anchored, "fill")
    assert (
        f"anchors:         transition: through_id={transitions} rows={transitions} " in text.stdout
        and f"fill: through_id={fills} rows={fills} " in text.stdout
    )
    assert text.stdout.count(f"verified={NOW_ISO} last_full={NOW_ISO}") == 2
    assert "scope=full" in text.stdout

    doc = as_json(health(anchored, "--json"))
    assert doc["ok"] is True
    stored = {
        str(chain): (through_id, through_hash, rows) for chain, through_id, through_hash, rows in anchor_rows(anchored)
    }
    anchors = doc["anchors"]
    assert isinstance(anchors, dict) and list(anchors) == ["transition", "fill"]
    for name, a in anchors.items():
        assert (a["through_id"], a["through_hash"], a["rows"]) == stored[name]
        assert a["verified"] == NOW_ISO and a["last_full_verification"] == NOW_ISO
        assert a["verified_ms"] == NOW_MS and a["full_verified_ms"] == NOW_MS
    # Full even though anchors exist: a tail audit would say "tail" and skip the rows before the anchors.
    assert audit_of(doc)["scope"] == SCOPE_FULL
    assert anchored.read_bytes() == before, "the health check wrote to the registry"


def test_registry_without_anchors_says_none_recorded_yet(registry: Path) -> None:
    text = health(registry)
    assert text.returncode == 0, text.stderr
    assert "anchors:         none recorded yet" in text.stdout
    doc = as_json(health(registry, "--json"))
    assert doc["anchors"] == {} and doc["ok"] is True


def test_a_tail_anchor_only_verified_never_shows_never(anchored: Path) -> None:
    with raw(anchored) as c:
        c.execute("UPDATE chain_anchor SET full_verified_ms = NULL")
    text = health(anchored)
    assert text.returncode == 0, text.stderr
    assert text.stdout.count("last_full=never") == 2
    anchors = as_json(health(anchored, "--json"))["anchors"]
    assert isinstance(anchors, dict)
    assert {a["last_full_verification"] for a in anchors.values()} == {"never"}


def test_last_fill_deleted_is_a_fill_chain_break_naming_the_anchor(anchored: Path) -> None:
    fills = last_id(anchored, "fill")
    with raw(anchored) as c:
        c.execute("DELETE FROM fill WHERE id = ?", (fills,))
    result = health(anchored, "--json")
    assert result.returncode == 1
    doc = as_json(result)
    assert doc["ok"] is False and audit_of(doc)["fill_chain_breaks"] == 1
    (label,) = details(doc, "fill_chain_breaks")
    assert label.startswith(f"fill#{fills} (anchor: a clean audit found {fills} rows")
    assert "Traceback" not in result.stderr and f"fill#{fills} (anchor:" in result.stderr
    text = health(anchored)
    assert text.returncode == 1 and "--reset-anchors --execute" in text.stdout


def test_damaged_anchor_hash_is_a_chain_break(anchored: Path) -> None:
    transitions = last_id(anchored, "transition")
    with raw(anchored) as c:
        c.execute("UPDATE chain_anchor SET through_hash = ? WHERE chain = 'transition'", ("f" * 64,))
    result = health(anchored, "--json")
    assert result.returncode == 1
    doc = as_json(result)
    assert audit_of(doc)["transition_chain_breaks"] == 1 and audit_of(doc)["fill_chain_breaks"] == 0
    (label,) = details(doc, "transition_chain_breaks")
    assert label.startswith(f"transition#{transitions} (anchor:") and "ffffffffffff" in label


def test_a_middle_row_rewritten_under_an_anchor_is_still_found(anchored: Path) -> None:
    # The daemon's tail audit would not re-hash this row (it lies before the anchor); the health check must.
    with raw(anchored) as c:
        (fid, price) = c.execute("SELECT id, price FROM fill ORDER BY id LIMIT 1 OFFSET 3").fetchone()
        flipped = str(price)[:-1] + ("1" if str(price)[-1] != "1" else "2")
        c.execute("UPDATE fill SET price = ? WHERE id = ?", (flipped, fid))
    doc = as_json(health(anchored, "--json"))
    assert audit_of(doc)["fill_chain_breaks"] == 1
    assert details(doc, "fill_chain_breaks") == [f"fill#{fid}"]


def test_unreadable_anchor_row_is_a_problem_and_the_reset_clears_it(anchored: Path) -> None:
    with raw(anchored) as c:
        c.execute("UPDATE chain_anchor SET through_id = 'twelve' WHERE chain = 'fill'")
    result = health(anchored)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "anchors:         unreadable" in result.stdout
    assert "chain_anchor is damaged (2 row(s)" in result.stderr
    dry = reset(anchored)
    assert dry.returncode == 1 and "would clear 2 chain anchor(s)" in dry.stdout and "could not be read" in dry.stdout
    assert reset(anchored, "--execute").returncode == 0
    assert health(anchored).returncode == 0


def test_a_missing_anchor_row_is_a_problem(anchored: Path) -> None:
    with raw(anchored) as c:
        c.execute("DELETE FROM chain_anchor WHERE chain = 'fill'")
    result = health(anchored)
    assert result.returncode == 1
    assert "no anchor for the fill chain" in result.stderr and "--reset-anchors" in result.stderr


def test_reset_dry_run_changes_nothing(anchored: Path) -> None:
    with raw(anchored) as c:
        c.execute("UPDATE chain_anchor SET through_hash = ? WHERE chain = 'fill'", ("0" * 64,))
    before, rows = anchored.read_bytes(), anchor_rows(anchored)
    text = reset(anchored)
    assert text.returncode == 1, text.stderr
    assert f"[dry-run] would clear 2 chain anchor(s) in {anchored}:" in text.stdout
    assert "transition: through_id=" in text.stdout and "--execute" in text.stdout
    doc = as_json(reset(anchored, "--json"))
    assert doc["ok"] is False and doc["execute"] is False and doc["cleared"] == 0 and doc["anchor_rows"] == 2
    assert anchored.read_bytes() == before and anchor_rows(anchored) == rows
    assert health(anchored).returncode == 1, "a dry-run must leave the finding in place"


def test_reset_execute_clears_the_anchors_and_the_daemon_anchors_again(anchored: Path) -> None:
    with raw(anchored) as c:
        c.execute("UPDATE chain_anchor SET through_hash = ? WHERE chain = 'fill'", ("0" * 64,))
    assert health(anchored).returncode == 1
    done = reset(anchored, "--execute", "--json")
    assert done.returncode == 0, done.stderr
    doc = as_json(done)
    assert doc["ok"] is True and doc["cleared"] == 2 and doc["next_daemon_audit"] == "full"
    assert anchor_rows(anchored) == []
    after = health(anchored)
    assert after.returncode == 0, after.stderr
    assert "anchors:         none recorded yet" in after.stdout
    again = reset(anchored, "--execute")
    assert again.returncode == 0 and "nothing to clear" in again.stdout
    # The reset accepted the chains' current ends: the daemon's next (full) audit anchors them there.
    anchor(anchored, NOW_MS + 1000)
    assert [(c, i) for c, i, _, _ in anchor_rows(anchored)] == [
        ("fill", last_id(anchored, "fill")),
        ("transition", last_id(anchored, "transition")),
    ]
    assert health(anchored).returncode == 0


def test_reset_execute_text_says_the_next_audit_is_full(anchored: Path) -> None:
    done = reset(anchored, "--execute")
    assert done.returncode == 0, done.stderr
    assert f"cleared 2 chain anchor(s) in {anchored}:" in done.stdout
    assert "the daemon's next audit will be a full one" in done.stdout


def test_reset_hides_nothing_the_full_audit_sees(anchored: Path) -> None:
    # The tail deletion also leaves a position whose ledger no longer sums up: clearing the anchor removes only
    # the anchor finding, which is why the reset comes after the ledger is rebuilt, never instead of it.
    with raw(anchored) as c:
        c.execute("DELETE FROM fill WHERE id = (SELECT max(id) FROM fill)")
    assert reset(anchored, "--execute").returncode == 0
    doc = as_json(health(anchored, "--json"))
    assert doc["ok"] is False
    assert audit_of(doc)["fill_chain_breaks"] == 0 and audit_of(doc)["remaining_qty_violations"] == 1


@pytest.mark.parametrize("holder_mode", ["write_transaction", "exclusive"])
def test_reset_execute_refused_while_the_registry_is_locked(anchored: Path, holder_mode: str) -> None:
    holder = sqlite3.connect(anchored, isolation_level=None)
    try:
        if holder_mode == "exclusive":
            holder.execute("PRAGMA locking_mode = EXCLUSIVE")
            holder.execute("BEGIN EXCLUSIVE")
        else:  # the daemon (WAL) in the middle of a write
            holder.execute("BEGIN IMMEDIATE")
        holder.execute("UPDATE position SET updated_ms = updated_ms WHERE id = 1")
        result = reset(anchored, "--execute", "--busy-timeout-ms", "50")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "locked" in result.stderr and "nothing was cleared" in result.stderr and str(anchored) in result.stderr
    assert len(anchor_rows(anchored)) == 2


def test_reset_never_creates_a_file(tmp_path: Path) -> None:
    missing = tmp_path / "position_registry.db"
    for args in ((), ("--execute",)):
        result = reset(missing, *args)
        assert result.returncode == 2 and "does not exist" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_execute_without_reset_anchors_is_a_usage_error(anchored: Path) -> None:
    result = health(anchored, "--execute")
    assert result.returncode == 2 and "--reset-anchors" in result.stderr
    assert len(anchor_rows(anchored)) == 2


def schema_1(path: Path) -> Path:
    """The file as schema version 1 left it: no chain_anchor table (the append-only triggers stay)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("DROP TABLE chain_anchor")
        conn.execute("DELETE FROM schema_version WHERE version > 1")
        conn.execute("PRAGMA user_version = 1")
        conn.commit()
    finally:
        conn.close()
    return path


def test_schema_1_file_gets_a_report_and_a_note(registry: Path) -> None:
    old = schema_1(registry)
    before = old.read_bytes()
    text = health(old)
    assert text.returncode == 0, text.stderr
    assert "anchors:         none recorded yet" in text.stdout
    assert f"schema version 1 is older than this code ({SCHEMA_VERSION})" in text.stdout
    doc = as_json(health(old, "--json"))
    assert (
        doc["ok"] is True
        and doc["anchors"] == {}
        and doc["schema"]
        == {
            "code": SCHEMA_VERSION,
            "table": 1,
            "user_version": 1,
        }
    )
    notes = doc["notes"]
    assert isinstance(notes, list) and any("migrates it" in n for n in notes)
    assert audit_of(doc)["violations_total"] == 0
    assert old.read_bytes() == before


def test_current_schema_without_chain_anchor_is_still_a_problem(registry: Path) -> None:
    with raw(registry) as c:
        c.execute("DROP TABLE chain_anchor")
    result = health(registry)
    assert result.returncode == 1 and "missing tables chain_anchor" in result.stderr


def test_reset_refuses_a_schema_1_file_and_does_not_migrate_it(registry: Path) -> None:
    old = schema_1(registry)
    before = old.read_bytes()
    for args in ((), ("--execute",)):
        result = reset(old, *args)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert "schema version 1, older than this code" in result.stderr and "nothing was changed" in result.stderr
    assert old.read_bytes() == before
    conn = sqlite3.connect(old)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    finally:
        conn.close()


def test_a_file_older_than_the_code_but_with_anchors_is_not_told_it_has_none(registry: Path) -> None:
    """A schema 6 file (before the unowned-fill record) has chain anchors: the note and the reset refusal say it
    is migrated at the daemon's next start, not that no anchors exist (true of schema 1 only)."""
    conn = sqlite3.connect(registry)
    try:
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'unowned_fill'"
        ):
            conn.execute(f'DROP TRIGGER "{name}"')
        conn.execute("DROP TABLE unowned_fill")
        conn.execute("DELETE FROM schema_version WHERE version > 6")
        conn.execute("PRAGMA user_version = 6")
        conn.commit()
    finally:
        conn.close()
    text = health(registry)
    assert text.returncode == 0, text.stderr
    assert f"schema version 6 is older than this code ({SCHEMA_VERSION})" in text.stdout
    assert "no chain anchors" not in text.stdout
    result = reset(registry, "--execute")
    assert result.returncode == 1 and "schema version 6, older than this code" in result.stderr
    assert "no chain anchors" not in result.stderr and "once migrated" in result.stderr
