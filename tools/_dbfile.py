"""What the tools know about a SQLite file before and while they open it: one operator line per failure.

A wrong `--db`/`--candles` path (empty, truncated, not SQLite, a directory) is caught from the file's 100-byte
header (store.sqlite_file) before SQLite touches it, so a refused path is never turned into a database and gains
no -wal/-shm files.
SQLite's own errors (locked, corrupted, not a database) are turned into one line naming the file and what to do.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from store.sqlite_file import header_problem
from tools._cli import ProblemsFound, UsageError


def is_lock_error(exc: BaseException) -> bool:
    low = str(exc).lower()
    return "locked" in low or "busy" in low


def existing_registry_file(path: Path, *, missing_hint: str, damaged_hint: str) -> int:
    """The registry file's size, once it exists, is a file and its header looks like SQLite; otherwise one operator
    line (nothing is created). `missing_hint` says where the path came from, `damaged_hint` what to do about it."""
    if not path.exists():
        raise UsageError(f"registry database {path} does not exist: {missing_hint} (nothing was created)")
    if not path.is_file():
        raise UsageError(f"{path} is not a file: pass the registry database with --db PATH")
    size = path.stat().st_size
    problem = header_problem(path, size)
    if problem is not None:
        raise ProblemsFound(f"{problem}, not a usable registry: {damaged_hint}")
    return size


def describe_sqlite_error(path: Path, exc: BaseException, remedy: str) -> str:
    """One line for a SQLite failure on `path`; `remedy` is what to do about a damaged file."""
    text = " ".join(str(exc).split())
    low = text.lower()
    if is_lock_error(exc):
        return (
            f"{path} is locked by another process (the daemon or a tool holding an exclusive lock): retry when it"
            " is released; stop that process first if it never is"
        )
    if "not a database" in low:
        return f"{path} is not a SQLite database (damaged header or wrong file): {remedy}"
    if "malformed" in low or "corrupt" in low:
        return f"{path} is corrupted ({text}): {remedy}"
    if "unable to open" in low or "readonly" in low or "permission" in low or "disk i/o" in low:
        return f"cannot open {path} ({text}): check the path and its permissions"
    return f"{path}: SQLite error ({text}): {remedy}"


def wait_for_write_lock(path: Path, busy_timeout_ms: int) -> None:
    """Wait at most `busy_timeout_ms` for the write lock on an existing file, then let it go again.

    The registry's own connection waits a fixed 5 s for a lock before its pragmas are even set; asking first,
    with the operator's timeout, makes a locked file fail as fast as the operator asked. Raises sqlite3.Error.
    """
    conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=busy_timeout_ms / 1000, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
    finally:
        conn.close()
