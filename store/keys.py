"""The registry key: a secret kept OUTSIDE the registry file that keys the hash chains and signs the anchors.

Without a key, the chains prove only that nobody edited a row *without recomputing the hashes after it*: the
scheme is public, so whoever can write the file can rewrite a row, recompute every later hash and move the
anchor (all in the same file). With the key, every chained row's hash is a keyed BLAKE2b MAC
(`store.chain`), and the anchors and the seal below carry a MAC too: a rewrite with recomputed hashes needs the
key, which is not in the file. What the key cannot protect against: someone who holds it (it is read by the
daemon's user), and the rows written before a legacy registry was first keyed are protected only through the
first keyed row and the signed anchors (docs/audit.md, "Tamper evidence with a key").

The key file holds 64 hex digits (32 random bytes) and a newline, created with mode 0600 at the daemon's first
start (`registry_key_file`, default `<db_path>.key`). The registry records which key sealed it (`chain_seal`,
schema version 4): per chain, the last row written before the key existed (`keyed_after`: 0 for a registry keyed
from its start), the key's id, and a MAC over both, so that nobody can move the boundary without the key.

Policy when the daemon starts (`prepare`):
- registry sealed, key file present and matching: use it;
- registry sealed, key file missing or another key: refuse (the caller exits 3; one line says where the key is
  expected);
- registry not sealed, key file missing: create the key (0600) and seal the registry now (an existing legacy
  history is sealed as it stands: trust on first use, and its anchors are cleared so the next audit signs them);
- registry not sealed, key file present: seal only when the chains are empty (a fresh registry beside an old
  key, e.g. a paper run); a history that was never keyed beside an existing key is refused, because that is what
  stripping the seal from a keyed registry looks like.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import peewee as pw

from store.db import RegistryOpenError

KEY_BYTES = 32
CHAIN_TABLES: tuple[str, ...] = ("transition", "fill")


class KeyFileError(RegistryOpenError):
    """The key file is missing, unreadable, malformed or does not belong to this registry. One line, no key."""


def default_key_path(db_path: Path | str) -> Path:
    """`<db_path>.key`: beside the registry, outside the file itself (back both up; keep the key's copy apart)."""
    return Path(f"{db_path}.key")


@dataclass(frozen=True)
class ChainKey:
    secret: bytes = field(repr=False)
    path: Path | None = None

    @property
    def key_id(self) -> str:
        """A public fingerprint of the key (names it in messages; reveals nothing of it)."""
        return hashlib.blake2b(b"registry-key-id", key=self.secret, digest_size=8).hexdigest()

    def mac(self, purpose: str, *parts: object) -> str:
        """A keyed MAC over `parts` for one purpose (anchor, seal): hex, 64 digits."""
        text = "\x1f".join("" if p is None else str(p) for p in parts)
        return hashlib.blake2b(text.encode(), key=self.secret, digest_size=32, person=purpose.encode()[:16]).hexdigest()

    def __str__(self) -> str:  # never the secret, whatever formats this object
        return f"ChainKey(id={self.key_id}, path={self.path})"


def read_key(path: Path) -> ChainKey:
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise KeyFileError(f"registry key file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"registry key file {path} cannot be read ({type(exc).__name__})") from None
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = b""
    if len(secret) != KEY_BYTES:
        raise KeyFileError(f"registry key file {path} is not {KEY_BYTES * 2} hex digits: restore it from backup")
    return ChainKey(secret, path)


def create_key(path: Path) -> ChainKey:
    """Write a fresh random key to `path` with mode 0600 (never over an existing file), durably."""
    secret = secrets.token_bytes(KEY_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (secret.hex() + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return ChainKey(secret, path)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return ChainKey(secret, path)


# --- the seal ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SealRow:
    chain: str
    keyed_after: int
    key_id: str
    enrolled_ms: int
    signature: str


def _execute(db: pw.Database, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Cursor:
    cursor: sqlite3.Cursor = db.execute_sql(sql, params)  # type: ignore[no-untyped-call]
    return cursor


def load_seal(db: pw.Database) -> dict[str, SealRow]:
    """The seal rows ({} for a registry never keyed, or one whose schema predates the seal)."""
    try:
        rows = _execute(db, "SELECT chain, keyed_after, key_id, enrolled_ms, signature FROM chain_seal").fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return {}
        raise
    out: dict[str, SealRow] = {}
    for chain, after, key_id, enrolled, sig in rows:
        try:
            out[str(chain)] = SealRow(str(chain), int(after), str(key_id), int(enrolled), str(sig))
        except (TypeError, ValueError):
            out[str(chain)] = SealRow(str(chain), -1, str(key_id), -1, "")
    return out


def seal_signature(key: ChainKey, chain: str, keyed_after: int, enrolled_ms: int) -> str:
    return key.mac("kld-seal", chain, keyed_after, key.key_id, enrolled_ms)


def anchor_signature(key: ChainKey, chain: str, through_id: int, through_hash: str, rows: int) -> str:
    return key.mac("kld-anchor", chain, through_id, through_hash, rows)


@dataclass(frozen=True)
class Keyed:
    """What the audit needs: the key, and per chain the last unkeyed row id (rows after it are keyed MACs).
    `broken` names each chain whose seal row is missing, damaged or not signed by this key: the audit counts it as
    a break of that chain and verifies the whole chain as keyed (the strictest reading)."""

    key: ChainKey
    keyed_after: dict[str, int]
    broken: dict[str, str]


def verify_seal(db: pw.Database, key: ChainKey) -> Keyed:
    seal = load_seal(db)
    keyed_after: dict[str, int] = {}
    broken: dict[str, str] = {}
    for chain in CHAIN_TABLES:
        row = seal.get(chain)
        if row is None:
            broken[chain] = f"{chain} (seal: missing from chain_seal; the table was edited)"
            keyed_after[chain] = 0
        elif row.signature != seal_signature(key, chain, row.keyed_after, row.enrolled_ms) or row.key_id != key.key_id:
            broken[chain] = f"{chain} (seal: keyed_after={row.keyed_after} does not verify with this key; edited)"
            keyed_after[chain] = 0
        else:
            keyed_after[chain] = row.keyed_after
    return Keyed(key, keyed_after, broken)


def _chain_ends(db: pw.Database) -> dict[str, int]:
    return {t: int(_execute(db, f'SELECT coalesce(max(id), 0) FROM "{t}"').fetchone()[0]) for t in CHAIN_TABLES}  # noqa: S608


def seal(db: pw.Database, key: ChainKey, now_ms: int) -> dict[str, int]:
    """Seal the registry with `key`: rows up to each chain's current end stay unkeyed, later ones are keyed. The
    anchors (unsigned) are cleared in the same transaction, so the next audit is full and signs new ones."""
    with db.atomic("IMMEDIATE"):
        ends = _chain_ends(db)
        for chain, after in ends.items():
            _execute(
                db,
                "INSERT INTO chain_seal (chain, keyed_after, key_id, enrolled_ms, signature, anchor_signature)"
                " VALUES (?, ?, ?, ?, ?, NULL)",
                (chain, after, key.key_id, now_ms, seal_signature(key, chain, after, now_ms)),
            )
        _execute(db, "DELETE FROM chain_anchor")
    return ends


def sealing_key(db: pw.Database, db_path: Path | str, key_path: Path, *, fix: str) -> ChainKey | None:
    """The key that sealed registry `db`, read from `key_path` and checked against the seal's key id; None when the
    registry is not keyed. The one check for the daemon and `check_db_health` alike: raises KeyFileError with one
    line naming the cause and, from `fix`, how the caller's operator points at the right key."""
    sealed = load_seal(db)
    if not sealed:
        return None
    try:
        key = read_key(key_path)
    except KeyFileError as exc:
        raise KeyFileError(
            f"registry {db_path} is keyed, but its key is not usable: {exc}. The key is expected at {key_path}:"
            f" restore it from your backup or point {fix} at it; the registry cannot be verified without it"
        ) from None
    ids = {row.key_id for row in sealed.values()}
    if ids != {key.key_id}:
        raise KeyFileError(
            f"key file {key_path} (key id {key.key_id}) is not the key that sealed registry {db_path} (key id"
            f" {','.join(sorted(ids))}): point {fix} at that registry's own key"
        )
    return key


def prepare(db: pw.Database, db_path: Path | str, key_path: Path, now_ms: int) -> tuple[ChainKey, str]:
    """The daemon's key step (module doc). Returns the key and one line for STARTUP_STEP; raises KeyFileError with
    one line naming the cause and the fix."""
    key = sealing_key(db, db_path, key_path, fix="registry_key_file")
    if key is not None:
        return key, f"key={key_path} key_id={key.key_id}"
    ends = _chain_ends(db)
    if key_path.exists():
        key = read_key(key_path)
        if any(ends.values()):
            raise KeyFileError(
                f"registry {db_path} holds history that was never keyed, but key file {key_path} exists: a keyed"
                " registry stripped of its seal looks like this. If this file was restored from a backup older than"
                f" keyed chains, move {key_path} aside and start again (a new key is made); else restore from backup"
            )
        seal(db, key, now_ms)
        return key, f"key={key_path} key_id={key.key_id} sealed=new"
    key_path.parent.mkdir(parents=True, exist_ok=True)
    key = create_key(key_path)
    after = seal(db, key, now_ms)
    return key, (
        f"key={key_path} key_id={key.key_id} created=0600 sealed transition>{after['transition']}"
        f" fill>{after['fill']}: back this file up apart from the registry"
    )
