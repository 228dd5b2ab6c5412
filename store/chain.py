"""Hash chains over the transition log and the fill ledger.

SQLite's integrity_check is structural only: a same-length flip of a stored value passes it. Each chained
row carries a digest of (previous row's hash + its own canonical content), so any edit, deletion or reordering
of a row breaks the chain from that row on.

Unkeyed (`key=None`), the digest is sha256: anyone who can write the file can recompute it after an edit. Keyed
(`store.keys`), it is BLAKE2b in its keyed mode (a MAC; 32 bytes, 64 hex digits like sha256): recomputing it
needs the key, which lives outside the registry file. BLAKE2b rather than HMAC-SHA256: one pass instead of
two, which keeps the keyed audit within a few per cent of the unkeyed one (docs/audit.md).
"""

from __future__ import annotations

import hashlib

GENESIS = "0" * 64
DIGEST_SIZE = 32


def digest_bytes(content: bytes, key: bytes | None = None) -> str:
    """The digest of one row's rendered bytes (`prev_hash RECORD_SEP fields`): the one definition of both kinds."""
    if key is None:
        return hashlib.sha256(content).hexdigest()
    return hashlib.blake2b(content, key=key, digest_size=DIGEST_SIZE).hexdigest()


def _digest(prev_hash: str, fields: tuple[object, ...], key: bytes | None = None) -> str:
    content = "\x1f".join("" if f is None else str(f) for f in fields)
    return digest_bytes(f"{prev_hash}\x1e{content}".encode(), key)


def transition_hash(
    prev_hash: str,
    position_id: int,
    event: str,
    source: str | None,
    target: str,
    cause: str,
    at_ms: int,
    *,
    key: bytes | None = None,
) -> str:
    return _digest(prev_hash, (position_id, event, source, target, cause, at_ms), key)


def fill_hash(
    prev_hash: str,
    fill_id: str,
    position_id: int,
    side: str,
    is_entry: bool,
    qty_units: int,
    price: str,
    fill_ms: int,
    *,
    key: bytes | None = None,
) -> str:
    return _digest(prev_hash, (fill_id, position_id, side, int(is_entry), qty_units, price, fill_ms), key)
