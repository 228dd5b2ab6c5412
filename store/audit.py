"""The registry audit: every invariant of `specs.lifecycle.INVARIANTS`, counted over the whole registry.

The spec is read only from `specs.lifecycle` (no second copy of states or transitions lives here). Counts come
from SQL aggregates so that the audit stays fast on years of data; the two hash chains are verified by a pass
over every row, because a same-length flip of a stored value passes SQLite's own integrity_check.

Each root cause is counted once: a stored state that is not a state of the spec is `unknown_state_values` only,
not also a log mismatch or a closed-history violation; a terminal position whose stored remaining quantity
agrees with its ledger but is non-zero is `terminal_with_open_qty`, not also `remaining_qty_violations`.

Scope. A full audit re-hashes every chained row. Given the chains' anchors (`ChainHead`: where a clean audit
last found each chain, stored in `chain_anchor`), the audit first checks that each chain still ends the same way
there (same row, same hash, same row count: this is how rows deleted at the end of a chain show, which the chain
itself cannot see), then re-hashes only the rows after the anchor (`full=False`, the daemon's startup and runtime
audit) or all of them (`full=True`, the periodic full audit and `tools.check_db_health`). An anchor that does not
hold sends its chain to a full re-hash, and counts as a break of that chain when the re-hash finds none. Every
invariant over the position table (mutable, so never anchored) is counted over all rows in both scopes, and so is
everything else except the legality of logged transitions, which a tail audit checks for the rows after the anchor.

Speed (docs/audit.md has the figures): the chains are checked in id ranges. SQL builds each row's hashed
content (derived from `store.chain`'s signatures, see `ChainSpec`) and hands a whole range over as a few
strings, so Python only runs sha256 and compares joined strings; any range that is not provably clean that way
is re-checked row by row with `store.chain` itself, which is what counts and names the breaks. The ranges and
the aggregate queries are shared between the caller's connection and a few worker processes, each with its own
read-only connection (threads alone are slower: SQLite's allocator takes a global mutex); an in-memory database or
a small registry is audited on the caller's connection alone.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from operator import itemgetter, methodcaller
from pathlib import Path
from typing import Any

import peewee as pw

from lifecycle.stops import stop_problem
from specs.lifecycle import (
    ACTIVE_STATES,
    CREATIONS,
    INVARIANT_FIELDS,
    ORIGINS,
    POSITION_SIDES,
    STATE_NAMES,
    TABLE,
    TERMINAL_STATES,
    State,
    fill_side,
)
from store import chain
from store.db import connect
from store.keys import Keyed, load_seal

DETAIL_LIMIT = 5
RUNBOOK_FIELDS: tuple[str, ...] = (
    "duplicate_active_symbol_keys",
    "non_terminal_in_closed_history",
    "remaining_qty_violations",
)
CHUNK_ROWS = 20_000
"""Rows per chain range: large enough that per-query overhead vanishes, small enough to balance two cores."""
PARALLEL_MIN_ROWS = 100_000
"""Rows to re-hash from which worker processes pay for their start (about 0.1 s each); fewer stay on the caller's
connection. Measured (bench_audit): a tail audit of a 10,000-position registry took 0.30 s with workers and
0.155 s without, because only its aggregates, not its 1 % tail, were worth sharing."""
PARALLEL_MIN_REGISTRY_ROWS = 1_000_000
"""...unless the registry is this large: then the aggregates alone (they read every row in both scopes) are worth
sharing between processes."""
MAX_WORKERS = 4
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])


@dataclass(frozen=True)
class ChainHead:
    """Where a hash chain ends: its last row's id and stored hash, and its row count."""

    through_id: int
    through_hash: str
    rows: int


EMPTY_HEAD = ChainHead(0, chain.GENESIS, 0)
UNREADABLE_ANCHOR = ChainHead(-1, "", -1)
"""Stands for an anchor that should exist but is missing or unreadable: it never holds, so it is a finding."""
SCOPE_FULL = "full"
SCOPE_TAIL = "tail"


@dataclass(frozen=True)
class AuditReport:
    duplicate_active_symbol_keys: int = 0
    non_terminal_in_closed_history: int = 0
    remaining_qty_violations: int = 0
    unknown_state_values: int = 0
    illegal_logged_transitions: int = 0
    state_log_mismatch: int = 0
    protected_without_stop: int = 0
    terminal_with_open_qty: int = 0
    transition_chain_breaks: int = 0
    fill_chain_breaks: int = 0
    invalid_position_values: int = 0
    fill_side_mismatch: int = 0
    invalid_stop_prices: int = 0
    details: dict[str, list[str]] = field(default_factory=dict)
    """Up to DETAIL_LIMIT offending rows per non-zero field (position uids, `transition#id`, `fill#id`)."""
    scope: str = SCOPE_FULL
    """full: every chained row re-hashed; tail: only the rows after the anchors (see the module doc)."""
    heads: dict[str, ChainHead] = field(default_factory=dict)
    """Where each chain ended when this audit verified it: the anchors a clean report lets the caller record."""

    @property
    def violations_total(self) -> int:
        return sum(getattr(self, name) for name in INVARIANT_FIELDS)

    @property
    def ok(self) -> bool:
        return self.violations_total == 0

    def fields(self) -> dict[str, int]:
        """violations_total first, then the runbook's fields, then the rest in spec order (the log line's order)."""
        out = {"violations_total": self.violations_total}
        for name in (*RUNBOOK_FIELDS, *INVARIANT_FIELDS):
            out[name] = getattr(self, name)
        return out

    def summary(self) -> str:
        """One line an operator can act on: the non-zero fields with their first offending rows."""
        if self.ok:
            return "registry audit clean"
        parts = []
        for name, count in self.fields().items():
            if name != "violations_total" and count:
                parts.append(f"{name}={count} ({', '.join(self.details.get(name, []))})")
        return f"registry audit failed: violations_total={self.violations_total}: " + "; ".join(parts)


