"""Hash chains over the transition log and the fill ledger.

SQLite's integrity_check is structural only: a same-length flip of a stored value passes it. Each chained
row carries sha256(previous row's hash + its own canonical content), so any edit, deletion or reordering of
a row breaks the chain from that row on.
"""

from __future__ import annotations

import hashlib

GENESIS = "0" * 64


def _digest(prev_hash: str, fields: tuple[object, ...]) -> str:
    content = "\x1f".join("" if f is None else str(f) for f in fields)
    return hashlib.sha256(f"{prev_hash}\x1e{content}".encode()).hexdigest()


def transition_hash(
    prev_hash: str, position_id: int, event: str, source: str | None, target: str, cause: str, at_ms: int
) -> str:
    return _digest(prev_hash, (position_id, event, source, target, cause, at_ms))


def fill_hash(
    prev_hash: str,
    fill_id: str,
    position_id: int,
    side: str,
    is_entry: bool,
    qty_units: int,
    price: str,
    fill_ms: int,
) -> str:
    return _digest(prev_hash, (fill_id, position_id, side, int(is_entry), qty_units, price, fill_ms))
