"""The chain check's fast path (SQL builds each row's hashed content, Python hashes in bulk) against the exact
row-by-row path through `store.chain`: identical verdicts on any stored values, and the fast path really
proves ordinary rows (so the speed is not an accident of everything falling back)."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import peewee as pw
import pytest
from hypothesis import given
from hypothesis import strategies as st

from store import audit, chain
from store.audit import CHAINS, ChainSpec
from store.db import connect
from store.models import ALL_MODELS
from tests.audit.helpers import raw, small_registry
from tests.audit.test_audit_fields import CASES

SEPARATORS = "\x1d\x1e\x1f,\x00"


@contextmanager
def fresh_memdb() -> Iterator[pw.SqliteDatabase]:
    """The registry's own tables (same declared types, so the same affinities) minus NOT NULL, so that any stored
    value, damaged ones included, can be put in."""
    db = pw.SqliteDatabase(":memory:")
    db.connect()
    with db.bind_ctx(list(ALL_MODELS)):
        db.create_tables(list(ALL_MODELS))
    ddl = [sql for (sql,) in db.execute_sql("SELECT sql FROM sqlite_master WHERE name IN ('fill', 'transition')")]  # type: ignore[no-untyped-call]
    for table in ("fill", "transition"):
        db.execute_sql(f'DROP TABLE "{table}"')  # type: ignore[no-untyped-call]
    for sql in ddl:
        db.execute_sql(sql.replace(" NOT NULL", ""))  # type: ignore[no-untyped-call]
    try:
        yield db
    finally:
        db.close()


def _insert_chain(db: pw.SqliteDatabase, spec: ChainSpec, rows: list[tuple[Any, ...]]) -> None:
    """Store `rows` as a writer would: each hashed through store.chain from the values it was given."""
    db.execute_sql(f'DELETE FROM "{spec.table}"')  # type: ignore[no-untyped-call]
    prev: Any = chain.GENESIS
    for values in rows:
        try:
            row_hash = spec.recompute(prev, values)
        except (TypeError, ValueError):
            row_hash = "unhashable"
        cols = ", ".join([*spec.columns, "prev_hash", "row_hash"])
        marks = ", ".join("?" for _ in range(len(spec.columns) + 2))
        db.execute_sql(f'INSERT INTO "{spec.table}" ({cols}) VALUES ({marks})', [*values, prev, row_hash])  # type: ignore[no-untyped-call]
        prev = row_hash


def _both(db: pw.SqliteDatabase, spec: ChainSpec) -> tuple[tuple[int, list[str]], tuple[int, list[str]]]:
    (hi,) = db.execute_sql(f'SELECT max(id) FROM "{spec.table}"').fetchone()  # type: ignore[no-untyped-call]
    exact = audit._exact_range(db, spec, 0, hi, chain.GENESIS)[:2]
    return audit._verify_chain(db, spec.table, chunk_rows=2), exact


ODD = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.binary(max_size=8),
    st.text(alphabet=st.sampled_from("ab9.é" + SEPARATORS), max_size=6),
)


def _plain(kind: str) -> st.SearchStrategy[Any]:
    if kind == "int":
        return st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1))
    if kind == "bool":
        return st.booleans().map(int)
    return st.one_of(
        st.none(),
        st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters=SEPARATORS), max_size=12),
    )


@pytest.mark.parametrize("table", sorted(CHAINS))
@given(data=st.data())
def test_sql_built_content_hashes_like_chain_py(table: str, data: st.DataObject) -> None:
    # Ordinary values of every declared type, NULLs included: the SQL-built content hashes exactly as
    # store.chain does, so the fast path proves the range by itself.
    spec = CHAINS[table]
    rows = data.draw(st.lists(st.tuples(*(_plain(k) for k in spec.kinds)), min_size=1, max_size=5))
    with fresh_memdb() as memdb:
        _check_plain(memdb, spec, rows)


def _check_plain(memdb: pw.SqliteDatabase, spec: ChainSpec, rows: list[tuple[Any, ...]]) -> None:
    table = spec.table
    _insert_chain(memdb, spec, rows)
    (hi,) = memdb.execute_sql(f'SELECT max(id) FROM "{table}"').fetchone()  # type: ignore[no-untyped-call]
    assert audit._fast_range(memdb, spec, 0, hi, chain.GENESIS)
    fmt = spec.content_format
    sql = f'SELECT printf(?, {spec.content_args_sql()}), row_hash FROM "{table}" ORDER BY id'
    for content, row_hash in memdb.execute_sql(sql, (fmt,)).fetchall():  # type: ignore[no-untyped-call]
        assert hashlib.sha256(content.encode()).hexdigest() == row_hash


@pytest.mark.parametrize("table", sorted(CHAINS))
@given(data=st.data())
def test_odd_values_get_the_exact_verdict(table: str, data: st.DataObject) -> None:
    # Any stored values at all (REAL, BLOB, NUL, separators, out-of-range bools): the combined check reports
    # exactly what the row-by-row check through store.chain reports.
    spec = CHAINS[table]
    rows = data.draw(st.lists(st.tuples(*(ODD for _ in spec.kinds)), min_size=1, max_size=5))
    with fresh_memdb() as memdb:
        _insert_chain(memdb, spec, rows)
        fast, exact = _both(memdb, spec)
    assert fast == exact


def _flip(path: Path, table: str, sql: str) -> None:
    with raw(path) as c:
        c.execute(sql.format(table=table))


DAMAGE = [
    # A text -> blob serial-type flip keeps the bytes: SQLite's printf would render them identically.
    ("fill", "UPDATE {table} SET price = CAST(price AS BLOB) WHERE id = 7"),
    ("fill", "UPDATE {table} SET row_hash = CAST(row_hash AS BLOB) WHERE id = 7"),
    ("transition", "UPDATE {table} SET prev_hash = CAST(prev_hash AS BLOB) WHERE id = 7"),
    ("transition", "UPDATE {table} SET cause = CAST(cause AS BLOB) WHERE id = 7"),
    ("fill", "UPDATE {table} SET qty_units = CAST(qty_units AS REAL) + 0.5 WHERE id = 7"),
    ("fill", "UPDATE {table} SET is_entry = 2 + is_entry WHERE id = 7"),
    ("transition", "UPDATE {table} SET cause = cause || char(0) || 'x' WHERE id = 7"),
    ("transition", "UPDATE {table} SET prev_hash = prev_hash || ',' WHERE id = 7"),
    ("transition", "UPDATE {table} SET prev_hash = prev_hash || char(30) WHERE id = 7"),
    ("fill", "UPDATE {table} SET row_hash = upper(row_hash) WHERE id = 7"),
    ("fill", "UPDATE {table} SET price = price || char(29) WHERE id = 7"),
]


@pytest.mark.parametrize(("table", "sql"), DAMAGE, ids=[f"{t}:{s[17:60]}" for t, s in DAMAGE])
def test_type_and_separator_damage_is_a_break(tmp_path: Path, table: str, sql: str) -> None:
    path = small_registry(tmp_path / "r.db")
    _flip(path, table, sql)
    db = connect(path, readonly=True)
    try:
        spec = CHAINS[table]
        fast, exact = _both(db, spec)
        assert fast == exact
        assert fast[0] >= 1 and f"{table}#7" in fast[1], fast
    finally:
        db.close()


@pytest.mark.parametrize("corrupt", [c for c, _ in CASES], ids=[c.__name__ for c, _ in CASES])
def test_worker_processes_report_what_one_connection_reports(tmp_path: Path, corrupt: Any) -> None:
    path = small_registry(tmp_path / "r.db")
    with raw(path) as c:
        corrupt(c)
    db = connect(path, readonly=True)
    try:
        alone = audit.run_audit(db, workers=1, chunk_rows=7)
        shared = audit.run_audit(db, workers=2, chunk_rows=7)
    finally:
        db.close()
    assert not alone.ok
    assert shared == alone


def test_worker_errors_arrive_as_sqlite_errors() -> None:
    with pytest.raises(sqlite3.DatabaseError, match="malformed"):
        audit._worker_outcome('["error", "DatabaseError", "database disk image is malformed"]\n')
    with pytest.raises(audit._WorkerFailed):
        audit._worker_outcome("")
    assert audit._worker_outcome('["ok", 2, ["fill#3", "fill#9"]]\n') == (2, ["fill#3", "fill#9"])


def test_in_memory_registry_is_audited_on_its_own_connection() -> None:
    with fresh_memdb() as memdb:
        assert audit._db_path(memdb) == ""
        assert audit.run_audit(memdb, workers=2).ok