_COUNT_FIELDS = frozenset(f.name for f in fields(AuditReport)) - {"details", "scope", "heads"}
if set(INVARIANT_FIELDS) != _COUNT_FIELDS:
    raise ImportError("AuditReport must carry exactly the fields of specs.lifecycle.INVARIANTS; update both together")


class KeyRequired(Exception):
    """The registry is keyed and the caller gave no key: its chains cannot be verified."""


@dataclass(frozen=True)
class IntegrityReport:
    ok: bool
    check: str  # quick_check | integrity_check
    messages: list[str]


def _legal_triples() -> list[tuple[str | None, str, str]]:
    triples: list[tuple[str | None, str, str]] = [(None, c.event, c.target) for c in CREATIONS]
    triples += [(source, event, target) for (source, event), target in sorted(TABLE.items())]
    return triples


def _execute(db: pw.Database, sql: str, params: Sequence[object] = ()) -> sqlite3.Cursor:
    cursor: sqlite3.Cursor = db.execute_sql(sql, params)  # type: ignore[no-untyped-call]
    return cursor


def _query(db: pw.Database, sql: str, params: Sequence[object] = ()) -> tuple[int, list[str]]:
    """Count the rows of an offender query (one label per row) in one pass, keeping the first few labels."""
    cursor = _execute(db, sql, params)
    count = 0
    labels: list[str] = []
    for row in cursor:
        count += 1
        if len(labels) < DETAIL_LIMIT:
            labels.append(str(row[0]))
    return count, labels


Query = tuple[str, str, tuple[object, ...]]
"""(field, offender SQL, parameters): one aggregate of the audit."""


