"""Corruptions that the first field tests did not pin, each found by a mutation of the audit that survived them.

Each case below names the audit predicate it guards: weaken that predicate (a mutation review did) and this case
fails. As in test_audit_fields: a real registry file, damaged with raw SQL (triggers dropped), must move exactly
the expected fields, and the health tool must exit 1 naming one of them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from store import audit as audit_module
from store import chain
from store.anchors import audit_and_anchor, load_anchors
from store.audit import SCOPE_FULL, SCOPE_TAIL, AuditReport, ChainHead, ChainSpec, run_audit
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
from tests.audit.test_stop_prices import registry_with
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


# --- the tail audit's boundary, the anchor's head, and the ranges (found by the SQL pass of `make mutate`) ---------


def _anchored(tmp_path: Path) -> Path:
    """A legal registry whose anchors a clean full audit has just recorded (nothing appended since)."""
    path = small_registry(tmp_path / "registry.db")
    db = connect(path)
    try:
        assert audit_and_anchor(db, 1_800_000_000_000).ok
    finally:
        db.close()
    return path


def _anchored_audit(path: Path, *, full: bool) -> AuditReport:
    db = connect(path, readonly=True)
    try:
        return run_audit(db, anchors={name: a.head for name, a in load_anchors(db).items()}, full=full)
    finally:
        db.close()


def test_a_tail_audit_checks_fill_sides_after_the_anchor_only(tmp_path: Path) -> None:
    """The anchor's own fill is one the clean audit that recorded it already checked: a later edit of its
    position's side is the next full audit's to find (docs/audit.md, the tail audit's scope)."""
    path = _anchored(tmp_path)
    with raw(path) as c:
        uid, side = one(
            c, "SELECT p.uid, p.side FROM position p JOIN fill f ON f.position_id = p.id ORDER BY f.id DESC LIMIT 1"
        )
        c.execute("UPDATE position SET side = ? WHERE uid = ?", ("short" if side == "long" else "long", uid))
    tail = _anchored_audit(path, full=False)
    assert (tail.scope, tail.ok) == (SCOPE_TAIL, True), tail.summary()
    full = _anchored_audit(path, full=True)
    assert nonzero(full) == {"fill_side_mismatch"} and full.details["fill_side_mismatch"] == [uid]


def test_a_tail_audit_checks_transition_legality_after_the_anchor_only(tmp_path: Path) -> None:
    """The anchor row edited in place (its stored hash kept, so the anchor still holds): the tail audit re-checks
    nothing up to the anchor; the full audit finds the row both as a chain break and as an illegal transition."""
    path = _anchored(tmp_path)
    with raw(path) as c:
        (tid,) = one(c, "SELECT max(id) FROM transition")
        c.execute("UPDATE transition SET event = 'no_such_event' WHERE id = ?", (tid,))
    tail = _anchored_audit(path, full=False)
    assert (tail.scope, tail.ok) == (SCOPE_TAIL, True), tail.summary()
    full = _anchored_audit(path, full=True)
    assert nonzero(full) == {"transition_chain_breaks", "illegal_logged_transitions"}, full.summary()
    assert full.details["illegal_logged_transitions"] == [f"transition#{tid}"]


def test_an_audits_head_is_the_chains_last_row(tmp_path: Path) -> None:
    path = _anchored(tmp_path)
    report = _anchored_audit(path, full=False)
    with sqlite3.connect(path) as c:
        for table in ("transition", "fill"):
            last_id, last_hash = one(c, f"SELECT id, row_hash FROM {table} ORDER BY id DESC LIMIT 1")
            (rows,) = one(c, f"SELECT count(*) FROM {table}")
            assert report.heads[table] == ChainHead(int(str(last_id)), str(last_hash), int(str(rows)))


@pytest.mark.parametrize("full", [False, True], ids=["tail", "full"])
def test_the_last_row_rewritten_with_a_valid_hash_is_found_through_the_anchor(tmp_path: Path, full: bool) -> None:
    """The chain alone cannot see its last row replaced by another correctly hashed one; the anchor (that row's
    stored hash when the last clean audit ran) does."""
    path = _anchored(tmp_path)
    with raw(path) as c:
        row = one(
            c,
            "SELECT id, fill_id, position_id, side, is_entry, qty_units, price, fill_ms, prev_hash FROM fill"
            " ORDER BY id DESC LIMIT 1",
        )
        fid, fill_id, pid, side, is_entry, qty, price, fill_ms, prev = row
        forged = f"{price}1"
        h = chain.fill_hash(str(prev), str(fill_id), int(str(pid)), str(side), bool(is_entry), int(str(qty)),
                            forged, int(str(fill_ms)))  # fmt: skip
        c.execute("UPDATE fill SET price = ?, row_hash = ? WHERE id = ?", (forged, h, fid))
    assert audit(path).ok, "without anchors a correctly re-hashed last row is invisible"
    report = _anchored_audit(path, full=full)
    assert nonzero(report) == {"fill_chain_breaks"}, report.summary()
    assert report.details["fill_chain_breaks"][0].startswith(f"fill#{fid} (anchor:")


def test_sparse_ids_are_cut_into_ranges_of_chunk_rows_rows(tmp_path: Path) -> None:
    """A hand-inserted outlier id (the chain hashes no row id, so it still verifies): the ranges step by rows, each
    holding `chunk_rows` rows but the last, and together every row exactly once; the audit stays clean."""
    path = small_registry(tmp_path / "registry.db")
    with raw(path) as c:
        c.execute("UPDATE fill SET id = 10000000 WHERE id = (SELECT max(id) FROM fill)")
        ids = [int(i) for (i,) in c.execute("SELECT id FROM fill ORDER BY id")]
    db = connect(path, readonly=True)
    try:
        ranges = audit_module._ranges(db, "fill", 7)
        assert run_audit(db, chunk_rows=7).ok
    finally:
        db.close()
    per_range = [[i for i in ids if lo < i <= hi] for lo, hi in ranges]
    assert [i for part in per_range for i in part] == ids
    assert all(len(part) == 7 for part in per_range[:-1]) and 0 < len(per_range[-1]) <= 7


def test_an_unknown_state_is_shown_as_the_value_the_position_holds(tmp_path: Path) -> None:
    """docs/audit.md: the details show the quoted value, read `<uid>=<value>`."""
    path = small_registry(tmp_path / "registry.db")
    with raw(path) as c:
        (uid,) = one(c, "SELECT uid FROM position WHERE state = 'CLOSED' LIMIT 1")
        c.execute("UPDATE position SET state = 'BOGUS' WHERE uid = ?", (uid,))
    report = audit(path)
    assert report.details["unknown_state_values"] == [f"{uid}='BOGUS'"]
    assert f"unknown_state_values=1 ({uid}='BOGUS')" in report.summary()


# --- the audit's Python (found by the Python pass of `make mutate`) ------------------------------------------------


def test_a_small_file_registry_is_audited_on_the_callers_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker processes pay for their start only from PARALLEL_MIN_ROWS rows to re-hash (docs/audit.md): a small
    registry file, audited with the default `workers`, starts none."""
    path = small_registry(tmp_path / "registry.db")

    def no_worker(*args: object) -> None:
        raise AssertionError("a worker process was started for a small registry")

    monkeypatch.setattr(audit_module, "_start_worker", no_worker)
    assert audit(path).ok


def test_anchors_alone_do_not_narrow_the_audit(tmp_path: Path) -> None:
    """Only `full=False` asks for a tail audit: a caller that passes anchors and nothing else gets the full one."""
    path = _anchored(tmp_path)
    db = connect(path, readonly=True)
    try:
        report = run_audit(db, anchors={name: a.head for name, a in load_anchors(db).items()})
    finally:
        db.close()
    assert (report.scope, report.ok) == (SCOPE_FULL, True)


def test_a_tail_audit_needs_every_chains_anchor(tmp_path: Path) -> None:
    path = _anchored(tmp_path)
    db = connect(path, readonly=True)
    try:
        report = run_audit(db, anchors={"fill": load_anchors(db)["fill"].head}, full=False)
    finally:
        db.close()
    assert (report.scope, report.ok) == (SCOPE_FULL, True), report.summary()


def test_a_chain_whose_hash_does_not_take_prev_hash_first_is_refused() -> None:
    def unchained(position_id: int, event: str, *, key: bytes | None = None) -> str:
        return ""

    with pytest.raises(ImportError, match="prev_hash first"):
        ChainSpec.of("transition", unchained)


def test_the_default_stop_distance_bound_is_the_documented_25_percent(tmp_path: Path) -> None:
    # docs/configuration.md, risk.max_stop_distance_pct = 25: exactly 25 % from the entry is a stop, 26 % is not.
    for stop, expected in (("75", 0), ("74", 1)):
        path = tmp_path / f"stop-{stop}.db"
        registry_with(path, "long", "100", stop)
        db = connect(path, readonly=True)
        try:
            assert run_audit(db).invalid_stop_prices == expected, stop
        finally:
            db.close()


def test_details_show_the_first_rows_in_id_order_across_ranges(tmp_path: Path) -> None:
    """Up to DETAIL_LIMIT offending rows per field, the first ones, however the chain was cut into ranges."""
    path = small_registry(tmp_path / "registry.db")
    with raw(path) as c:
        flipped = [int(i) for (i,) in c.execute("SELECT id FROM fill WHERE id % 3 = 0 ORDER BY id LIMIT 12")]
        c.executemany("UPDATE fill SET price = price || '1' WHERE id = ?", [(i,) for i in flipped])
    db = connect(path, readonly=True)
    try:
        report = run_audit(db, workers=1, chunk_rows=7)
    finally:
        db.close()
    assert report.fill_chain_breaks == len(flipped) == 12
    assert report.details["fill_chain_breaks"] == [f"fill#{i}" for i in flipped[: audit_module.DETAIL_LIMIT]]
