"""Every audit field: a legal registry is clean; one deliberate corruption moves exactly the fields it should."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from specs.lifecycle import INVARIANT_FIELDS
from store import chain
from store.audit import RUNBOOK_FIELDS, AuditReport
from tests.audit.helpers import (
    assert_corruption_moves_exactly,
    audit,
    one,
    raw,
    rechain,
    small_registry,
)

ACTIVE_PROTECTED = "SELECT id FROM position WHERE state = 'PROTECTED' ORDER BY id LIMIT 1"
ACTIVE_EXPOSED = "SELECT id FROM position WHERE state IN ('OPEN', 'PROTECTED', 'EXITING') ORDER BY id LIMIT 1"
CLOSED = "SELECT id FROM position WHERE state = 'CLOSED' ORDER BY id LIMIT 1"


def dup_symbol(c: sqlite3.Connection) -> None:
    rows = c.execute("SELECT id, symbol_key FROM position WHERE closed_ms IS NULL ORDER BY id LIMIT 2").fetchall()
    c.execute("UPDATE position SET symbol_key = ? WHERE id = ?", (rows[0][1], rows[1][0]))


def active_with_closed_ms(c: sqlite3.Connection) -> None:
    (pid,) = one(c, ACTIVE_EXPOSED)
    c.execute("UPDATE position SET closed_ms = updated_ms WHERE id = ?", (pid,))


def closed_without_closed_ms(c: sqlite3.Connection) -> None:
    (pid,) = one(c, CLOSED)
    c.execute("UPDATE position SET closed_ms = NULL WHERE id = ?", (pid,))


def remaining_off_by_one(c: sqlite3.Connection) -> None:
    (pid,) = one(c, ACTIVE_EXPOSED)
    c.execute("UPDATE position SET remaining_qty_units = remaining_qty_units + 1 WHERE id = ?", (pid,))


def unknown_state(c: sqlite3.Connection) -> None:
    (pid,) = one(c, ACTIVE_PROTECTED)
    c.execute("UPDATE position SET state = 'PROTECTEX' WHERE id = ?", (pid,))


def illegal_event_rechained(c: sqlite3.Connection) -> None:
    # An `import` creation event forged onto a non-first row, with the whole chain recomputed by the forger.
    (tid,) = one(c, "SELECT min(id) FROM transition WHERE source IS NOT NULL")
    c.execute("UPDATE transition SET event = 'import' WHERE id = ?", (tid,))
    rechain(c, "transition")


def middle_row_deleted_rechained(c: sqlite3.Connection) -> None:
    # A lost row that the chain no longer shows (recomputed): replay still sees source != previous target.
    (pid,) = one(c, "SELECT position_id FROM transition GROUP BY position_id HAVING count(*) >= 3 LIMIT 1")
    rows = c.execute("SELECT id FROM transition WHERE position_id = ? ORDER BY id", (pid,)).fetchall()
    c.execute("DELETE FROM transition WHERE id = ?", (rows[1][0],))
    rechain(c, "transition")


def stored_state_differs_from_log(c: sqlite3.Connection) -> None:
    (pid,) = one(c, ACTIVE_PROTECTED)
    c.execute("UPDATE position SET state = 'OPEN' WHERE id = ?", (pid,))


def protected_without_stop(c: sqlite3.Connection) -> None:
    (pid,) = one(c, ACTIVE_PROTECTED)
    c.execute("UPDATE position SET sl_order_id = NULL WHERE id = ?", (pid,))


def late_fill_on_closed(c: sqlite3.Connection) -> None:
    # A fill recorded against a closed position (properly chained) and the stored quantity following it.
    (pid,) = one(c, CLOSED)
    (prev,) = one(c, "SELECT row_hash FROM fill ORDER BY id DESC LIMIT 1")
    qty, price, ms = 12_300, "101.5", 1_800_000_000_000
    h = chain.fill_hash(str(prev), "LATE-1", int(str(pid)), "buy", True, qty, price, ms)
    c.execute(
        "INSERT INTO fill (fill_id, position_id, side, is_entry, qty_units, price, fill_ms, recorded_ms, prev_hash,"
        " row_hash) VALUES ('LATE-1', ?, 'buy', 1, ?, ?, ?, ?, ?, ?)",
        (pid, qty, price, ms, ms, prev, h),
    )
    c.execute("UPDATE position SET remaining_qty_units = ? WHERE id = ?", (qty, pid))


def transition_cause_edited(c: sqlite3.Connection) -> None:
    (tid,) = one(c, "SELECT id FROM transition ORDER BY id LIMIT 1 OFFSET 10")
    c.execute("UPDATE transition SET cause = 'edited by hand' WHERE id = ?", (tid,))


def transition_middle_row_deleted(c: sqlite3.Connection) -> None:
    (tid,) = one(c, "SELECT id FROM transition ORDER BY id LIMIT 1 OFFSET 10")
    c.execute("DELETE FROM transition WHERE id = ?", (tid,))


def fill_price_edited(c: sqlite3.Connection) -> None:
    (fid,) = one(c, "SELECT id FROM fill ORDER BY id LIMIT 1 OFFSET 7")
    c.execute("UPDATE fill SET price = '1.0' WHERE id = ?", (fid,))


def fill_middle_row_deleted(c: sqlite3.Connection) -> None:
    (fid,) = one(c, "SELECT id FROM fill ORDER BY id LIMIT 1 OFFSET 9")
    c.execute("DELETE FROM fill WHERE id = ?", (fid,))


def side_flipped(c: sqlite3.Connection) -> None:
    # A valid value, so only the ledger can tell: the position's fills are on the other side.
    (pid,) = one(c, ACTIVE_EXPOSED)
    c.execute("UPDATE position SET side = iif(side = 'long', 'short', 'long') WHERE id = ?", (pid,))


def side_garbled(c: sqlite3.Connection) -> None:
    (pid,) = one(c, CLOSED)
    c.execute("UPDATE position SET side = 'lonf' WHERE id = ?", (pid,))


def stop_price_garbled(c: sqlite3.Connection) -> None:
    (pid,) = one(c, ACTIVE_PROTECTED)
    c.execute("UPDATE position SET stop_price = '6x000' WHERE id = ?", (pid,))


def stop_price_hand_set_to_one(c: sqlite3.Connection) -> None:
    # issue 9: a same-shape, valid price that no planner would choose (the entry is 100 or more)
    (pid,) = one(c, ACTIVE_PROTECTED)
    c.execute("UPDATE position SET stop_price = '1' WHERE id = ?", (pid,))


CASES: list[tuple[Callable[[sqlite3.Connection], None], set[str]]] = [
    (dup_symbol, {"duplicate_active_symbol_keys"}),
    (active_with_closed_ms, {"non_terminal_in_closed_history"}),
    (closed_without_closed_ms, {"non_terminal_in_closed_history"}),
    (remaining_off_by_one, {"remaining_qty_violations"}),
    (unknown_state, {"unknown_state_values"}),
    (illegal_event_rechained, {"illegal_logged_transitions"}),
    (middle_row_deleted_rechained, {"illegal_logged_transitions"}),
    (stored_state_differs_from_log, {"state_log_mismatch"}),
    (protected_without_stop, {"protected_without_stop"}),
    (late_fill_on_closed, {"terminal_with_open_qty"}),
    (transition_cause_edited, {"transition_chain_breaks"}),
    (fill_price_edited, {"fill_chain_breaks"}),
    # A lost fill breaks the chain and, necessarily, the ledger sum of its position.
    (fill_middle_row_deleted, {"fill_chain_breaks", "remaining_qty_violations"}),
    (side_flipped, {"fill_side_mismatch"}),
    (side_garbled, {"invalid_position_values"}),
    (stop_price_garbled, {"invalid_position_values"}),
    (stop_price_hand_set_to_one, {"invalid_stop_prices"}),
]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = small_registry(tmp_path_factory.mktemp("pristine") / "registry.db")
    report = audit(path)
    assert report.ok, report.summary()
    return path.read_bytes()


def test_every_invariant_field_has_a_case() -> None:
    covered = set().union(*(fields for _, fields in CASES))
    assert covered == set(INVARIANT_FIELDS)


def test_legal_registry_is_clean_and_has_every_kind_of_position(tmp_path: Path) -> None:
    path = small_registry(tmp_path / "r.db", seed=11)
    report = audit(path)
    assert report.ok and report.violations_total == 0 and report.details == {}
    with raw(path) as c:
        states = {s for (s,) in c.execute("SELECT DISTINCT state FROM position")}
    assert {"CLOSED", "PROTECTED"} <= states and states & {"OPEN", "EXITING"}


@pytest.mark.parametrize(("corrupt", "expected"), CASES, ids=[c.__name__ for c, _ in CASES])
def test_corruption_moves_exactly_its_fields(
    tmp_path: Path, pristine: bytes, corrupt: Callable[[sqlite3.Connection], None], expected: set[str]
) -> None:
    assert_corruption_moves_exactly(tmp_path / "registry.db", pristine, corrupt, expected)


def test_transition_middle_row_deleted_is_a_chain_break(tmp_path: Path, pristine: bytes) -> None:
    path = tmp_path / "registry.db"
    path.write_bytes(pristine)
    with raw(path) as c:
        transition_middle_row_deleted(c)
    report = audit(path)
    # Exactly the successor's link fails; replay adds its own finding (a gap in that position's history).
    assert report.transition_chain_breaks == 1, report.summary()
    assert report.details["transition_chain_breaks"] == ["transition#12"]


def test_fields_order_and_total() -> None:
    report = AuditReport(remaining_qty_violations=2, fill_chain_breaks=3, details={"fill_chain_breaks": ["fill#9"]})
    keys = list(report.fields())
    assert keys[0] == "violations_total"
    assert tuple(keys[1:4]) == RUNBOOK_FIELDS
    assert set(keys[1:]) == set(INVARIANT_FIELDS) and len(keys) == len(INVARIANT_FIELDS) + 1
    assert report.violations_total == 5 and not report.ok
    assert "fill#9" in report.summary()
