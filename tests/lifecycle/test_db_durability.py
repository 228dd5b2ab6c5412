"""The registry's durability pragmas are read back on every connection, and one SQLite silently ignored is refused.

WAL is made impossible for real: SQLite's own `unix-none` VFS has no shared memory, like a network mount, and on it
`PRAGMA journal_mode = wal` quietly answers the old mode. Making it the process's default VFS goes through the
shared libsqlite3 that Python's sqlite3 module is linked to (found in /proc/self/maps); the end-to-end test does the
same inside the daemon's own process.
"""

from __future__ import annotations

import ctypes
import os
import re
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import peewee as pw
import pytest

from lifecycle.clock import FakeClock
from store.db import MEMORY, RegistryOpenError, check_pragmas, connect
from store.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
NO_SHARED_MEMORY_VFS = "unix-none"


def _linked_sqlite() -> ctypes.CDLL | None:
    """The libsqlite3 already loaded into this process by the sqlite3 module, or None if it is linked statically."""
    maps = Path("/proc/self/maps")
    if not maps.exists():
        return None
    paths = {line.split()[-1] for line in maps.read_text().splitlines() if "libsqlite3" in line}
    if len(paths) != 1:
        return None
    lib = ctypes.CDLL(paths.pop())
    lib.sqlite3_vfs_find.restype = ctypes.c_void_p
    lib.sqlite3_vfs_find.argtypes = [ctypes.c_char_p]
    lib.sqlite3_vfs_register.restype = ctypes.c_int
    lib.sqlite3_vfs_register.argtypes = [ctypes.c_void_p, ctypes.c_int]
    return lib


def make_default_vfs(name: str) -> Callable[[], None]:
    """Make VFS `name` the default for every later sqlite3 connection in this process; returns the undo."""
    lib = _linked_sqlite()
    if lib is None:
        raise RuntimeError("Python's sqlite3 is not linked to a shared libsqlite3: its VFS cannot be switched")
    previous, wanted = lib.sqlite3_vfs_find(None), lib.sqlite3_vfs_find(name.encode())
    if not wanted:
        raise RuntimeError(f"this SQLite has no VFS named {name}")
    lib.sqlite3_vfs_register(wanted, 1)
    return lambda: lib.sqlite3_vfs_register(previous, 1)


@contextmanager
def no_shared_memory(tmp_path: Path) -> Iterator[None]:
    if _linked_sqlite() is None:
        pytest.skip("Python's sqlite3 is linked statically here: no way to give it a VFS without shared memory")
    undo = make_default_vfs(NO_SHARED_MEMORY_VFS)
    try:
        probe = sqlite3.connect(tmp_path / "probe.db")
        answered = probe.execute("PRAGMA journal_mode = wal").fetchone()[0]
        probe.close()
        assert answered == "delete", "the VFS switch did not reach the sqlite3 module's library"
        yield
    finally:
        undo()


def connection_of(db: pw.Database) -> sqlite3.Connection:
    """The calling thread's connection; peewee opens (and so checks) it if the thread has none yet."""
    conn: sqlite3.Connection = db.connection()  # type: ignore[no-untyped-call]
    return conn


def readback(conn: sqlite3.Connection) -> tuple[object, ...]:
    return tuple(conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("journal_mode", "synchronous", "foreign_keys"))


def in_thread(fn: Callable[[], object]) -> object:
    """Run `fn` in a new thread (peewee gives it its own connection); return its result or the exception it raised."""
    result: list[object] = []

    def run() -> None:
        try:
            result.append(fn())
        except Exception as exc:  # the test inspects what the thread saw
            result.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    [outcome] = result
    return outcome


def test_every_connection_of_a_registry_reads_back_wal_full_and_foreign_keys(tmp_path: Path) -> None:
    registry = Registry.open(tmp_path / "registry.db", FakeClock())
    try:
        main = connection_of(registry.db)
        assert readback(main) == ("wal", 2, 1)

        def other_thread() -> tuple[object, ...]:
            conn = connection_of(registry.db)
            assert conn is not main  # a connection of its own, opened by peewee for this thread
            return readback(conn)

        assert in_thread(other_thread) == ("wal", 2, 1)
    finally:
        registry.close()


