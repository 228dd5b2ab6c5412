"""INV-11 invalid_position_values and INV-12 fill_side_mismatch: position rows are not hash-chained, so damage to
their values is found by what a registry never writes (INV-11) and, for a position's direction, by the chained
ledger (INV-12). Each case corrupts a real registry file with raw SQL; the registry itself refuses to write a fill
on the wrong side."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from lifecycle.clock import FakeClock
from store import chain
from store.anchors import audit_and_anchor, load_anchors
from store.audit import SCOPE_TAIL, AuditReport, run_audit
from store.db import connect
from store.registry import FillSideMismatch
from tests.audit.helpers import audit, nonzero, one, raw, small_registry
from tests.lifecycle.helpers import drive_to, open_registry, snapshot

EXPOSED = "SELECT id FROM position WHERE state IN ('OPEN', 'PROTECTED', 'EXITING') ORDER BY id LIMIT 1"
T0 = 1_800_000_000_000


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = small_registry(tmp_path_factory.mktemp("pristine") / "registry.db", seed=5)
    assert audit(path).ok
    return path.read_bytes()


def corrupted(tmp_path: Path, pristine: bytes, sql: str) -> AuditReport:
    path = tmp_path / "registry.db"
    path.write_bytes(pristine)
    with raw(path) as c:
        (pid,) = one(c, EXPOSED)
        c.execute(sql, {"pid": pid})
    return audit(path)


def anchored_registry(tmp_path: Path) -> Path:
    """A legal registry whose chain anchors a clean full audit has just recorded."""
    path = small_registry(tmp_path / "registry.db", seed=5)
    db = connect(path)
    try:
        assert audit_and_anchor(db, T0, full_every_ms=86_400_000, force_full=True).ok
    finally:
        db.close()
    return path


def tail_and_full(path: Path) -> tuple[AuditReport, AuditReport]:
    """The daemon's tail audit from the stored anchors, and a full one, on the same file."""
    db = connect(path, readonly=True)
    try:
        anchors = {name: a.head for name, a in load_anchors(db).items()}
        return run_audit(db, anchors=anchors, full=False), run_audit(db, anchors=anchors, full=True)
    finally:
        db.close()


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE position SET side = 'LONG' WHERE id = :pid",
        "UPDATE position SET origin = 'strategz' WHERE id = :pid",
        "UPDATE position SET entry_price = '-100' WHERE id = :pid",
        "UPDATE position SET entry_price = '0' WHERE id = :pid",
        "UPDATE position SET stop_price = '1.2.3' WHERE id = :pid",
        "UPDATE position SET stop_price = '' WHERE id = :pid",
        "UPDATE position SET take_profit_price = 'NaN' WHERE id = :pid",
        "UPDATE position SET stop_price = CAST('95' AS BLOB) WHERE id = :pid",  # TEXT affinity keeps only a BLOB
        "UPDATE position SET target_qty_units = -1 WHERE id = :pid",
        "UPDATE position SET target_qty_units = '1000' || char(0) WHERE id = :pid",
        "UPDATE position SET created_ms = 0 WHERE id = :pid",
        "UPDATE position SET updated_ms = 'soon' WHERE id = :pid",
    ],
)
def test_a_value_the_registry_never_writes_is_invalid_position_values(
    tmp_path: Path, pristine: bytes, sql: str
) -> None:
    report = corrupted(tmp_path, pristine, sql)
    assert nonzero(report) == {"invalid_position_values"}, report.summary()
    assert report.invalid_position_values == 1 and len(report.details["invalid_position_values"]) == 1


def test_a_closed_timestamp_of_the_wrong_type_is_invalid(tmp_path: Path, pristine: bytes) -> None:
    path = tmp_path / "registry.db"
    path.write_bytes(pristine)
    with raw(path) as c:
        c.execute("UPDATE position SET closed_ms = closed_ms + 0.5 WHERE id = (SELECT min(id) FROM position"
                  " WHERE state = 'CLOSED')")  # fmt: skip
    report = audit(path)
    assert nonzero(report) == {"invalid_position_values"}, report.summary()


