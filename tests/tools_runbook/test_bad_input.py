"""Bad input to every runbook tool: the right exit code, one `error:` line, no traceback, nothing created.

Each case runs the real tool as a subprocess against the simulator over HTTP, with real files damaged on disk.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.audit.helpers import small_registry
from tests.tools_runbook.conftest import Env, Run, run_tool

REGISTRY_READERS = ["check_tp_coverage", "monitor_trade_execution", "recover_sl_order_ids", "sync_positions"]


def _listing(root: Path) -> set[Path]:
    return set(root.rglob("*"))


def _one_error_line(run: Run) -> str:
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.err
    return lines[0]


def _registry_copy(tmp: Path) -> Path:
    """A real registry file in rollback-journal mode, so a read-only open needs no -wal/-shm beside it."""
    path = small_registry(tmp / "registry.db", positions=3)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = delete")
    conn.close()
    return path


def _zero_bytes(tmp: Path) -> Path:
    path = tmp / "empty.db"
    path.write_bytes(b"")
    return path


def _truncated(tmp: Path) -> Path:
    data = _registry_copy(tmp).read_bytes()
    path = tmp / "truncated.db"
    path.write_bytes(data[: len(data) // 2 + 100])
    return path


def _not_sqlite(tmp: Path) -> Path:
    path = tmp / "notes.db"
    path.write_text("not a database\n" * 20)
    return path


def _directory(tmp: Path) -> Path:
    path = tmp / "a_directory.db"
    path.mkdir()
    return path


def _future_schema(tmp: Path) -> Path:
    path = _registry_copy(tmp)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    return path


def _foreign_sqlite(tmp: Path) -> Path:
    path = tmp / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE ticks (ts INTEGER)")
    conn.commit()
    conn.close()
    return path


# (name, builder, exit code, words the line must carry)
BAD_REGISTRIES: list[tuple[str, Callable[[Path], Path], int, str]] = [
    ("zero_bytes", _zero_bytes, 1, "is empty (0 bytes)"),
    ("truncated", _truncated, 1, "is truncated"),
    ("not_sqlite", _not_sqlite, 1, "is not a SQLite database"),
    ("directory", _directory, 2, "is not a file"),
    ("future_schema", _future_schema, 1, "user_version says 99"),
    ("foreign_sqlite", _foreign_sqlite, 1, "no schema version recorded"),
]


@pytest.mark.parametrize("tool", REGISTRY_READERS)
@pytest.mark.parametrize(("case", "build", "code", "words"), BAD_REGISTRIES, ids=[c[0] for c in BAD_REGISTRIES])
def test_bad_registry_file_is_one_line_and_untouched(
    env: Env, tool: str, case: str, build: Callable[[Path], Path], code: int, words: str
) -> None:
    folder = env.tmp / "bad"
    folder.mkdir()
    path = build(folder)
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    extra = ("--confirm-wait-s", "0") if tool == "sync_positions" else ()
    for execute in ((), ("--execute",)) if tool in ("sync_positions", "recover_sl_order_ids") else ((),):
        run = run_tool(tool, "--config", str(env.config), "--db", str(path), *extra, *execute)
        line = _one_error_line(run)
        assert run.code == code, run.err
        assert str(path) in line and words in line and "unexpected" not in line
        assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before, "the tool changed the folder"


def test_sync_positions_refuses_to_create_a_registry_in_a_missing_folder(env: Env) -> None:
    from decimal import Decimal

    env.sim.open_position_direct("PF_XBTUSD", "long", Decimal("0.01"))  # an orphan, so --execute would write
    target = env.tmp / "no_such_folder" / "registry.db"
    run = run_tool("sync_positions", *("--config", str(env.config), "--db", str(target)), "--confirm-wait-s", "0",
                   "--execute")  # fmt: skip
    assert run.code == 2 and "folder" in _one_error_line(run) and "does not exist" in run.err
    assert not target.parent.exists()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Another process holding the file's exclusive lock (as a stuck daemon or a sqlite3 shell would)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.kill()
        holder.wait(timeout=10)


HOLD_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA locking_mode = EXCLUSIVE")
conn.execute("BEGIN EXCLUSIVE")
conn.execute("UPDATE position SET updated_ms = updated_ms")
print("locked", flush=True)
sys.stdin.read()
"""


def test_locked_registry_on_execute_is_one_line(env: Env) -> None:
    from decimal import Decimal

    env.registry().close()
    env.sim.open_position_direct("PF_XBTUSD", "long", Decimal("0.01"))  # an orphan to import
    with _locked(env.db):
        run = run_tool("sync_positions", *env.args("--confirm-wait-s", "0", "--execute"))
    line = _one_error_line(run)
    assert run.code == 1 and "is locked by another process" in line and str(env.db) in line


