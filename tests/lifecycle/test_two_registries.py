"""Two registries open in one process each read and write their own file (the models are bound process-wide, so
without rebinding per call the one opened last would serve both: H1's review found a test fooled by exactly that)."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

from lifecycle.clock import FakeClock
from store.registry import Registry


def positions_in(path: Path) -> list[str]:
    with sqlite3.connect(path) as c:
        return [uid for (uid,) in c.execute("SELECT uid FROM position ORDER BY id")]


def test_each_registry_writes_and_reads_its_own_file(tmp_path: Path) -> None:
    a = Registry.open(tmp_path / "a.db", FakeClock())
    b = Registry.open(tmp_path / "b.db", FakeClock())  # opened last: the models were bound to it
    try:
        in_a = a.import_position(symbol="PF_XBTUSD", side="long", qty=Decimal(1), entry_price=Decimal(100), cause="t")
        in_b = b.import_position(symbol="PF_ETHUSD", side="short", qty=Decimal(2), entry_price=Decimal(10), cause="t")
        assert positions_in(tmp_path / "a.db") == [in_a.uid]
        assert positions_in(tmp_path / "b.db") == [in_b.uid]
        assert [p.uid for p in a.active_positions()] == [in_a.uid]
        assert [p.uid for p in b.active_positions()] == [in_b.uid]
        assert a.get(in_a.uid).symbol_key == "PF_XBTUSD" and b.get(in_b.uid).symbol_key == "PF_ETHUSD"
    finally:
        a.close()
        b.close()
