"""Real registry files with a closed history, and the ways the fail-fast tests damage them."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

from lifecycle.clock import FakeClock
from store import migrations
from store.db import connect
from store.registry import Registry


def closed_history(path: Path, positions: int = 300) -> Path:
    """`positions` imported-then-closed positions (two fills and two transitions each): a clean registry of a few
    hundred KB that a daemon starts on without any open position."""
    registry = Registry.open(path, FakeClock())
    for i in range(positions):
        view = registry.import_position(
            symbol="PF_SOLUSD", side="long", qty=Decimal(1 + i % 7), entry_price=Decimal(f"{100 + i}.25"), cause="t"
        )
        registry.close_external(view.uid, cause="t")
    registry.close()
    return path


def flip_bytes_mid_file(path: Path, count: int = 64) -> None:
    """XOR `count` bytes in the middle of the file with 0xFF (a bad sector, a torn write)."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    for i in range(mid, mid + count):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def edit_with_triggers_restored(path: Path, sql: str, params: tuple[object, ...] = ()) -> None:
    """Run an UPDATE on an append-only table as a careful tamperer would: drop the triggers, edit, put them back,
    so that the schema looks untouched."""
    conn = sqlite3.connect(path)
    try:
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            conn.execute(f'DROP TRIGGER "{name}"')
        conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()
    db = connect(path)
    try:
        migrations._create_append_only_triggers(db, migrations.APPEND_ONLY_TABLES)
    finally:
        db.close()
