"""Corruptions that the first field tests did not pin, each found by a mutation of the audit that survived them.

Each case below names the audit predicate it guards: weaken that predicate (a mutation review did) and this case
fails. As in test_audit_fields: a real registry file, damaged with raw SQL (triggers dropped), must move exactly
the expected fields, and the health tool must exit 1 naming one of them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from store import chain
from store.anchors import audit_and_anchor, load_anchors
from store.audit import run_audit
from store.db import connect
from tests.audit.helpers import (
    Corruption,
    assert_corruption_moves_exactly,
    audit,
    nonzero,
    one,
    raw,
    rechain,
    small_registry,
)
from tests.lifecycle.helpers import drive_to, open_registry

FRESH_SYMBOL = "PF_ZECUSD"  # a key the generated registry never uses, so a new active position is legal
EXPOSED = "SELECT id, remaining_qty_units FROM position WHERE state IN ('OPEN', 'PROTECTED', 'EXITING') LIMIT 1"


def _append_exit_fill(c: sqlite3.Connection, position_id: int, qty: int) -> None:
    """An exit fill chained correctly onto the ledger's end: only the quantity checks can object to it."""
    (prev,) = one(c, "SELECT row_hash FROM fill ORDER BY id DESC LIMIT 1")
    price, ms = "99.5", 1_800_000_000_000
    h = chain.fill_hash(str(prev), "OVER-1", position_id, "sell", False, qty, price, ms)
    c.execute(
        "INSERT INTO fill (fill_id, position_id, side, is_entry, qty_units, price, fill_ms, recorded_ms, prev_hash,"
        " row_hash) VALUES ('OVER-1', ?, 'sell', 0, ?, ?, ?, ?, ?, ?)",
        (position_id, qty, price, ms, ms, prev, h),
    )


def first_row_is_not_a_creation(c: sqlite3.Connection) -> None:
    # Guards `p.id IS NULL AND t.source IS NOT NULL`: a history must start with open_intent or import.
    (pid,) = one(c, "SELECT position_id FROM transition GROUP BY position_id HAVING count(*) >= 2 LIMIT 1")
    (first,) = one(c, "SELECT min(id) FROM transition WHERE position_id = ?", (pid,))
    c.execute("DELETE FROM transition WHERE id = ?", (first,))
    rechain(c, "transition")


def negative_remaining_that_matches_the_ledger(c: sqlite3.Connection) -> None:
    # Guards `remaining_qty_units < 0`: the ledger agrees with the stored value, yet more was sold than held.
    pid, remaining = one(c, EXPOSED)
    _append_exit_fill(c, int(str(pid)), int(str(remaining)) + 5)
    c.execute("UPDATE position SET remaining_qty_units = -5 WHERE id = ?", (pid,))


def closed_position_oversold(c: sqlite3.Connection) -> None:
    # Guards `remaining_qty_units != 0` in terminal_with_open_qty (not `> 0`): a closed position left short.
    (pid,) = one(c, "SELECT id FROM position WHERE state = 'CLOSED' LIMIT 1")
    _append_exit_fill(c, int(str(pid)), 5)
    c.execute("UPDATE position SET remaining_qty_units = -5 WHERE id = ?", (pid,))


def protected_with_a_blank_stop_id(c: sqlite3.Connection) -> None:
    # Guards `coalesce(trim(sl_order_id), '') = ''`: whitespace names no order, exactly as the registry reads it.
    (pid,) = one(c, "SELECT id FROM position WHERE state = 'PROTECTED' LIMIT 1")
    c.execute("UPDATE position SET sl_order_id = '   ' WHERE id = ?", (pid,))


def quantity_without_any_fill(c: sqlite3.Connection) -> None:
    # Guards `IS NOT coalesce(f.net, 0)`: a position with no ledger row at all must hold nothing.
    (pid,) = one(c, "SELECT p.id FROM position p WHERE p.symbol_key = ?", (FRESH_SYMBOL,))
    c.execute("UPDATE position SET remaining_qty_units = 3 WHERE id = ?", (pid,))


def position_without_any_log_row(c: sqlite3.Connection) -> None:
    # Guards `t.target IS NOT p.state` (not `!=`): a position whose whole history is gone. Its only row is the
    # chain's last, so the chain itself still verifies (no anchors here).
    (pid,) = one(c, "SELECT p.id FROM position p WHERE p.symbol_key = ?", (FRESH_SYMBOL,))
    c.execute("DELETE FROM transition WHERE position_id = ?", (pid,))


CASES: list[tuple[Corruption, set[str]]] = [
    (first_row_is_not_a_creation, {"illegal_logged_transitions"}),
    (negative_remaining_that_matches_the_ledger, {"remaining_qty_violations"}),
    (closed_position_oversold, {"remaining_qty_violations", "terminal_with_open_qty"}),
    (protected_with_a_blank_stop_id, {"protected_without_stop"}),
    (quantity_without_any_fill, {"remaining_qty_violations"}),
    (position_without_any_log_row, {"state_log_mismatch"}),
]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The generated registry plus one fill-less PENDING_ENTRY position written by the registry itself (last in
    the transition chain)."""
    path = small_registry(tmp_path_factory.mktemp("kills") / "registry.db", seed=13)
    reg = open_registry(path)
    try:
        drive_to(reg, "PENDING_ENTRY", symbol=FRESH_SYMBOL)
    finally:
        reg.close()
    report = audit(path)
    assert report.ok, report.summary()
    with sqlite3.connect(path) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.read_bytes()


@pytest.mark.parametrize(("corrupt", "expected"), CASES, ids=[c.__name__ for c, _ in CASES])
def test_corruption_moves_exactly_its_fields(
    tmp_path: Path, pristine: bytes, corrupt: Corruption, expected: set[str]
) -> None:
    assert_corruption_moves_exactly(tmp_path / "registry.db", pristine, corrupt, expected)


@pytest.mark.parametrize(
    "damage",
    ["through_id = 0", "through_id = 0, rows = 0", "through_id = 0, rows = 0, through_hash = '" + "f" * 64 + "'"],
    ids=["id-zeroed", "id-and-rows-zeroed", "genesis-hash-damaged"],
)
def test_an_anchor_damaged_toward_genesis_is_a_finding(tmp_path: Path, damage: str) -> None:
    """Guards `_anchor_holds` for through_id 0: only an empty chain's exact head (0 rows, the genesis hash) holds
    there. An anchor row edited to point at the start would otherwise vouch for nothing and hide the edit."""
    path = small_registry(tmp_path / "registry.db")
    db = connect(path)
    try:
        assert audit_and_anchor(db, 1_800_000_000_000).ok
    finally:
        db.close()
    with raw(path) as c:
        c.execute(f"UPDATE chain_anchor SET {damage} WHERE chain = 'fill'")
    db = connect(path, readonly=True)
    try:
        anchors = {name: a.head for name, a in load_anchors(db).items()}
        report = run_audit(db, anchors=anchors, full=False)
    finally:
        db.close()
    assert nonzero(report) == {"fill_chain_breaks"}, report.summary()
    assert "(anchor:" in report.details["fill_chain_breaks"][0]