def test_read_only_connection_enforces_foreign_keys(tmp_path: Path) -> None:
    Registry.open(tmp_path / "registry.db", FakeClock()).close()
    db = connect(tmp_path / "registry.db", readonly=True)
    try:
        assert connection_of(db).execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert in_thread(lambda: connection_of(db).execute("PRAGMA foreign_keys").fetchone()[0]) == 1
    finally:
        db.close()


def test_in_memory_registry_is_allowed_its_memory_journal() -> None:
    db = connect(MEMORY)
    try:
        assert readback(connection_of(db)) == ("memory", 2, 1)
    finally:
        db.close()


def test_registry_where_wal_cannot_be_applied_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    with no_shared_memory(tmp_path), pytest.raises(RegistryOpenError) as refused:
        Registry.open(path, FakeClock())
    message = str(refused.value)
    assert str(path) in message
    assert "PRAGMA journal_mode was asked for 'wal' and SQLite answered 'delete'" in message
    assert "put the registry on a local disk" in message


def test_a_later_connection_in_another_thread_is_checked_too(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    db = connect(path)  # the first connection passes
    db.close()
    with sqlite3.connect(path) as raw:  # back out of WAL, so that a connection without shared memory can open it
        raw.execute("PRAGMA journal_mode = delete")
    with no_shared_memory(tmp_path):
        # peewee connects implicitly on the thread's first query, as the daemon's jobs do
        outcome = in_thread(lambda: db.execute_sql("SELECT 1").fetchone())  # type: ignore[no-untyped-call]
    assert isinstance(outcome, RegistryOpenError), outcome
    assert "journal_mode" in str(outcome) and str(path) in str(outcome)
    assert db.is_closed()  # the refused connection was not kept for the thread


@pytest.mark.parametrize(
    ("pragma", "setting", "answer"),
    [("synchronous", "NORMAL", "SQLite answered 1 (NORMAL)"), ("foreign_keys", "OFF", "SQLite answered 0")],
)
def test_each_required_pragma_is_compared(tmp_path: Path, pragma: str, setting: str, answer: str) -> None:
    # No real SQLite build on hand ignores these two, so the check gets a real connection set otherwise after connect.
    conn = sqlite3.connect(tmp_path / "x.db")
    conn.execute("PRAGMA journal_mode = wal")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    check_pragmas(conn, tmp_path / "x.db", {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1})
    conn.execute(f"PRAGMA {pragma} = {setting}")
    with pytest.raises(RegistryOpenError, match=rf"PRAGMA {pragma} was asked for .*{re.escape(answer)}"):
        check_pragmas(conn, tmp_path / "x.db", {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1})
    conn.close()


def test_daemon_on_a_file_system_without_wal_refuses_to_start_with_a_clear_line(tmp_path: Path) -> None:
    if _linked_sqlite() is None:
        pytest.skip("Python's sqlite3 is linked statically here: no way to give it a VFS without shared memory")
    path = tmp_path / "registry.db"
    run_daemon_without_shared_memory = (
        "import runpy; from tests.lifecycle.test_db_durability import make_default_vfs as vfs; "
        f"vfs({NO_SHARED_MEMORY_VFS!r}); runpy.run_module('scheduler', run_name='__main__', alter_sys=True)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", run_daemon_without_shared_memory, "--paper", "--duration", "1", "--db", str(path)],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("TRADER_")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-2000:]
    assert "startup refused at step database" in out
    assert "PRAGMA journal_mode was asked for 'wal' and SQLite answered 'delete'" in out
    assert "put the registry on a local disk" in out
    assert "Traceback" not in out and "DAEMON_STARTED" not in out