BAD_FLAGS: list[tuple[str, tuple[str, ...], str]] = [
    ("sync_positions", ("--stop-pct", "abc"), "--stop-pct: 'abc' is not a number"),
    ("sync_positions", ("--stop-pct", "-1"), "--stop-pct: '-1' is out of range"),
    ("sync_positions", ("--stop-pct", "nan"), "--stop-pct: 'nan' is out of range"),
    ("sync_positions", ("--confirm-wait-s", "-1"), "--confirm-wait-s: '-1' is out of range"),
    ("sync_positions", ("--confirm-wait-s", "inf"), "--confirm-wait-s: 'inf' is out of range"),
    ("backfill_historical_data", ("--hours", "nan"), "--hours: 'nan' is out of range"),
    ("backfill_historical_data", ("--hours", "0"), "--hours: '0' is out of range"),
    ("backfill_historical_data", ("--hours", "1e12"), "--hours: '1e12' is out of range"),
    ("backfill_historical_data", ("--hours", "80000", "--timeframe", "1m"), "more than the 1000000 one run"),
    ("backfill_historical_data", ("--timeframe", "2h"), "argument --timeframe: invalid choice"),
    ("backfill_historical_data", ("--symbol", "NOT A SYMBOL"), "--symbol: malformed symbol"),
    ("monitor_trade_execution", ("--since-hours", "-5"), "--since-hours: '-5' is out of range"),
    ("monitor_trade_execution", ("--since-hours", "inf"), "--since-hours: 'inf' is out of range"),
    ("check_live_readiness", ("--max-skew-s", "nan"), "--max-skew-s: 'nan' is out of range"),
    ("pre_flight_check", ("--max-skew-s", "abc"), "--max-skew-s: 'abc' is not a number"),
    ("check_db_health", ("--busy-timeout-ms", "-5"), "--busy-timeout-ms: '-5' is out of range"),
    ("check_tp_coverage", ("--execute",), "unrecognized arguments: --execute"),
]


@pytest.mark.parametrize(("tool", "flags", "words"), BAD_FLAGS, ids=[f"{t}{' '.join(f)}" for t, f, _ in BAD_FLAGS])
def test_bad_flag_is_a_one_line_usage_error(env: Env, tool: str, flags: tuple[str, ...], words: str) -> None:
    before = _listing(env.tmp)
    common = ("--db", str(env.db)) if tool == "check_db_health" else ("--config", str(env.config))
    run = run_tool(tool, *common, *flags)
    assert run.code == 2 and words in _one_error_line(run), run.err
    assert "usage:" not in run.err  # the usage is one --help away, not a screenful before the cause
    assert _listing(env.tmp) == before


def _candles_registry(tmp: Path) -> Path:
    return _registry_copy(tmp)


BAD_CANDLE_STORES: list[tuple[str, Callable[[Path], Path], str]] = [
    ("registry", _candles_registry, "is not a candle store (it holds the tables"),
    ("not_sqlite", _not_sqlite, "is not a SQLite database"),
    ("truncated", _truncated, "is truncated"),
    ("directory", _directory, "is not a file"),
]


@pytest.mark.parametrize("execute", [False, True], ids=["dry_run", "execute"])
@pytest.mark.parametrize(("case", "build", "words"), BAD_CANDLE_STORES, ids=[c[0] for c in BAD_CANDLE_STORES])
def test_backfill_refuses_a_file_that_is_not_a_candle_store(
    env: Env, case: str, build: Callable[[Path], Path], words: str, execute: bool
) -> None:
    folder = env.tmp / "candles"
    folder.mkdir()
    path = build(folder)
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    run = run_tool(
        "backfill_historical_data", "--config", str(env.config), "--candles", str(path), "--hours", "1",
        *(("--execute",) if execute else ()),
    )  # fmt: skip
    line = _one_error_line(run)
    assert run.code == 2 and words in line and str(path) in line
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


def test_backfill_dry_run_on_an_empty_file_reads_it_as_empty(env: Env) -> None:
    path = _zero_bytes(env.tmp)
    run = run_tool("backfill_historical_data", "--config", str(env.config), "--candles", str(path), "--hours", "1")
    assert run.code == 1 and "candle(s) missing" in _one_error_line(run)
    assert path.read_bytes() == b"" and _listing(env.tmp) >= {path}


def test_backfill_execute_into_a_missing_folder_is_a_usage_error(env: Env) -> None:
    path = env.tmp / "no_such_folder" / "candles.db"
    run = run_tool("backfill_historical_data", "--config", str(env.config), "--candles", str(path), "--execute")
    assert run.code == 2 and "folder" in _one_error_line(run) and not path.parent.exists()


def test_lock_probe_is_bounded(tmp_path: Path) -> None:
    """The shared write-lock probe fails within the timeout asked, not SQLite's connection default."""
    from tools._dbfile import wait_for_write_lock

    path = _registry_copy(tmp_path)
    shutil.copy(path, tmp_path / "spare.db")
    with _locked(path):
        started = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            wait_for_write_lock(path, 100)
        assert time.monotonic() - started < 2
    wait_for_write_lock(tmp_path / "spare.db", 100)


def _previous_schema(tmp: Path) -> Path:
    """A registry as the release before schema 7 left it: no `unowned_fill` table, both version records at 6."""
    path = _registry_copy(tmp)
    conn = sqlite3.connect(path)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'unowned_fill'"):
        conn.execute(f'DROP TRIGGER "{name}"')
    conn.execute('DROP TABLE "unowned_fill"')
    conn.execute("DELETE FROM schema_version WHERE version > 6")
    conn.execute("PRAGMA user_version = 6")
    conn.commit()
    conn.close()
    return path


@pytest.mark.parametrize("tool", [*REGISTRY_READERS, "pre_flight_check", "report"])
def test_a_read_only_tool_on_a_registry_older_than_the_code_says_so_and_leaves_it(env: Env, tool: str) -> None:
    """A read-only tool cannot migrate (it never writes) and must not read tables the file does not have yet: it
    used to report a missing table as a damaged registry (or fail on it deep inside a query)."""
    folder = env.tmp / "old"
    folder.mkdir()
    path = _previous_schema(folder)
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    args = ("--db", str(path)) if tool == "report" else ("--config", str(env.config), "--db", str(path))
    extra = ("--confirm-wait-s", "0") if tool == "sync_positions" else ()
    run = run_tool(tool, *args, *extra)  # a dry run: sync_positions and recover_sl_order_ids only read
    line = _one_error_line(run)
    assert run.code == 1, run.err
    assert str(path) in line and "schema version 6, older than this code" in line and "migrates" in line, line
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before, "the tool changed the folder"
