"""Chain anchors: what a tail audit sees, what only the full audit sees, and what only an anchor can reveal.

Every test uses a real registry file; damage is done with raw SQL (triggers dropped), as in test_audit_fields.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from lifecycle.clock import FakeClock
from store import chain
from store.anchors import (
    StoredAnchor,
    audit_and_anchor,
    clear_anchors,
    full_audit_due,
    load_anchors,
    record_anchors,
)
from store.audit import SCOPE_FULL, SCOPE_TAIL, AuditReport, ChainHead, run_audit
from store.db import connect
from tests.audit.helpers import nonzero, one, raw, rechain, small_registry
from tests.lifecycle.helpers import drive_to, open_registry

DAY_MS = 86_400_000
T0 = 1_800_000_000_000


def _audit(path: Path, *, full: bool) -> AuditReport:
    db = connect(path, readonly=True)
    try:
        anchors = {name: a.head for name, a in load_anchors(db).items()}
        return run_audit(db, anchors=anchors, full=full)
    finally:
        db.close()


def _anchor(path: Path, now_ms: int = T0, *, force_full: bool = False) -> AuditReport:
    db = connect(path)
    try:
        return audit_and_anchor(db, now_ms, full_every_ms=DAY_MS, force_full=force_full)
    finally:
        db.close()


def _append_history(path: Path) -> None:
    """Legal rows after the anchors, written by the registry itself: a closed round trip on a fresh symbol."""
    reg = open_registry(path, FakeClock())
    try:
        drive_to(reg, "CLOSED", symbol="PF_XMRUSD")
    finally:
        reg.close()


@pytest.fixture
def anchored(tmp_path: Path) -> Path:
    """A legal registry whose anchors a clean full audit has just recorded, with more legal rows after them."""
    path = small_registry(tmp_path / "reg.db")
    first = _anchor(path)
    assert first.ok and first.scope == SCOPE_FULL
    _append_history(path)
    return path


def test_first_audit_is_full_then_tail_until_the_interval_passes(tmp_path: Path) -> None:
    path = small_registry(tmp_path / "reg.db")
    first = _anchor(path, T0)
    assert (first.ok, first.scope) == (True, SCOPE_FULL)
    db = connect(path, readonly=True)
    stored = load_anchors(db)
    db.close()
    assert set(stored) == {"transition", "fill"}
    assert all(a.full_verified_ms == T0 and a.verified_ms == T0 for a in stored.values())
    assert stored["fill"].head == first.heads["fill"] and first.heads["fill"].rows > 0
    _append_history(path)
    second = _anchor(path, T0 + 1000)
    assert (second.ok, second.scope) == (True, SCOPE_TAIL)
    db = connect(path, readonly=True)
    moved = load_anchors(db)
    db.close()
    assert moved["fill"].head.through_id > stored["fill"].head.through_id
    assert moved["fill"].full_verified_ms == T0 and moved["fill"].verified_ms == T0 + 1000
    third = _anchor(path, T0 + DAY_MS)
    assert third.scope == SCOPE_FULL


def test_tail_and_full_agree_on_a_legal_registry(anchored: Path) -> None:
    tail, full = _audit(anchored, full=False), _audit(anchored, full=True)
    assert tail.ok and full.ok, (tail.summary(), full.summary())
    assert (tail.scope, full.scope) == (SCOPE_TAIL, SCOPE_FULL)
    assert tail.heads == full.heads
    with sqlite3.connect(anchored) as c:
        assert full.heads["fill"].rows == one(c, "SELECT count(*) FROM fill")[0]
        assert full.heads["transition"].through_id == one(c, "SELECT max(id) FROM transition")[0]


def test_tail_audit_catches_damage_after_the_anchor(anchored: Path) -> None:
    with raw(anchored) as c:
        (fid,) = one(c, "SELECT max(id) FROM fill")
        c.execute("UPDATE fill SET price = price || '1' WHERE id = ?", (fid,))
    report = _audit(anchored, full=False)
    assert report.scope == SCOPE_TAIL
    assert report.fill_chain_breaks == 1 and report.details["fill_chain_breaks"] == [f"fill#{fid}"]


def test_illegal_transition_after_the_anchor_is_counted_by_the_tail_audit(anchored: Path) -> None:
    with raw(anchored) as c:
        pid, prev = c.execute("SELECT position_id, row_hash FROM transition ORDER BY id DESC LIMIT 1").fetchone()
        # CLOSED -> OPEN is in no spec row; chained correctly, so only the legality check can see it.
        h = chain.transition_hash(prev, pid, "entry_filled", "CLOSED", "OPEN", "forged", T0)
        c.execute(
            "INSERT INTO transition (position_id, event, source, target, cause, at_ms, prev_hash, row_hash)"
            " VALUES (?, 'entry_filled', 'CLOSED', 'OPEN', 'forged', ?, ?, ?)",
            (pid, T0, prev, h),
        )
    report = _audit(anchored, full=False)
    assert report.scope == SCOPE_TAIL
    assert "illegal_logged_transitions" in nonzero(report)
    assert report.transition_chain_breaks == 0


def test_tail_audit_leaves_rows_before_the_anchor_to_the_full_audit(anchored: Path) -> None:
    """The price of a short routine audit, stated as a test: a flip in a row the last clean audit already
    verified is not re-hashed until the next full audit (at most `intervals.full_audit` later)."""
    with raw(anchored) as c:
        (fid,) = one(c, "SELECT min(id) FROM fill")
        c.execute("UPDATE fill SET price = price || '1' WHERE id = ?", (fid,))
    assert _audit(anchored, full=False).ok
    full = _audit(anchored, full=True)
    assert full.fill_chain_breaks == 1 and full.details["fill_chain_breaks"] == [f"fill#{fid}"]


@pytest.mark.parametrize("full", [False, True], ids=["tail", "full"])
def test_rows_deleted_at_the_end_of_a_chain_are_found_only_through_the_anchor(tmp_path: Path, full: bool) -> None:
    path = small_registry(tmp_path / "reg.db")
    assert _anchor(path).ok
    with raw(path) as c:
        (last,) = c.execute("SELECT max(id) FROM fill").fetchone()
        c.execute("DELETE FROM fill WHERE id >= ?", (last - 1,))
        # Keep the quantity cross-check quiet, as a careful editor would: only the chain's end is left as evidence.
        c.execute(
            "UPDATE position SET remaining_qty_units = (SELECT coalesce(sum(iif(is_entry, qty_units, -qty_units)), 0)"
            " FROM fill WHERE fill.position_id = position.id)"
        )
    db = connect(path, readonly=True)
    try:
        assert run_audit(db).ok, "without anchors a deletion at the end of a chain is invisible"
    finally:
        db.close()
    report = _audit(path, full=full)
    assert nonzero(report) == {"fill_chain_breaks"}
    assert report.fill_chain_breaks == 1
    assert report.details["fill_chain_breaks"][0].startswith(f"fill#{last} (anchor:")
    assert report.scope == SCOPE_FULL  # an anchor that does not hold sends its chain to a full re-hash


def test_row_deleted_before_the_anchor_and_rechained_changes_the_count(anchored: Path) -> None:
    with raw(anchored) as c:
        (fid,) = one(c, "SELECT min(id) FROM fill")
        c.execute("DELETE FROM fill WHERE id = ?", (fid,))
        c.execute(
            "UPDATE position SET remaining_qty_units = (SELECT coalesce(sum(iif(is_entry, qty_units, -qty_units)), 0)"
            " FROM fill WHERE fill.position_id = position.id)"
        )
        rechain(c, "fill")  # the tamperer recomputes every hash: the anchor's stored hash no longer matches either
    report = _audit(anchored, full=False)
    assert report.fill_chain_breaks == 1 and "(anchor:" in report.details["fill_chain_breaks"][0]


@pytest.mark.parametrize("column", ["through_hash", "rows", "through_id"])
def test_a_damaged_anchor_row_is_a_finding(anchored: Path, column: str) -> None:
    with raw(anchored) as c:
        value = {"through_hash": "'" + "f" * 64 + "'", "rows": "rows + 1", "through_id": "through_id - 1"}[column]
        c.execute(f"UPDATE chain_anchor SET {column} = {value} WHERE chain = 'transition'")
    report = _audit(anchored, full=False)
    assert nonzero(report) == {"transition_chain_breaks"}
    assert "(anchor:" in report.details["transition_chain_breaks"][0]


def test_cleared_anchors_mean_a_full_clean_audit(anchored: Path) -> None:
    with raw(anchored) as c:
        c.execute("UPDATE chain_anchor SET through_hash = ? WHERE chain = 'fill'", ("0" * 64,))
    assert not _audit(anchored, full=False).ok
    db = connect(anchored)
    try:
        assert clear_anchors(db) == 2
    finally:
        db.close()
    report = _anchor(anchored, T0 + 5)
    assert report.ok and report.scope == SCOPE_FULL


def test_failed_audit_never_moves_the_anchors(anchored: Path) -> None:
    db = connect(anchored, readonly=True)
    before = load_anchors(db)
    db.close()
    with raw(anchored) as c:
        c.execute("UPDATE position SET remaining_qty_units = -1 WHERE id = (SELECT min(id) FROM position)")
    report = _anchor(anchored, T0 + 5)
    assert not report.ok
    db = connect(anchored)
    try:
        assert load_anchors(db) == before
        with pytest.raises(ValueError, match="refusing to anchor"):
            record_anchors(db, report, T0 + 6)
    finally:
        db.close()


def test_empty_registry_anchors_at_genesis(tmp_path: Path) -> None:
    reg = open_registry(tmp_path / "empty.db")
    reg.close()
    first = _anchor(tmp_path / "empty.db")
    assert first.ok and first.heads["fill"] == ChainHead(0, chain.GENESIS, 0)
    second = _anchor(tmp_path / "empty.db", T0 + 1)
    assert second.ok and second.scope == SCOPE_TAIL


def _stored(full_ms: int | None) -> StoredAnchor:
    return StoredAnchor(ChainHead(1, "a" * 64, 1), T0, full_ms)


@pytest.mark.parametrize(
    ("anchors", "due"),
    [
        ({}, True),
        ({"fill": _stored(T0)}, True),  # one chain never anchored
        ({"fill": _stored(T0), "transition": _stored(None)}, True),  # never re-hashed in full
        ({"fill": _stored(T0), "transition": _stored(T0 - DAY_MS)}, True),  # exactly one interval ago
        ({"fill": _stored(T0), "transition": _stored(T0 - DAY_MS + 1)}, False),
    ],
    ids=["none", "one-missing", "never-full", "interval-elapsed", "fresh"],
)
def test_full_audit_due(anchors: dict[str, StoredAnchor], due: bool) -> None:
    assert full_audit_due(anchors, T0, DAY_MS) is due


def test_one_anchor_row_deleted_is_a_finding_not_a_silent_re_anchor(anchored: Path) -> None:
    with raw(anchored) as c:
        c.execute("DELETE FROM chain_anchor WHERE chain = 'fill'")
    report = _anchor(anchored, T0 + 5)
    assert nonzero(report) == {"fill_chain_breaks"}
    assert "anchor: missing or unreadable" in report.details["fill_chain_breaks"][0]
    db = connect(anchored, readonly=True)
    try:
        assert set(load_anchors(db)) == {"transition"}  # a failed audit anchors nothing
    finally:
        db.close()


def test_an_unreadable_anchor_table_is_a_finding_for_every_chain(anchored: Path) -> None:
    with raw(anchored) as c:
        c.execute("UPDATE chain_anchor SET rows = 'many' WHERE chain = 'transition'")
    report = _anchor(anchored, T0 + 5)
    assert nonzero(report) == {"fill_chain_breaks", "transition_chain_breaks"}
    assert report.scope == SCOPE_FULL
