"""Corruptions that the first field tests did not pin, each found by a mutation of the audit that survived them.

Each case below names the audit predicate it guards: weaken that predicate (a mutation review did) and this case
fails. As in test_audit_fields: a real registry file, damaged with raw SQL (triggers dropped), must move exactly
the expected fields, and the health tool must exit 1 naming one of them.

After the cases, behaviours found by the SQL and Python passes of `make mutate` (issue 15): the tail audit's scope,
the heads and anchors, the ranges, the worker processes, the report's defaults, and INV-13 beside INV-11.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from lifecycle.clock import FakeClock
from store import audit as audit_module
from store import chain
from store.anchors import audit_and_anchor, load_anchors
from store.audit import SCOPE_FULL, SCOPE_TAIL, AuditReport, ChainHead, ChainSpec, run_audit
from store.db import connect
from store.keys import default_key_path, read_key, verify_seal
from store.registry import Registry
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
from tests.audit.test_chain_sql import fresh_memdb
from tests.audit.test_keyed_chains import keyed_audit, keyed_registry
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
    # docs/audit.md: summary() puts the non-zero fields with their first offending rows on one line (only those).
    assert report.summary() == f"registry audit failed: violations_total=1: unknown_state_values=1 ({uid}='BOGUS')"


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


def test_an_audit_asked_for_two_workers_on_a_registry_file_starts_one_worker_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = small_registry(tmp_path / "registry.db")
    started: list[object] = []
    start = audit_module._start_worker

    def counted(*args: Any) -> Any:
        started.append(args)
        return start(*args)

    monkeypatch.setattr(audit_module, "_start_worker", counted)
    db = connect(path, readonly=True)
    try:
        assert run_audit(db, workers=2).ok
    finally:
        db.close()
    assert len(started) == 1


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
    """docs/audit.md: up to five offending rows per field, the first ones, however the chain was cut into ranges."""
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
    assert report.details["fill_chain_breaks"] == [f"fill#{i}" for i in flipped[:5]]


def test_a_report_counts_only_what_it_is_given() -> None:
    """Every count defaults to nothing found: a report given no counts is clean."""
    empty = AuditReport()
    assert empty.ok and empty.violations_total == 0 and empty.summary() == "registry audit clean"
    assert set(empty.fields().values()) == {0}


def test_a_keyed_registry_shared_with_worker_processes_reports_what_one_connection_reports(tmp_path: Path) -> None:
    """The key reaches the workers (over their pipe): keyed rows verify there as on the caller's connection."""
    path = tmp_path / "keyed.db"
    keyed_registry(path).close()
    alone, shared = keyed_audit(path, workers=1), keyed_audit(path, workers=2)
    assert alone.ok, alone.summary()
    assert shared == alone


@pytest.mark.parametrize("value", ["42", "x'00'", "zeroblob(64)"], ids=["short-text", "blob", "digest-sized-blob"])
def test_a_damaged_stored_hash_at_the_end_of_a_range_is_a_break_not_a_crash(tmp_path: Path, value: str) -> None:
    """The next range links to that stored value: it is not a digest, so that range takes the row-by-row path."""
    path = small_registry(tmp_path / "registry.db")
    with raw(path) as c:
        c.execute(f"UPDATE fill SET row_hash = {value} WHERE id = 7")
    db = connect(path, readonly=True)
    try:
        report = run_audit(db, workers=1, chunk_rows=7)
    finally:
        db.close()
    assert nonzero(report) == {"fill_chain_breaks"}, report.summary()
    assert report.details["fill_chain_breaks"][:2] == ["fill#7", "fill#8"]


def test_a_row_inserted_before_the_chains_first_row_changes_the_count_up_to_the_anchor(tmp_path: Path) -> None:
    path = _anchored(tmp_path)
    with raw(path) as c:
        h = chain.transition_hash(chain.GENESIS, 1, "import", None, "OPEN", "forged", 1)
        c.execute(
            "INSERT INTO transition (id, position_id, event, source, target, cause, at_ms, prev_hash, row_hash)"
            " VALUES (0, 1, 'import', NULL, 'OPEN', 'forged', 1, ?, ?)",
            (chain.GENESIS, h),
        )
    assert not _anchored_audit(path, full=True).ok  # the full audit sees it (row 1 no longer links)
    assert not _anchored_audit(path, full=False).ok


@pytest.mark.parametrize(("kwargs", "check"), [({}, "quick_check"), ({"full": True}, "integrity_check")])
def test_sqlites_own_check_of_an_intact_registry_is_ok(tmp_path: Path, kwargs: dict[str, bool], check: str) -> None:
    """The quick check unless the full one is asked for (check_db_health asks for it)."""
    path = small_registry(tmp_path / "registry.db")
    db = connect(path, readonly=True)
    try:
        report = audit_module.quick_check(db, **kwargs)
    finally:
        db.close()
    assert (report.ok, report.check, report.messages) == (True, check, ["ok"])