@functools.lru_cache(maxsize=16)  # each task of one audit asks for the same ones: built once per audit, not per task
def _aggregate_queries(transitions_after: int = 0, fills_after: int = 0) -> tuple[Query, ...]:
    """The SQL aggregates, slowest first (the parallel run starts the long ones early). `transitions_after`,
    `fills_after`: the legality of logged transitions, and the side of fills, are checked for rows with a larger
    id only (a tail audit's anchors)."""
    terminal = json.dumps(sorted(TERMINAL_STATES))
    active = json.dumps(sorted(ACTIVE_STATES))
    known = json.dumps(list(STATE_NAMES))
    legal = json.dumps([[part or "" for part in triple] for triple in _legal_triples()])
    sides = json.dumps(list(POSITION_SIDES))
    # A fill is on the wrong side when its side is not the spec's for its position's side and role
    # (`specs.lifecycle.fill_side`), as one CASE over the position's side: per row a comparison, not the string
    # building and set lookup of a (side, role, fill side) triple, which was a third of the aggregates' time on 2M
    # fills. Fills of a position whose own side is invalid are left to invalid_position_values (the CASE is NULL).
    expected_side = "CASE p.side " + " ".join("WHEN ? THEN iif(f.is_entry != 0, ?, ?)" for _ in POSITION_SIDES) + " END"
    expected_params = tuple(
        value for side in POSITION_SIDES for value in (side, fill_side(side, True), fill_side(side, False))
    )
    wrong_side = f"({expected_side}) IS NOT NULL AND f.side IS NOT ({expected_side})"
    price_ok = (
        "({c} IS NULL OR (typeof({c}) = 'text' AND {c} NOT GLOB '*[^0-9.]*' AND {c} NOT GLOB '*.*.*'"
        " AND CAST({c} AS REAL) > 0))"
    )
    # Every fill after the anchor (all of them in a full audit), counted per position. A side edited in an old
    # position's row is found by the next full audit, like an edited old fill; an active one's also shows at once
    # in reconciliation, as a quantity mismatch against the venue's signed position.
    side_sql = (
        "SELECT p.uid FROM fill f JOIN position p ON p.id = f.position_id"  # noqa: S608 - code; values are parameters
        f" WHERE f.id > ? AND {wrong_side} GROUP BY p.id ORDER BY p.id"
    )
    side_params = (fills_after, *expected_params, *expected_params)
    valid_position = " AND ".join(
        [
            "side IN (SELECT value FROM json_each(?))",
            "origin IN (SELECT value FROM json_each(?))",
            "typeof(target_qty_units) = 'integer' AND target_qty_units >= 0",
            "typeof(remaining_qty_units) = 'integer'",
            "typeof(created_ms) = 'integer' AND created_ms > 0 AND typeof(updated_ms) = 'integer'",
            "(closed_ms IS NULL OR typeof(closed_ms) = 'integer')",
            *(price_ok.format(c=c) for c in ("entry_price", "stop_price", "take_profit_price")),
        ]
    )
    # The spec's sets reach SQL as one JSON parameter each (`json_each(?)`): no SQL text is built from values.
    return (
        # A row is illegal when its (source, event, target) is not in the spec, when its source is not where the
        # previous row of the same position left it (a lost or forged row), or when a creation is not its first
        # row. (Measured: a lag() window over (position_id, id) is slower than this keyed self-join.)
        (
            "illegal_logged_transitions",
            "SELECT 'transition#' || t.id FROM transition t LEFT JOIN transition p ON p.id = ("
            " SELECT max(x.id) FROM transition x WHERE x.position_id = t.position_id AND x.id < t.id)"
            " WHERE t.id > ? AND ((p.id IS NULL AND t.source IS NOT NULL)"
            " OR (p.id IS NOT NULL AND t.source IS NOT p.target)"
            " OR (coalesce(t.source, ''), t.event, t.target) NOT IN ("
            "  SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]')"
            "  FROM json_each(?)))"
            " ORDER BY t.id",
            (transitions_after, legal),
        ),
        # MATERIALIZED: one GROUP BY pass over the ledger (the fill_net covering index when the schema has it),
        # then a keyed join (about twice as fast as a plain join).
        (
            "remaining_qty_violations",
            "WITH f AS MATERIALIZED ("
            " SELECT position_id, sum(iif(is_entry, qty_units, -qty_units)) AS net FROM fill GROUP BY position_id)"
            " SELECT p.uid FROM position p LEFT JOIN f ON f.position_id = p.id"
            " WHERE p.remaining_qty_units < 0 OR p.remaining_qty_units IS NOT coalesce(f.net, 0) ORDER BY p.id",
            (),
        ),
        (
            "state_log_mismatch",
            "SELECT p.uid FROM position p LEFT JOIN ("
            " SELECT position_id, max(id) AS last_id FROM transition GROUP BY position_id) l ON l.position_id = p.id"
            " LEFT JOIN transition t ON t.id = l.last_id"
            " WHERE p.state IN (SELECT value FROM json_each(?)) AND t.target IS NOT p.state ORDER BY p.id",
            (known,),
        ),
        (
            "invalid_position_values",
            f"SELECT uid FROM position WHERE NOT ({valid_position}) ORDER BY id",  # noqa: S608 - code, not data
            (sides, json.dumps(list(ORIGINS))),
        ),
        (
            "duplicate_active_symbol_keys",
            "SELECT symbol_key || ': ' || group_concat(uid, ' ') FROM position"
            " WHERE state IN (SELECT value FROM json_each(?))"
            " GROUP BY symbol_key HAVING count(*) > 1",
            (active,),
        ),
        (
            "non_terminal_in_closed_history",
            "SELECT uid FROM position WHERE (closed_ms IS NOT NULL AND state IN (SELECT value FROM json_each(?)))"
            " OR (closed_ms IS NULL AND state IN (SELECT value FROM json_each(?))) ORDER BY id",
            (active, terminal),
        ),
        (
            "unknown_state_values",
            "SELECT uid || '=' || quote(state) FROM position"
            " WHERE state NOT IN (SELECT value FROM json_each(?)) ORDER BY id",
            (known,),
        ),
        (
            "protected_without_stop",
            "SELECT uid FROM position WHERE state = ? AND coalesce(trim(sl_order_id), '') = '' ORDER BY id",
            (State.PROTECTED.value,),
        ),
        (
            "terminal_with_open_qty",
            "SELECT uid FROM position"
            " WHERE state IN (SELECT value FROM json_each(?)) AND remaining_qty_units != 0 ORDER BY id",
            (terminal,),
        ),
        ("fill_side_mismatch", side_sql, side_params),
    )


DEFAULT_MAX_STOP_DISTANCE_PCT = Decimal(25)
"""risk.max_stop_distance_pct's default: the audit's bound when the caller does not pass the configured one."""


def _stop_prices(db: pw.Database, max_distance_pct: Decimal) -> Outcome:
    """INV-13 over the active positions (few: one per symbol at most), through `lifecycle.stops.stop_problem`, the
    same rule the protection planner applies before sending a stop. The mark is not in the registry: the side of
    the mark is the planner's and reconciliation's check. Rows INV-11 already counts (an invalid side, a price that
    is not a positive decimal) are left to it, so each root cause counts once."""
    sql = (
        "SELECT uid, side, entry_price, stop_price FROM position"
        " WHERE state IN (SELECT value FROM json_each(?)) AND stop_price IS NOT NULL ORDER BY id"
    )
    count, labels = 0, list[str]()
    for uid, side, entry_text, stop_text in _execute(db, sql, (json.dumps(sorted(ACTIVE_STATES)),)).fetchall():
        try:
            entry = None if entry_text is None else Decimal(str(entry_text))
            stop = Decimal(str(stop_text))
        except (InvalidOperation, ValueError):
            continue
        if side not in POSITION_SIDES or not stop.is_finite() or stop <= 0 or (entry is not None and entry <= 0):
            continue
        problem = stop_problem(side, entry, stop, None, max_distance_pct)
        if problem is not None:
            count += 1
            if len(labels) < DETAIL_LIMIT:
                labels.append(f"{uid} ({problem})")
    return count, labels


