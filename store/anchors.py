"""Chain anchors: where the last clean audit found each hash chain, and when the audit re-hashes everything.

A clean audit records each chain's head (`chain_anchor`, one row per chain). The next audit checks that history
still passes through it, and re-hashes only the rows after it, unless a full audit is due: none was recorded yet,
or the last one is older than the configured interval. So the daemon's audit at startup and on every health
cycle stays short on years of data, and every row is still re-hashed at least once per interval.

In a keyed registry (`store.keys`) each anchor also carries a keyed MAC (`chain_seal.anchor_signature`) over the
chain, its row id, stored hash and row count: an anchor moved by someone without the key does not verify and
counts as a finding, like an unreadable one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import peewee as pw

from store.audit import (
    CHAINS,
    DEFAULT_MAX_STOP_DISTANCE_PCT,
    SCOPE_FULL,
    UNREADABLE_ANCHOR,
    AuditReport,
    ChainHead,
    run_audit,
)
from store.keys import Keyed, anchor_signature

DEFAULT_FULL_AUDIT_EVERY_MS = 24 * 3600 * 1000


class AnchorTableDamaged(ValueError):
    """chain_anchor holds a value of the wrong type: the anchors cannot vouch for anything."""


@dataclass(frozen=True)
class StoredAnchor:
    head: ChainHead
    verified_ms: int
    full_verified_ms: int | None


def _execute(db: pw.Database, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Cursor:
    cursor: sqlite3.Cursor = db.execute_sql(sql, params)  # type: ignore[no-untyped-call]
    return cursor


def load_anchors(db: pw.Database) -> dict[str, StoredAnchor]:
    """The recorded anchors ({} for a registry that has none yet, or a schema-1 file opened read-only). Raises
    AnchorTableDamaged when a row holds a value of the wrong type."""
    try:
        rows = _execute(
            db, "SELECT chain, through_id, through_hash, rows, verified_ms, full_verified_ms FROM chain_anchor"
        ).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return {}
        raise
    try:
        return {
            str(name): StoredAnchor(ChainHead(int(through_id), str(through_hash), int(count)), int(verified), full)
            for name, through_id, through_hash, count, verified, full in rows
        }
    except (TypeError, ValueError) as exc:
        raise AnchorTableDamaged(f"chain_anchor holds a value of the wrong type ({exc})") from None


def record_anchors(db: pw.Database, report: AuditReport, now_ms: int, keyed: Keyed | None = None) -> None:
    """Move the anchors to where `report` found the chains. Only a clean report may: an anchor vouches for
    everything before it. With `keyed`, each anchor is signed in the same transaction."""
    if not report.ok:
        raise ValueError(f"refusing to anchor the chains on a failed audit ({report.summary()})")
    full_ms = now_ms if report.scope == SCOPE_FULL else None
    with db.atomic("IMMEDIATE"):
        for name, head in report.heads.items():
            _execute(
                db,
                "INSERT INTO chain_anchor (chain, through_id, through_hash, rows, verified_ms, full_verified_ms)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (chain) DO UPDATE SET through_id = excluded.through_id,"
                " through_hash = excluded.through_hash, rows = excluded.rows, verified_ms = excluded.verified_ms,"
                " full_verified_ms = coalesce(excluded.full_verified_ms, chain_anchor.full_verified_ms)",
                (name, head.through_id, head.through_hash, head.rows, now_ms, full_ms),
            )
            if keyed is not None:
                signature = anchor_signature(keyed.key, name, head.through_id, head.through_hash, head.rows)
                _execute(db, "UPDATE chain_seal SET anchor_signature = ? WHERE chain = ?", (signature, name))


def clear_anchors(db: pw.Database) -> int:
    """Forget every anchor (the operator's way out after investigating an anchor finding); the next audit is full."""
    with db.atomic("IMMEDIATE"):
        cleared = int(_execute(db, "DELETE FROM chain_anchor").rowcount)
        if _has_table(db, "chain_seal"):  # the reset is the one legitimate way an anchor disappears
            _execute(db, "UPDATE chain_seal SET anchor_signature = NULL")
        return cleared


def _has_table(db: pw.Database, name: str) -> bool:
    return _execute(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def signed_anchors_missing(
    db: pw.Database, keyed: Keyed | None, heads: Mapping[str, ChainHead]
) -> dict[str, ChainHead]:
    """`heads`, or every chain as UNREADABLE_ANCHOR when the anchor table is empty although the seal still holds an
    anchor signature: the anchors were deleted outside a reset (which clears the signatures too), e.g. to hide a
    rewrite behind a 'first' full audit."""
    if keyed is None or heads or not _has_table(db, "chain_seal"):
        return dict(heads)
    (signed,) = _execute(db, "SELECT count(*) FROM chain_seal WHERE anchor_signature IS NOT NULL").fetchone()
    return dict.fromkeys(CHAINS, UNREADABLE_ANCHOR) if signed else dict(heads)


def full_audit_due(anchors: Mapping[str, StoredAnchor], now_ms: int, full_every_ms: int) -> bool:
    """True when some chain has no anchor, or has not been re-hashed in full within `full_every_ms`."""
    for name in CHAINS:
        anchor = anchors.get(name)
        if anchor is None or anchor.full_verified_ms is None or now_ms - anchor.full_verified_ms >= full_every_ms:
            return True
    return False


def _signed(db: pw.Database, keyed: Keyed, name: str, head: ChainHead) -> bool:
    row = _execute(db, "SELECT anchor_signature FROM chain_seal WHERE chain = ?", (name,)).fetchone()
    expected = anchor_signature(keyed.key, name, head.through_id, head.through_hash, head.rows)
    return row is not None and row[0] == expected


def _heads_to_check(
    db: pw.Database, keyed: Keyed | None = None
) -> tuple[dict[str, ChainHead], dict[str, StoredAnchor]]:
    """The anchors the audit must check, and the readable ones. A clean audit anchors every chain at once and only
    a reset clears them, so an anchor table that is unreadable, or holds some chains but not others, was edited
    or damaged: each chain it cannot vouch for gets UNREADABLE_ANCHOR, which the audit counts as a finding."""
    try:
        stored = load_anchors(db)
    except AnchorTableDamaged:
        return dict.fromkeys(CHAINS, UNREADABLE_ANCHOR), {}
    if not stored:
        return signed_anchors_missing(db, keyed, {}), {}
    heads = {name: stored[name].head if name in stored else UNREADABLE_ANCHOR for name in CHAINS}
    if keyed is not None:
        heads = vouched_heads(db, keyed, heads)
        stored = {name: a for name, a in stored.items() if heads.get(name) != UNREADABLE_ANCHOR}
    return heads, stored


def vouched_heads(db: pw.Database, keyed: Keyed, heads: Mapping[str, ChainHead]) -> dict[str, ChainHead]:
    """`heads` with every anchor whose keyed MAC does not verify replaced by UNREADABLE_ANCHOR (a finding)."""
    return {name: h if _signed(db, keyed, name, h) else UNREADABLE_ANCHOR for name, h in heads.items()}


def audit_and_anchor(
    db: pw.Database,
    now_ms: int,
    *,
    full_every_ms: int = DEFAULT_FULL_AUDIT_EVERY_MS,
    force_full: bool = False,
    keyed: Keyed | None = None,
    max_stop_distance_pct: Decimal = DEFAULT_MAX_STOP_DISTANCE_PCT,
) -> AuditReport:
    """The daemon's audit: full when due (or forced), else from the anchors; a clean result moves the anchors.
    `keyed`: the registry's key and seal (required for a keyed registry)."""
    heads, stored = _heads_to_check(db, keyed)
    full = force_full or full_audit_due(stored, now_ms, full_every_ms)
    report = run_audit(db, anchors=heads, full=full, keyed=keyed, max_stop_distance_pct=max_stop_distance_pct)
    if report.ok:
        record_anchors(db, report, now_ms, keyed)
    return report