def test_a_flipped_side_is_seen_through_the_ledger_and_named(tmp_path: Path, pristine: bytes) -> None:
    path = tmp_path / "registry.db"
    path.write_bytes(pristine)
    with raw(path) as c:
        uid, pid = c.execute("SELECT uid, id FROM position WHERE side = 'short' LIMIT 1").fetchone()
        c.execute("UPDATE position SET side = 'long' WHERE id = ?", (pid,))
    report = audit(path)
    assert nonzero(report) == {"fill_side_mismatch"}, report.summary()
    assert report.details["fill_side_mismatch"] == [uid]


def test_a_wrong_side_fill_after_the_anchor_is_found_by_the_tail_audit(tmp_path: Path) -> None:
    """A later fill of an old position: its first fill is right, so only the tail's per-fill check sees it."""
    path = anchored_registry(tmp_path)
    with raw(path) as c:
        pid, side, units = c.execute(
            "SELECT id, side, remaining_qty_units FROM position WHERE state = 'PROTECTED' LIMIT 1"
        ).fetchone()
        wrong = "sell" if side == "long" else "buy"  # an *entry* on the exit side
        (prev,) = one(c, "SELECT row_hash FROM fill ORDER BY id DESC LIMIT 1")
        h = chain.fill_hash(str(prev), "WRONG-1", pid, wrong, True, 1000, "100", T0)
        c.execute(
            "INSERT INTO fill (fill_id, position_id, side, is_entry, qty_units, price, fill_ms, recorded_ms,"
            " prev_hash, row_hash) VALUES ('WRONG-1', ?, ?, 1, 1000, '100', ?, ?, ?, ?)",
            (pid, wrong, T0, T0, prev, h),
        )
        c.execute("UPDATE position SET remaining_qty_units = ? WHERE id = ?", (units + 1000, pid))
    tail, full = tail_and_full(path)
    assert tail.scope == SCOPE_TAIL
    assert nonzero(tail) == nonzero(full) == {"fill_side_mismatch"}, (tail.summary(), full.summary())


@pytest.mark.parametrize("is_entry", [True, False])
def test_the_registry_refuses_a_fill_on_the_wrong_side_and_records_nothing(tmp_path: Path, is_entry: bool) -> None:
    path = tmp_path / "registry.db"
    reg = open_registry(path, FakeClock())
    try:
        pos = drive_to(reg, "PROTECTED")  # a long
        purpose, side = ("entry", "sell") if is_entry else ("exit", "buy")
        coid = reg.record_order_intent(pos.uid, purpose=purpose, side=side, order_type="market", qty=Decimal("0.001"))
        before = snapshot(path)
        with pytest.raises(FillSideMismatch, match="nothing recorded"):
            reg.record_fill(
                fill_id="F-wrong",
                client_order_id=coid.client_order_id,
                side=side,
                qty=Decimal("0.001"),
                price=Decimal(100),
                fill_time=reg.clock.now(),
            )
        assert snapshot(path) == before
    finally:
        reg.close()


def test_a_legal_registry_with_both_sides_is_clean(tmp_path: Path) -> None:
    path = small_registry(tmp_path / "registry.db", seed=5)
    with sqlite3.connect(path) as c:
        assert {s for (s,) in c.execute("SELECT DISTINCT side FROM position")} == {"long", "short"}
    assert audit(path).ok


def test_a_flipped_side_of_an_old_position_is_left_to_the_full_audit(tmp_path: Path) -> None:
    """Every fill of that position lies before the anchor, which a tail audit does not re-read (docs/audit.md,
    "Scope"); the next full audit names it. An active position's flip also shows in reconciliation at once."""
    path = anchored_registry(tmp_path)
    with raw(path) as c:
        uid, pid = c.execute("SELECT uid, id FROM position WHERE side = 'long' ORDER BY id LIMIT 1").fetchone()
        c.execute("UPDATE position SET side = 'short' WHERE id = ?", (pid,))
    tail, full = tail_and_full(path)
    assert (tail.scope, tail.ok) == (SCOPE_TAIL, True)
    assert nonzero(full) == {"fill_side_mismatch"} and full.details["fill_side_mismatch"] == [uid]