def _aggregates(db: pw.Database) -> dict[str, tuple[int, list[str]]]:
    return {name: _query(db, sql, params) for name, sql, params in _aggregate_queries()}


# --- hash chains -------------------------------------------------------------------------------------------------

# chain._digest is the one definition of a row's hashed bytes: prev_hash, RECORD_SEP, then the fields joined by
# FIELD_SEP with None as "" and everything else as str(). The SQL below mirrors that rule for the value types it
# renders identically (checked per range, see `_fast_range`); tests/audit/test_chain_sql.py holds the two equal.
RECORD_SEP = "\x1e"
FIELD_SEP = "\x1f"
_ROW_SEP = "\x1d"  # between rows of one range; a row whose content holds it simply takes the exact path
_HASH_SEP = ","  # between stored hashes; never in a hex digest
_ROW_SEP_B = _ROW_SEP.encode()
_RECORD_SEP_B = RECORD_SEP.encode()
_HEX = methodcaller("hexdigest")
_LINK = itemgetter(slice(0, 64 + len(_RECORD_SEP_B)))  # a piece's prev_hash and the RECORD_SEP after it
_SQL_KINDS = {int: "int", bool: "bool", str: "str", str | None: "str"}


@dataclass(frozen=True)
class ChainSpec:
    """One hash-chained table, derived from its `store.chain` function: the hashed columns are that function's
    parameters after `prev_hash`, in order and by name, so the column list cannot drift from the hash."""

    table: str
    hash_fn: Callable[..., str]
    columns: tuple[str, ...]
    kinds: tuple[str, ...]  # int | bool | str, from the annotations

    @classmethod
    def of(cls, table: str, hash_fn: Callable[..., str]) -> ChainSpec:
        params = [
            p
            for p in inspect.signature(hash_fn, eval_str=True).parameters.values()
            if p.kind is not inspect.Parameter.KEYWORD_ONLY  # `key`: which digest, not a hashed column
        ]
        if not params or params[0].name != "prev_hash":
            raise ImportError(f"{hash_fn.__name__} must take prev_hash first; store.audit reads its signature")
        kinds = []
        for p in params[1:]:
            kind = _SQL_KINDS.get(p.annotation)
            if kind is None:
                raise ImportError(
                    f"{hash_fn.__name__}({p.name}: {p.annotation}): store.audit cannot render this type in SQL;"
                    " teach ChainSpec how str() renders it"
                )
            kinds.append(kind)
        return cls(table, hash_fn, tuple(p.name for p in params[1:]), tuple(kinds))

    def recompute(self, prev_hash: Any, values: Sequence[Any], key: bytes | None = None) -> str:
        """The exact hash through `store.chain` (bool columns as the writer passes them; keyed when `key`)."""
        args = [bool(v) if kind == "bool" else v for v, kind in zip(values, self.kinds, strict=True)]
        return self.hash_fn(prev_hash, *args, key=key)

    @property
    def content_format(self) -> str:
        """The printf() format that renders prev_hash and the columns as chain._digest joins them."""
        return "%s" + RECORD_SEP + FIELD_SEP.join("%s" for _ in self.columns)

    def content_args_sql(self) -> str:
        """printf() arguments: SQLite's %s renders NULL as '', integers and text as str() does; bools as 0/1."""
        return ", ".join(
            ["prev_hash", *(f"({c} != 0)" if k == "bool" else c for c, k in zip(self.columns, self.kinds, strict=True))]
        )

    def types_ok_sql(self) -> str:
        """1 when every hashed value of the row is one SQL renders exactly as str() does: no REAL, no BLOB, no NULL
        bool, and no NUL inside a text that printf renders (SQLite's printf stops at a NUL, str() does not; found
        by tests/audit/test_chain_sql.py). Otherwise the range is left to the exact path."""
        allowed = {"int": "('integer', 'null')", "str": "('text', 'null')", "bool": "('integer')"}
        checks = ["typeof(prev_hash) = 'text'", "typeof(row_hash) = 'text'", "instr(prev_hash, char(0)) = 0"]
        for c, k in zip(self.columns, self.kinds, strict=True):
            checks.append(f"typeof({c}) IN {allowed[k]}")
            if k == "str":
                checks.append(f"ifnull(instr({c}, char(0)), 0) = 0")
        return " AND ".join(checks)


# Table and column names in this module's SQL come only from these specs (code, never data): hence the S608 noqa.
CHAINS: dict[str, ChainSpec] = {
    "transition": ChainSpec.of("transition", chain.transition_hash),
    "fill": ChainSpec.of("fill", chain.fill_hash),
}
ChainResult = tuple[int, list[str], str]
"""(breaks, first labels, the stored row_hash of the range's last row) for one id range."""