# --- worker processes ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("keyed", [False, True], ids=["unkeyed", "keyed"])
def test_a_worker_process_answers_a_chain_range_as_the_callers_connection_does(tmp_path: Path, keyed: bool) -> None:
    """The worker protocol itself (a run_audit with workers may leave a worker idle on a small registry): one JSON
    task in, one outcome out, the key (if any) received over the pipe."""
    path = tmp_path / "registry.db"
    if keyed:
        keyed_registry(path).close()
    else:
        small_registry(path)
    db = connect(path, readonly=True)
    try:
        keying: audit_module.Keying = audit_module.UNKEYED
        if keyed:
            seal = verify_seal(db, read_key(default_key_path(path)))
            keying = (seal.key.secret, dict(seal.keyed_after))
        last = audit_module._last_id(db, "fill")
        task: audit_module.TaskSpec = ("chain", "fill", 0, last)
        here = audit_module._run_task(db, task, keying)
        proc = audit_module._start_worker(str(path), 1000, keying)
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(json.dumps(task) + "\n")
            proc.stdin.flush()
            there = audit_module._worker_outcome(proc.stdout.readline())
        finally:
            proc.stdin.close()
            proc.wait(timeout=30)
            proc.stdout.close()
    finally:
        db.close()
    assert there == here == (0, [])


