"""The registry audit: every invariant of `specs.lifecycle.INVARIANTS`, counted over the whole registry.

The spec is read only from `specs.lifecycle` (no second copy of states or transitions lives here). Counts come
from SQL aggregates so that the audit stays fast on years of data; the two hash chains are verified by one
streaming pass each, because a same-length flip of a stored value passes SQLite's own integrity_check.

Each root cause is counted once: a stored state that is not a state of the spec is `unknown_state_values` only,
not also a log mismatch or a closed-history violation; a terminal position whose stored remaining quantity
agrees with its ledger but is non-zero is `terminal_with_open_qty`, not also `remaining_qty_violations`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import peewee as pw

from lifecycle import chain
from specs.lifecycle import ACTIVE_STATES, CREATIONS, INVARIANT_FIELDS, STATE_NAMES, TABLE, TERMINAL_STATES

DETAIL_LIMIT = 5
RUNBOOK_FIELDS: tuple[str, ...] = (
    "duplicate_active_symbol_keys",
    "non_terminal_in_closed_history",
    "remaining_qty_violations",
)


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
    details: dict[str, list[str]] = field(default_factory=dict)
    """Up to DETAIL_LIMIT offending rows per non-zero field (position uids, `transition#id`, `fill#id`)."""

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


_COUNT_FIELDS = frozenset(f.name for f in fields(AuditReport)) - {"details"}
if set(INVARIANT_FIELDS) != _COUNT_FIELDS:
    raise ImportError("AuditReport must carry exactly the fields of specs.lifecycle.INVARIANTS; update both together")


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


def _aggregates(db: pw.Database) -> dict[str, tuple[int, list[str]]]:
    terminal = json.dumps(sorted(TERMINAL_STATES))
    active = json.dumps(sorted(ACTIVE_STATES))
    known = json.dumps(list(STATE_NAMES))
    legal = json.dumps(["|".join(part or "" for part in triple) for triple in _legal_triples()])
    # The spec's sets reach SQL as one JSON parameter each (`json_each(?)`): no SQL text is built from values.
    out: dict[str, tuple[int, list[str]]] = {}

    out["duplicate_active_symbol_keys"] = _query(
        db,
        "SELECT symbol_key || ': ' || group_concat(uid, ' ') FROM position"
        " WHERE state IN (SELECT value FROM json_each(?))"
        " GROUP BY symbol_key HAVING count(*) > 1",
        [active],
    )
    out["non_terminal_in_closed_history"] = _query(
        db,
        "SELECT uid FROM position WHERE (closed_ms IS NOT NULL AND state IN (SELECT value FROM json_each(?)))"
        " OR (closed_ms IS NULL AND state IN (SELECT value FROM json_each(?))) ORDER BY id",
        [active, terminal],
    )
    # MATERIALIZED: one GROUP BY pass over the ledger, then a keyed join (about twice as fast as a plain join).
    out["remaining_qty_violations"] = _query(
        db,
        "WITH f AS MATERIALIZED ("
        " SELECT position_id, sum(iif(is_entry, qty_units, -qty_units)) AS net FROM fill GROUP BY position_id)"
        " SELECT p.uid FROM position p LEFT JOIN f ON f.position_id = p.id"
        " WHERE p.remaining_qty_units < 0 OR p.remaining_qty_units IS NOT coalesce(f.net, 0) ORDER BY p.id",
    )
    out["unknown_state_values"] = _query(
        db,
        "SELECT uid || '=' || quote(state) FROM position"
        " WHERE state NOT IN (SELECT value FROM json_each(?)) ORDER BY id",
        [known],
    )
    # A row is illegal when its (source, event, target) is not in the spec, when its source is not where the
    # previous row of the same position left it (a lost or forged row), or when a creation is not its first row.
    out["illegal_logged_transitions"] = _query(
        db,
        "SELECT 'transition#' || t.id FROM transition t LEFT JOIN transition p ON p.id = ("
        " SELECT max(x.id) FROM transition x WHERE x.position_id = t.position_id AND x.id < t.id)"
        " WHERE (p.id IS NULL AND t.source IS NOT NULL) OR (p.id IS NOT NULL AND t.source IS NOT p.target)"
        " OR coalesce(t.source, '') || '|' || t.event || '|' || t.target NOT IN (SELECT value FROM json_each(?))"
        " ORDER BY t.id",
        [legal],
    )
    out["state_log_mismatch"] = _query(
        db,
        "SELECT p.uid FROM position p LEFT JOIN ("
        " SELECT position_id, max(id) AS last_id FROM transition GROUP BY position_id) l ON l.position_id = p.id"
        " LEFT JOIN transition t ON t.id = l.last_id"
        " WHERE p.state IN (SELECT value FROM json_each(?)) AND t.target IS NOT p.state ORDER BY p.id",
        [known],
    )
    out["protected_without_stop"] = _query(
        db,
        "SELECT uid FROM position WHERE state = 'PROTECTED' AND coalesce(trim(sl_order_id), '') = '' ORDER BY id",
    )
    out["terminal_with_open_qty"] = _query(
        db,
        "SELECT uid FROM position"
        " WHERE state IN (SELECT value FROM json_each(?)) AND remaining_qty_units != 0 ORDER BY id",
        [terminal],
    )
    return out


def _verify_chain(db: pw.Database, table: str) -> tuple[int, list[str]]:
    """One streaming pass in id order: count rows whose own hash or whose link to the previous row fails."""
    if table == "transition":
        sql = "SELECT id, position_id, event, source, target, cause, at_ms, prev_hash, row_hash FROM transition"
        th = chain.transition_hash

        def recompute(r: tuple[Any, ...]) -> str:
            return th(r[7], r[1], r[2], r[3], r[4], r[5], r[6])
    else:
        sql = (
            "SELECT id, fill_id, position_id, side, is_entry, qty_units, price, fill_ms, prev_hash, row_hash FROM fill"
        )
        fh = chain.fill_hash

        def recompute(r: tuple[Any, ...]) -> str:
            return fh(r[8], r[1], r[2], r[3], bool(r[4]), r[5], r[6], r[7])

    cursor = _execute(db, sql + " ORDER BY id")
    breaks = 0
    labels: list[str] = []
    expected_prev = chain.GENESIS
    while batch := cursor.fetchmany(20_000):
        for row in batch:
            prev_hash, row_hash = row[-2], row[-1]
            try:
                ok = prev_hash == expected_prev and recompute(row) == row_hash
            except (TypeError, ValueError):  # a damaged row can hold a value of the wrong type
                ok = False
            if not ok:
                breaks += 1
                if len(labels) < DETAIL_LIMIT:
                    labels.append(f"{table}#{row[0]}")
            # Link the next row to what is stored, so one damaged row counts once rather than breaking the rest.
            expected_prev = row_hash
    return breaks, labels


def run_audit(db: pw.Database) -> AuditReport:
    """Audit the registry behind `db` (read-only: it writes nothing, so it runs on a `readonly=True` connection)."""
    results = _aggregates(db)
    results["transition_chain_breaks"] = _verify_chain(db, "transition")
    results["fill_chain_breaks"] = _verify_chain(db, "fill")
    counts = {name: results[name][0] for name in INVARIANT_FIELDS}
    details = {name: results[name][1] for name in INVARIANT_FIELDS if results[name][0]}
    return AuditReport(**counts, details=details)


def quick_check(db: pw.Database, *, full: bool = False) -> IntegrityReport:
    """SQLite's structural check (`quick_check`, or `integrity_check` when `full`). It cannot see a same-length
    flip of a stored value; `run_audit`'s hash chains cover that."""
    check = "integrity_check" if full else "quick_check"
    rows = _execute(db, f"PRAGMA {check}").fetchall()
    messages = [str(r[0]) for r in rows]
    return IntegrityReport(ok=messages == ["ok"], check=check, messages=messages)