def _prev_hash_before(db: pw.Database, spec: ChainSpec, lo: int) -> Any:
    """The stored row_hash of the last row at or before `lo` (what the first row of the range must link to)."""
    sql = f'SELECT row_hash FROM "{spec.table}" WHERE id <= ? ORDER BY id DESC LIMIT 1'  # noqa: S608
    row = _execute(db, sql, (lo,)).fetchone()
    return chain.GENESIS if row is None else row[0]


def _hasher(key: bytes | None) -> Callable[[bytes], Any]:
    """The digest object constructor `chain.digest_bytes` uses, for `map` at C speed (no Python call per row)."""
    if key is None:
        return hashlib.sha256
    return functools.partial(hashlib.blake2b, key=key, digest_size=chain.DIGEST_SIZE)


def _fast_range(db: pw.Database, spec: ChainSpec, lo: int, hi: int, prev: Any, key: bytes | None = None) -> bool:
    """True when every row with lo < id <= hi provably passes, hash and link. False means "not proven" (a break,
    an odd value, a separator inside a value): the exact path then decides, counts and names the rows.

    Why a True is exact: the type check makes SQLite's rendering of every hashed value equal to str()'s; the
    separator counts prove each piece is one row with exactly one RECORD_SEP, right after its prev_hash; the
    stored row hashes are compared comma-joined (no NULL, no comma in a hex digest) with freshly computed ones;
    each piece's first 65 bytes must be the previous row's hash and RECORD_SEP, which pins prev_hash exactly.
    The range is scanned in rowid order, the same order the exact path's ORDER BY id walks."""
    sql = (
        f"SELECT count(*), total({spec.types_ok_sql()}), group_concat(row_hash, '{_HASH_SEP}'),"  # noqa: S608
        f" CAST(group_concat(printf(?, {spec.content_args_sql()}), char({ord(_ROW_SEP)})) AS BLOB)"
        f' FROM "{spec.table}" WHERE id > ? AND id <= ?'
    )
    n, typed_ok, stored, content = _execute(db, sql, (spec.content_format, lo, hi)).fetchone()
    if n == 0:
        return True
    if typed_ok != n or not _is_hex_digest(prev):
        return False
    rows = content.split(_ROW_SEP_B)
    if len(rows) != n or content.count(_RECORD_SEP_B) != n:
        return False
    computed = list(map(_HEX, map(_hasher(key), rows)))
    if _HASH_SEP.join(computed) != stored:
        return False
    links = b"".join(map(_LINK, rows))
    return links == (RECORD_SEP.join([prev, *computed[:-1]]) + RECORD_SEP).encode()