@pytest.mark.parametrize("how", ["exits", "hangs-up", "garbles"])
def test_a_worker_process_that_dies_is_not_fatal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    """_WorkerFailed: a worker that died (its pipe broken) or answered garbage, the audit is redone on the caller's
    connection with the same report."""
    path = small_registry(tmp_path / "registry.db")
    with raw(path) as c:
        c.execute("UPDATE fill SET price = price || '1' WHERE id = 3")
    db = connect(path, readonly=True)
    try:
        alone = run_audit(db, workers=1)
        run_task = audit_module._run_task

        def slow(*args: Any) -> Any:  # the caller leaves the worker time to take a task
            time.sleep(0.02)
            return run_task(*args)

        def dead(*args: Any) -> subprocess.Popen[str]:
            code = {"exits": "pass", "hangs-up": "input()", "garbles": "print('not json')"}[how]
            proc = subprocess.Popen(
                [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
            if how == "exits":
                proc.wait()  # gone before the first task is written: the write breaks the pipe
            return proc

        monkeypatch.setattr(audit_module, "_run_task", slow)
        monkeypatch.setattr(audit_module, "_start_worker", dead)
        assert run_audit(db, workers=2) == alone
    finally:
        db.close()
    assert alone.fill_chain_breaks == 1


def test_two_workers_on_a_registry_file_finish_without_falling_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fallback (redo on the caller's connection) would hide a broken worker path: it must not be taken."""
    path = small_registry(tmp_path / "registry.db")
    fell_back: list[BaseException] = []
    run_parallel = audit_module._run_parallel

    def watched(*args: Any) -> Any:
        try:
            return run_parallel(*args)
        except audit_module._WorkerFailed as exc:
            fell_back.append(exc)
            raise

    monkeypatch.setattr(audit_module, "_run_parallel", watched)
    db = connect(path, readonly=True)
    try:
        assert run_audit(db, workers=2).ok
    finally:
        db.close()
    assert fell_back == []


def test_an_in_memory_registry_starts_no_worker_even_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_worker(*args: object) -> None:
        raise AssertionError("a worker process cannot open an in-memory database")

    monkeypatch.setattr(audit_module, "_start_worker", no_worker)
    with fresh_memdb() as memdb:
        assert run_audit(memdb, workers=2).ok


def test_a_worker_error_arrives_as_its_own_sqlite_error_class() -> None:
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        audit_module._worker_outcome('["error", "OperationalError", "database is locked"]\n')


def test_a_missing_seal_row_counts_one_break_of_its_chain(tmp_path: Path) -> None:
    """store.keys.verify_seal: a seal that does not verify counts one break of its chain (this registry was keyed
    from its first row, so its rows still verify as keyed)."""
    path = tmp_path / "keyed.db"
    keyed_registry(path).close()
    with sqlite3.connect(path) as c:
        c.execute("DELETE FROM chain_seal WHERE chain = 'fill'")
    report = keyed_audit(path)
    assert nonzero(report) == {"fill_chain_breaks"} and report.fill_chain_breaks == 1, report.summary()
    assert report.details["fill_chain_breaks"] == ["fill (seal: missing from chain_seal; the table was edited)"]


def test_a_worker_process_that_cannot_be_started_is_not_fatal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = small_registry(tmp_path / "registry.db")

    def cannot_start(*args: Any, **kwargs: Any) -> subprocess.Popen[str]:
        raise OSError(11, "Resource temporarily unavailable")

    db = connect(path, readonly=True)
    try:
        monkeypatch.setattr(subprocess, "Popen", cannot_start)
        report = run_audit(db, workers=2)
    finally:
        monkeypatch.undo()
        db.close()
    assert report.ok


# --- INV-13 beside INV-11, and the anchor's finding ---------------------------------------------------------------


def _two_positions(path: Path, first_stop: str, second: tuple[str, str]) -> tuple[str, str]:
    registry = Registry.open(path, FakeClock())
    a = registry.import_position(symbol="PF_XBTUSD", side="long", qty=D("1"), entry_price=D("100"), cause="t")
    b = registry.import_position(symbol="PF_ETHUSD", side="long", qty=D("1"), entry_price=D(second[0]), cause="t")
    registry.close()
    with sqlite3.connect(path) as c:  # position rows are mutable: no trigger stands in the way
        c.execute("UPDATE position SET stop_price = ? WHERE uid = ?", (first_stop, a.uid))
        c.execute("UPDATE position SET stop_price = ? WHERE uid = ?", (second[1], b.uid))
    return a.uid, b.uid


def test_a_stop_that_is_no_price_is_counted_once_and_the_next_position_still_checked(tmp_path: Path) -> None:
    """A stop of 0 is invalid_position_values (INV-11) only; a far stop on the position after it is INV-13's."""
    a, b = _two_positions(tmp_path / "registry.db", "0", ("71000", "1"))
    report = audit(tmp_path / "registry.db")
    assert nonzero(report) == {"invalid_position_values", "invalid_stop_prices"}, report.summary()
    assert report.details["invalid_position_values"] == [a]
    assert [d.split(" ")[0] for d in report.details["invalid_stop_prices"]] == [b]


def test_the_stop_bound_holds_for_a_coin_under_a_dollar(tmp_path: Path) -> None:
    _, b = _two_positions(tmp_path / "registry.db", "95", ("0.5", "0.01"))  # 98 % below its entry
    report = audit(tmp_path / "registry.db")
    assert nonzero(report) == {"invalid_stop_prices"} and report.details["invalid_stop_prices"][0].startswith(b)


def test_the_anchor_finding_names_the_anchor_row_its_row_count_and_hash(tmp_path: Path) -> None:
    """docs/audit.md: `fill#<id> (anchor: ...)`, with what the clean audit recorded there (the hash's first 12 hex
    digits) so that it can be compared with chain_anchor."""
    path = _anchored(tmp_path)
    db = connect(path, readonly=True)
    head = load_anchors(db)["fill"].head
    db.close()
    with raw(path) as c:
        c.execute("DELETE FROM fill WHERE id = ?", (head.through_id,))
    report = _anchored_audit(path, full=False)
    assert report.details["fill_chain_breaks"][0] == (
        f"fill#{head.through_id} (anchor: a clean audit found {head.rows} rows ending there with hash"
        f" {head.through_hash[:12]}; rows were deleted or rewritten since, or the anchor itself is damaged)"
    )


def test_a_garbled_side_or_an_infinite_stop_is_left_to_inv_11(tmp_path: Path) -> None:
    """Each root cause counts once: INV-13 (through lifecycle.stops) leaves rows INV-11 already counts."""
    a, b = _two_positions(tmp_path / "registry.db", "Infinity", ("100", "95"))
    with sqlite3.connect(tmp_path / "registry.db") as c:
        c.execute("UPDATE position SET side = 'sideways' WHERE uid = ?", (b,))
    report = audit(tmp_path / "registry.db")
    assert nonzero(report) == {"invalid_position_values"}, report.summary()
    assert report.details["invalid_position_values"] == [a, b]


def test_a_gap_in_the_ids_wider_than_a_range_leaves_clean_empty_ranges(tmp_path: Path) -> None:
    """The chain hashes no row id: a last row moved 50 ids on still verifies, and the empty ranges before it too."""
    path = small_registry(tmp_path / "registry.db")
    with raw(path) as c:
        c.execute("UPDATE fill SET id = id + 50 WHERE id = (SELECT max(id) FROM fill)")
    db = connect(path, readonly=True)
    try:
        report = run_audit(db, workers=1, chunk_rows=7)
    finally:
        db.close()
    assert report.ok, report.summary()


def test_a_prev_hash_with_more_after_a_record_separator_is_a_break(tmp_path: Path) -> None:
    """The fast path's separator count: a row whose stored prev_hash is the previous row's hash followed by a record
    separator and more, hashed consistently by a forger, still does not link (the exact path names it)."""
    path = small_registry(tmp_path / "registry.db")
    with raw(path) as c:
        row = one(
            c,
            "SELECT id, fill_id, position_id, side, is_entry, qty_units, price, fill_ms, prev_hash FROM fill"
            " ORDER BY id DESC LIMIT 1",
        )
        fid, fill_id, pid, side, is_entry, qty, price, fill_ms, prev = row
        forged_prev = f"{prev}{audit_module.RECORD_SEP}x"
        h = chain.fill_hash(forged_prev, str(fill_id), int(str(pid)), str(side), bool(is_entry), int(str(qty)),
                            str(price), int(str(fill_ms)))  # fmt: skip
        c.execute("UPDATE fill SET prev_hash = ?, row_hash = ? WHERE id = ?", (forged_prev, h, fid))
    report = audit(path)
    assert nonzero(report) == {"fill_chain_breaks"} and report.details["fill_chain_breaks"] == [f"fill#{fid}"]


def test_a_workers_answer_that_arrives_last_is_still_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller waits for every worker's answer before it merges (here the worker's answer is read slowly)."""
    path = small_registry(tmp_path / "registry.db")
    with raw(path) as c:
        c.execute("UPDATE fill SET price = price || '1' WHERE id = 3")
    db = connect(path, readonly=True)
    try:
        alone = run_audit(db, workers=1)
        read = audit_module._worker_outcome

        def late(line: str) -> audit_module.Outcome:
            time.sleep(0.5)
            return read(line)

        monkeypatch.setattr(audit_module, "_worker_outcome", late)
        assert run_audit(db, workers=2) == alone
    finally:
        db.close()


def test_an_unparsable_price_is_left_to_inv_11_and_the_next_position_still_checked(tmp_path: Path) -> None:
    a, b = _two_positions(tmp_path / "registry.db", "ninety", ("71000", "1"))
    report = audit(tmp_path / "registry.db")
    assert report.details["invalid_position_values"] == [a]
    assert [d.split(" ")[0] for d in report.details["invalid_stop_prices"]] == [b]


def test_an_aggregate_and_inv_13_show_at_most_five_rows_each(tmp_path: Path) -> None:
    """docs/audit.md: up to five offending rows per field, for the SQL aggregates and for INV-13 alike."""
    path = tmp_path / "registry.db"
    registry = Registry.open(path, FakeClock())
    symbols = ("PF_XBTUSD", "PF_ETHUSD", "PF_SOLUSD", "PF_DOTUSD", "PF_XMRUSD", "PF_ZECUSD", "PF_LTCUSD")
    uids = [
        registry.import_position(symbol=s, side="long", qty=D("1"), entry_price=D("71000"), cause="t").uid
        for s in symbols
    ]
    registry.close()
    with sqlite3.connect(path) as c:
        c.execute("UPDATE position SET stop_price = '1'")  # seven stops far beyond the bound
    far = audit(path)
    assert far.invalid_stop_prices == 7 and [d.split(" ")[0] for d in far.details["invalid_stop_prices"]] == uids[:5]
    with sqlite3.connect(path) as c:
        c.execute("UPDATE position SET state = 'BOGUS'")
    bogus = audit(path)
    assert bogus.unknown_state_values == 7 and len(bogus.details["unknown_state_values"]) == 5


def test_workers_are_reaped_and_a_half_started_pool_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No worker process outlives its audit: the daemon runs audits every health cycle, and a worker left running (or
    # unreaped) per audit would pile up. Both when every worker started, and when the second of three could not.
    path = small_registry(tmp_path / "registry.db")
    started: list[subprocess.Popen[str]] = []
    real = audit_module._start_worker

    def recording(*args: Any, **kwargs: Any) -> subprocess.Popen[str]:
        proc = real(*args, **kwargs)
        started.append(proc)
        return proc

    def second_fails(*args: Any, **kwargs: Any) -> subprocess.Popen[str]:
        if started:
            raise OSError(11, "Resource temporarily unavailable")
        return recording(*args, **kwargs)

    db = connect(path, readonly=True)
    try:
        for start in (recording, second_fails):
            started.clear()
            monkeypatch.setattr(audit_module, "_start_worker", start)
            assert run_audit(db, workers=3).ok
            assert started and all(p.returncode is not None for p in started)  # exited and reaped
    finally:
        monkeypatch.undo()
        db.close()
