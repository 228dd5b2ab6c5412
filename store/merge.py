"""The startup merge: re-key positions whose stored symbol key is not canonical, and report the collisions.

Format drift (`pf_xbtusd`, `BTC/USD:USD`, `XBTUSD` stored where `PF_XBTUSD` belongs) splits one instrument over
several keys, and every lookup by key then misses rows. The merge re-keys such rows deterministically (in id
order) and reports every group that collapsed onto one key from more than one spelling, which the daemon logs
as `RECOVERY_MERGE_COLLISION`. Rows are never deleted and fills never move (the fill chain covers position
ids): if two ACTIVE positions end up on one key, the audit's `duplicate_active_symbol_keys` stops startup, which
is the intended fail-fast. A second run finds nothing to re-key and reports nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field

import peewee as pw

from lifecycle.clock import Clock, to_ms
from lifecycle.errors import MalformedSymbol
from lifecycle.symbols import canonical_key
from specs.lifecycle import ACTIVE_STATES

Canonicalizer = Callable[[str], str]


@dataclass(frozen=True)
class MergeCollision:
    symbol_key: str
    survivor: str  # uid: the oldest active position, else the oldest
    merged: tuple[str, ...]  # the other uids now sharing the key (rows kept, nothing deleted)
    spellings: tuple[str, ...]  # the distinct stored keys that collapsed, sorted


@dataclass(frozen=True)
class Unparseable:
    uid: str
    symbol_key: str
    reason: str


@dataclass(frozen=True)
class MergeReport:
    rekeyed: int
    collisions: list[MergeCollision] = field(default_factory=list)
    unparseable: list[Unparseable] = field(default_factory=list)


Row = tuple[int, str, str, str, int]  # id, uid, symbol_key, state, created_ms


def _execute(db: pw.Database, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Cursor:
    cursor: sqlite3.Cursor = db.execute_sql(sql, params)  # type: ignore[no-untyped-call]
    return cursor


def run_merge(db: pw.Database, clock: Clock, *, canonical: Canonicalizer = canonical_key) -> MergeReport:
    """Re-key every non-canonical row in one transaction; report collisions and the symbols left alone."""
    now = to_ms(clock.now())
    with db.atomic():
        rows: list[Row] = [
            (int(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]))
            for r in _execute(db, "SELECT id, uid, symbol_key, state, created_ms FROM position ORDER BY id")
        ]
        groups: dict[str, list[Row]] = {}
        unparseable: list[Unparseable] = []
        for row in rows:
            try:
                target = canonical(row[2])
            except MalformedSymbol as exc:
                unparseable.append(Unparseable(row[1], row[2], str(exc)))
                continue
            groups.setdefault(target, []).append(row)
        rekeyed = 0
        collisions: list[MergeCollision] = []
        for target in sorted(groups):
            members = groups[target]
            drifted = [m for m in members if m[2] != target]
            if not drifted:
                continue
            for m in drifted:
                _execute(db, "UPDATE position SET symbol_key = ?, updated_ms = ? WHERE id = ?", (target, now, m[0]))
                rekeyed += 1
            spellings = tuple(sorted({m[2] for m in members}))
            if len(spellings) > 1:
                collisions.append(_collision(target, members, spellings))
    return MergeReport(rekeyed=rekeyed, collisions=collisions, unparseable=unparseable)


def _collision(target: str, members: list[Row], spellings: tuple[str, ...]) -> MergeCollision:
    by_age = sorted(members, key=lambda m: (m[4], m[0]))
    active = [m for m in by_age if m[3] in ACTIVE_STATES]
    survivor = (active or by_age)[0]
    merged = tuple(m[1] for m in by_age if m is not survivor)
    return MergeCollision(symbol_key=target, survivor=survivor[1], merged=merged, spellings=spellings)


def merge_symbol_collisions(db: pw.Database, clock: Clock) -> list[MergeCollision]:
    """The daemon's startup step: re-key drifted rows and return the collisions to log."""
    return run_merge(db, clock).collisions