def _is_hex_digest(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _exact_range(
    db: pw.Database, spec: ChainSpec, lo: int, hi: int, prev: Any, key: bytes | None = None
) -> tuple[int, list[str], Any]:
    """Row by row through `store.chain`: count rows whose own hash or whose link to the previous row fails."""
    cols = ", ".join(["id", *spec.columns, "prev_hash", "row_hash"])
    sql = f'SELECT {cols} FROM "{spec.table}" WHERE id > ? AND id <= ? ORDER BY id'  # noqa: S608
    cursor = _execute(db, sql, (lo, hi))
    breaks = 0
    labels: list[str] = []
    expected_prev = prev
    while batch := cursor.fetchmany(5_000):
        for row in batch:
            prev_hash, row_hash = row[-2], row[-1]
            try:
                ok = prev_hash == expected_prev and spec.recompute(prev_hash, row[1:-2], key) == row_hash
            except (TypeError, ValueError):  # a damaged row can hold a value of the wrong type
                ok = False
            if not ok:
                breaks += 1
                if len(labels) < DETAIL_LIMIT:
                    labels.append(f"{spec.table}#{row[0]}")
            # Link the next row to what is stored, so one damaged row counts once rather than breaking the rest.
            expected_prev = row_hash
    return breaks, labels, expected_prev


def _verify_range(
    db: pw.Database, spec: ChainSpec, lo: int, hi: int, key: bytes | None = None
) -> tuple[int, list[str]]:
    prev = _prev_hash_before(db, spec, lo)
    if _fast_range(db, spec, lo, hi, prev, key):
        return 0, []
    breaks, labels, _ = _exact_range(db, spec, lo, hi, prev, key)
    return breaks, labels


def _last_id(db: pw.Database, table: str) -> int:
    """The chain's last id now (0 when empty): the audit's end, so rows appended meanwhile are the next audit's."""
    (hi,) = _execute(db, f'SELECT max(id) FROM "{table}"').fetchone()  # noqa: S608
    return 0 if hi is None else int(hi)


def _ranges(
    db: pw.Database, table: str, chunk_rows: int, after: int = 0, end: int | None = None
) -> list[tuple[int, int]]:
    """(lo, hi] id ranges covering the rows after id `after` up to `end` (default: the last row now)."""
    sql = f'SELECT min(id) - 1, max(id) FROM "{table}" WHERE id > ? AND id <= ?'  # noqa: S608
    lo, hi = _execute(db, sql, (after, 2**63 - 1 if end is None else end)).fetchone()
    if hi is None:
        return []
    if (hi - lo) // chunk_rows <= 10_000:
        return [(a, min(a + chunk_rows, hi)) for a in range(lo, hi, chunk_rows)]
    # Sparse ids (hand-inserted outliers): step by rows instead, so empty ranges cannot pile up.
    out: list[tuple[int, int]] = []
    while True:
        sql = f'SELECT id FROM "{table}" WHERE id > ? ORDER BY id LIMIT 1 OFFSET ?'  # noqa: S608
        row = _execute(db, sql, (lo, chunk_rows - 1)).fetchone()
        if row is None:
            out.append((lo, hi))
            return out
        out.append((lo, int(row[0])))
        lo = int(row[0])


def _merge(parts: Sequence[tuple[int, list[str]]]) -> tuple[int, list[str]]:
    """Sum range results kept in id order, keeping the first labels overall."""
    labels: list[str] = []
    for _, part in parts:
        labels.extend(part[: DETAIL_LIMIT - len(labels)])
    return sum(n for n, _ in parts), labels


def _verify_chain(db: pw.Database, table: str, chunk_rows: int = CHUNK_ROWS) -> tuple[int, list[str]]:
    """One table's chain on one connection (the sequential path; also the benchmark's per-chain figure)."""
    spec = CHAINS[table]
    return _merge([_verify_range(db, spec, lo, hi) for lo, hi in _ranges(db, table, chunk_rows)])


def _count_through(db: pw.Database, table: str, after: int | None, through: int) -> int:
    """Rows with after < id <= through; `after` None: every row up to `through`, whatever its id (a row forced in
    at id 0 or below, before the chain's first, must change the count up to an anchor).

    Counted as every row less those past either end, in one statement (one snapshot): SQLite counts a whole table
    from its smallest index, and each end is a rowid search, while `count(*) WHERE id <= ?` walks the table's own
    pages (2,000,000 fills: 0.24 s against about 0.01 s)."""
    sql = f'SELECT (SELECT count(*) FROM "{table}") - (SELECT count(*) FROM "{table}" WHERE id > ?)'  # noqa: S608
    params: tuple[int, ...] = (through,)
    if after is not None:
        sql += f' - (SELECT count(*) FROM "{table}" WHERE id <= ?)'  # noqa: S608
        params = (through, min(after, through))
    return int(_execute(db, sql, params).fetchone()[0])


def _stored_hash(db: pw.Database, table: str, row_id: int) -> Any:
    """The row's stored row_hash, or None when there is no such row."""
    row = _execute(db, f'SELECT row_hash FROM "{table}" WHERE id = ?', (row_id,)).fetchone()  # noqa: S608
    return None if row is None else row[0]


def _anchor_holds(db: pw.Database, table: str, anchor: ChainHead) -> bool:
    """True when the chain still passes through the anchor: the same row with the same stored hash, and the same
    number of rows up to it (a deleted row anywhere before it changes that count)."""
    if anchor.through_id == 0:
        return anchor.rows == 0 and anchor.through_hash == chain.GENESIS
    if _stored_hash(db, table, anchor.through_id) != anchor.through_hash:
        return False
    return _count_through(db, table, None, anchor.through_id) == anchor.rows


def _head(db: pw.Database, table: str, end: int, base: ChainHead) -> ChainHead:
    """The chain's head at id `end`, counting on from `base` (a held anchor, or EMPTY_HEAD)."""
    if end == 0:
        return EMPTY_HEAD
    row_hash = _stored_hash(db, table, end)
    return ChainHead(end, str(row_hash), base.rows + _count_through(db, table, base.through_id, end))


def _anchor_label(table: str, anchor: ChainHead) -> str:
    if anchor == UNREADABLE_ANCHOR:
        return (
            f"{table} (anchor: missing or unreadable in chain_anchor while the table holds others; the anchor table"
            " was edited or is damaged)"
        )
    return (
        f"{table}#{anchor.through_id} (anchor: a clean audit found {anchor.rows} rows ending there with hash"
        f" {anchor.through_hash[:12]}; rows were deleted or rewritten since, or the anchor itself is damaged)"
    )


# --- running ---------------------------------------------------------------------------------------------------

TaskSpec = tuple[str, str, int, int]
"""("query", field, transitions_after, fills_after) or ("chain", table, lo, hi): plain values, so a worker process
can run it."""
Outcome = tuple[int, list[str]]


Keying = tuple[bytes | None, dict[str, int]]
"""(the key's secret or None, per chain the last unkeyed row id): which digest each chain range is checked with."""
UNKEYED: Keying = (None, {})


def _range_key(keying: Keying, table: str, hi: int) -> bytes | None:
    """The key for a chain range (ranges never straddle the keyed boundary): None for the rows before it."""
    secret, keyed_after = keying
    if secret is None or hi <= keyed_after.get(table, 0):
        return None
    return secret


def _run_task(db: pw.Database, task: TaskSpec, keying: Keying = UNKEYED) -> Outcome:
    kind, name, lo, hi = task
    if kind == "query":
        _, sql, params = next(q for q in _aggregate_queries(lo, hi) if q[0] == name)
        return _query(db, sql, params)
    return _verify_range(db, CHAINS[name], lo, hi, _range_key(keying, name, hi))


class _WorkerFailed(Exception):
    """A worker process could not be started or died: the audit is redone on the caller's connection."""


def worker_main() -> None:
    """A worker process (`python -c "from store.audit import worker_main; worker_main()"`): the first stdin line
    is [path, busy_timeout, key hex or null, keyed_after]; then one JSON task per line in, one JSON outcome per line
    out, until stdin closes. The key travels over the pipe only (never argv or the environment)."""
    path, busy_timeout, key_hex, keyed_after = json.loads(sys.stdin.readline())
    keying: Keying = (
        None if key_hex is None else bytes.fromhex(key_hex),
        {str(k): int(v) for k, v in keyed_after.items()},
    )
    db = connect(path, readonly=True)
    _execute(db, f"PRAGMA busy_timeout = {int(busy_timeout)}")
    for line in sys.stdin:
        kind, name, lo, hi = json.loads(line)
        try:
            out: list[object] = ["ok", *_run_task(db, (kind, name, lo, hi), keying)]
        except sqlite3.Error as exc:  # the caller re-raises it as the same sqlite3 error class
            out = ["error", type(exc).__name__, str(exc)]
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()
    db.close()


def _start_worker(path: str, busy_timeout: int, keying: Keying) -> subprocess.Popen[str]:
    # A plain subprocess rather than multiprocessing: nothing of the caller (threads, locks, open connections,
    # its __main__ module) is inherited or re-imported.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([_PACKAGE_ROOT, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from store.audit import worker_main; worker_main()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert proc.stdin is not None
    secret, keyed_after = keying
    proc.stdin.write(json.dumps([path, busy_timeout, None if secret is None else secret.hex(), keyed_after]) + "\n")
    return proc


def _worker_outcome(line: str) -> Outcome:
    if not line:
        raise _WorkerFailed("audit worker exited")
    status, *rest = json.loads(line)
    if status == "error":
        name, message = rest
        error_class = getattr(sqlite3, name, sqlite3.DatabaseError)
        raise error_class(message) if isinstance(error_class, type) else sqlite3.DatabaseError(message)
    count, labels = rest
    return int(count), [str(label) for label in labels]


def _db_path(db: pw.Database) -> str:
    """The main database's file, or '' for an in-memory or temporary one."""
    for _, name, file in _execute(db, "PRAGMA database_list").fetchall():
        if name == "main":
            return str(file or "")
    return ""


def _run_parallel(
    db: pw.Database, path: str, tasks: Sequence[TaskSpec], workers: int, keying: Keying = UNKEYED
) -> list[Outcome]:
    """Run `tasks` on the caller's connection and on `workers - 1` worker processes, each taking the next task
    when it is free. Threads alone do not help: SQLite's allocator takes a global mutex (measured slower)."""
    (busy_timeout,) = _execute(db, "PRAGMA busy_timeout").fetchone()
    results: list[Outcome | None] = [None] * len(tasks)
    lock = threading.Lock()
    order = iter(range(len(tasks)))
    errors: list[BaseException] = []

    def take() -> int | None:
        with lock:
            return None if errors else next(order, None)

    def feed(proc: subprocess.Popen[str]) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            while (i := take()) is not None:
                proc.stdin.write(json.dumps(tasks[i]) + "\n")
                proc.stdin.flush()
                results[i] = _worker_outcome(proc.stdout.readline())
        except (OSError, ValueError) as exc:
            errors.append(_WorkerFailed(f"audit worker failed: {exc}"))
        except BaseException as exc:  # re-raised in the caller's thread below
            errors.append(exc)

    procs: list[subprocess.Popen[str]] = []
    try:
        for _ in range(workers - 1):
            procs.append(_start_worker(path, int(busy_timeout), keying))
    except OSError as exc:  # e.g. EAGAIN at a process limit: the caller redoes the audit on its own connection
        for proc in procs:
            _close_stdin(proc)
            proc.kill()
            proc.wait()
        raise _WorkerFailed(f"audit worker could not be started: {exc}") from None
    feeders = [threading.Thread(target=feed, args=(p,), name="audit-feed", daemon=True) for p in procs]
    try:
        for t in feeders:
            t.start()
        while (i := take()) is not None:
            try:
                results[i] = _run_task(db, tasks[i], keying)
            except BaseException as exc:
                errors.append(exc)
    finally:
        for proc in procs:
            _close_stdin(proc)
        for t in feeders:
            t.join()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    if errors:
        raise errors[0]
    return [r for r in results if r is not None]


def _close_stdin(proc: subprocess.Popen[str]) -> None:
    """Close a worker's stdin. A worker already gone leaves the line its feeder could not send in the buffer, and
    closing flushes it again: that BrokenPipeError is the failure the feeder already recorded, not a new one."""
    if proc.stdin is None:
        return
    with contextlib.suppress(OSError, ValueError):
        proc.stdin.close()


def run_audit(
    db: pw.Database,
    *,
    anchors: Mapping[str, ChainHead] | None = None,
    full: bool = True,
    workers: int | None = None,
    chunk_rows: int = CHUNK_ROWS,
    keyed: Keyed | None = None,
    max_stop_distance_pct: Decimal = DEFAULT_MAX_STOP_DISTANCE_PCT,
) -> AuditReport:
    """Audit the registry behind `db` (read-only: it writes nothing, so it runs on a `readonly=True` connection).

    `keyed`: the registry's key and seal (`store.keys.verify_seal`); required when the registry is sealed
    (KeyRequired otherwise). Rows after each chain's seal boundary are checked as keyed MACs, rows up to it as
    sha256; a seal that does not verify counts one break of its chain and the whole chain is checked as keyed.

    `anchors`: where a clean audit last found each chain (`chain_anchor`); each is checked, and with `full=False`
    only the rows after a holding anchor are re-hashed (module doc). Without anchors the audit is full.
    `workers`: processes, each with its own read-only connection to the same file (None: one per core, at most
    MAX_WORKERS, for a file registry of PARALLEL_MIN_ROWS chained rows or more; else 1, on `db` itself). An
    in-memory database is always audited on `db`. Each query sees one consistent snapshot; the chains' ends are
    fixed when the audit starts, so rows appended meanwhile are left to the next audit."""
    anchors = dict(anchors or {})
    if keyed is None and load_seal(db):
        raise KeyRequired("the registry is keyed (chain_seal): its audit needs the key file (store.keys)")
    keying: Keying = UNKEYED if keyed is None else (keyed.key.secret, dict(keyed.keyed_after))
    ends = {table: _last_id(db, table) for table in CHAINS}
    held = {table: _anchor_holds(db, table, anchor) for table, anchor in anchors.items() if table in CHAINS}
    tail = not full and bool(anchors) and all(held.get(table, False) for table in CHAINS)
    starts = {table: anchors[table] if tail else EMPTY_HEAD for table in CHAINS}
    query_after = (starts["transition"].through_id, starts["fill"].through_id)
    tasks: list[TaskSpec] = [("query", name, *query_after) for name, _, _ in _aggregate_queries()]
    for table in CHAINS:
        after = starts[table].through_id
        boundary = keying[1].get(table, 0) if keying[0] is not None else ends[table]
        spans = [(after, min(ends[table], boundary)), (max(after, boundary), ends[table])]
        for lo_id, hi_id in spans:  # the unkeyed rows, then the keyed ones: no range straddles the boundary
            if hi_id > lo_id:
                tasks += [("chain", table, lo, hi) for lo, hi in _ranges(db, table, chunk_rows, lo_id, hi_id)]
    path = _db_path(db)
    if workers is None:
        registry_rows = sum(ends.values())  # the aggregates read every row whatever the scope
        rehash_rows = sum(hi - lo for kind, _, lo, hi in tasks if kind == "chain")
        worth = rehash_rows >= PARALLEL_MIN_ROWS or registry_rows >= PARALLEL_MIN_REGISTRY_ROWS
        workers = min(MAX_WORKERS, os.cpu_count() or 1) if worth else 1
    outcomes: list[Outcome] | None = None
    if workers > 1 and path:
        try:
            outcomes = _run_parallel(db, path, tasks, workers, keying)
        except _WorkerFailed:
            outcomes = None  # no second process possible here: do it all on `db`
    if outcomes is None:
        outcomes = [_run_task(db, task, keying) for task in tasks]
    results: dict[str, Outcome] = {}
    chain_parts: dict[str, list[Outcome]] = {table: [] for table in CHAINS}
    for (kind, name, _, _), outcome in zip(tasks, outcomes, strict=True):
        if kind == "query":
            results[name] = outcome
        else:
            chain_parts[name].append(outcome)  # tasks are in id order per table
    for table, parts in chain_parts.items():
        breaks, labels = _merge(parts)
        if not held.get(table, True) and breaks == 0:
            # The chain re-hashes clean, yet it no longer passes through where a clean audit left it: rows were
            # deleted at its end (which no chain can see), or the anchor row is damaged. Either way, a finding.
            breaks, labels = 1, [_anchor_label(table, anchors[table])]
        if keyed is not None and table in keyed.broken:
            breaks, labels = breaks + 1, [keyed.broken[table], *labels][:DETAIL_LIMIT]
        results[f"{table}_chain_breaks"] = (breaks, labels)
    results["invalid_stop_prices"] = _stop_prices(db, max_stop_distance_pct)
    counts = {name: results[name][0] for name in INVARIANT_FIELDS}
    details = {name: results[name][1] for name in INVARIANT_FIELDS if results[name][0]}
    # Count on from a held anchor in either scope: its rows were counted when it was checked above.
    bases = {table: anchors[table] if held.get(table) else EMPTY_HEAD for table in CHAINS}
    heads = {table: _head(db, table, ends[table], bases[table]) for table in CHAINS}
    return AuditReport(**counts, details=details, scope=SCOPE_TAIL if tail else SCOPE_FULL, heads=heads)


def quick_check(db: pw.Database, *, full: bool = False) -> IntegrityReport:
    """SQLite's structural check (`quick_check`, or `integrity_check` when `full`). It cannot see a same-length
    flip of a stored value; `run_audit`'s hash chains cover that."""
    check = "integrity_check" if full else "quick_check"
    rows = _execute(db, f"PRAGMA {check}").fetchall()
    messages = [str(r[0]) for r in rows]
    return IntegrityReport(ok=messages == ["ok"], check=check, messages=messages)
