"""The startup merge on a real registry file: drifted keys re-keyed, collisions reported, idempotent."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from lifecycle.clock import FakeClock, to_ms
from store.db import connect
from store.merge import MergeCollision, merge_symbol_collisions, run_merge
from tests.audit.helpers import audit, raw, small_registry


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    return small_registry(tmp_path / "registry.db", positions=40, seed=3)


def _positions(path: Path) -> dict[str, tuple[str, str, int]]:
    conn = sqlite3.connect(path)
    try:
        return {
            uid: (key, state, upd)
            for uid, key, state, upd in conn.execute("SELECT uid, symbol_key, state, updated_ms FROM position")
        }
    finally:
        conn.close()


def _uids(c: sqlite3.Connection, sql: str) -> list[str]:
    return [u for (u,) in c.execute(sql)]


def test_drift_is_rekeyed_and_collisions_reported(registry: Path) -> None:
    with raw(registry) as c:
        active_xbt = _uids(c, "SELECT uid FROM position WHERE symbol_key = 'PF_XBTUSD' AND closed_ms IS NULL")
        closed_xbt = _uids(
            c, "SELECT uid FROM position WHERE symbol_key = 'PF_XBTUSD' AND closed_ms IS NOT NULL ORDER BY id"
        )
        assert len(active_xbt) == 1 and len(closed_xbt) >= 2, "the fixture needs closed XBT history"
        c.execute("UPDATE position SET symbol_key = 'pf_xbtusd' WHERE uid = ?", (closed_xbt[0],))
        c.execute("UPDATE position SET symbol_key = 'BTC/USD:USD' WHERE uid = ?", (closed_xbt[1],))
        # A key with no active position at all, spelled two drifted ways: the oldest row survives.
        zzz = _uids(
            c, "SELECT uid FROM position WHERE closed_ms IS NOT NULL AND symbol_key != 'PF_XBTUSD' ORDER BY id LIMIT 2"
        )
        c.execute("UPDATE position SET symbol_key = 'zzzusd' WHERE uid = ?", (zzz[0],))
        c.execute("UPDATE position SET symbol_key = 'ZZZ/USD:USD' WHERE uid = ?", (zzz[1],))
        fills_before = c.execute("SELECT group_concat(row_hash) FROM fill").fetchone()
    before = _positions(registry)
    clock = FakeClock()
    db = connect(registry)
    try:
        report = run_merge(db, clock)
        again = run_merge(db, clock)
    finally:
        db.close()
    assert report.rekeyed == 4 and report.unparseable == []
    assert report.collisions == [
        MergeCollision(
            symbol_key="PF_XBTUSD",
            survivor=active_xbt[0],
            merged=tuple(closed_xbt),
            spellings=("BTC/USD:USD", "PF_XBTUSD", "pf_xbtusd"),
        ),
        MergeCollision(symbol_key="PF_ZZZUSD", survivor=zzz[0], merged=(zzz[1],), spellings=("ZZZ/USD:USD", "zzzusd")),
    ]
    assert again.rekeyed == 0 and again.collisions == [] and again.unparseable == []
    after = _positions(registry)
    assert set(after) == set(before), "the merge must never delete or add rows"
    now = to_ms(clock.now())
    for uid, (key, state, updated) in after.items():
        assert state == before[uid][1]
        if uid in {closed_xbt[0], closed_xbt[1]}:
            assert (key, updated) == ("PF_XBTUSD", now)
        elif uid in zzz:
            assert (key, updated) == ("PF_ZZZUSD", now)
        else:
            assert (key, updated) == before[uid][::2]
    with raw(registry) as c:
        assert c.execute("SELECT group_concat(row_hash) FROM fill").fetchone() == fills_before
    assert audit(registry).ok


def test_two_actives_on_one_key_fail_the_audit(registry: Path) -> None:
    with raw(registry) as c:
        (eth,) = _uids(c, "SELECT uid FROM position WHERE symbol_key = 'PF_ETHUSD' AND closed_ms IS NULL")
        (xbt,) = _uids(c, "SELECT uid FROM position WHERE symbol_key = 'PF_XBTUSD' AND closed_ms IS NULL")
        c.execute("UPDATE position SET symbol_key = 'XBTUSD' WHERE uid = ?", (eth,))
    assert audit(registry).ok, "before the merge the drifted spelling hides the duplicate"
    db = connect(registry)
    try:
        collisions = merge_symbol_collisions(db, FakeClock())
    finally:
        db.close()
    (collision,) = [c for c in collisions if c.symbol_key == "PF_XBTUSD"]
    older, newer = sorted([eth, xbt], key=lambda u: _order(registry, u))
    assert collision.survivor == older and newer in collision.merged
    report = audit(registry)
    assert report.duplicate_active_symbol_keys == 1 and not report.ok
    assert eth in report.details["duplicate_active_symbol_keys"][0]


def _order(path: Path, uid: str) -> int:
    conn = sqlite3.connect(path)
    try:
        (pid,) = conn.execute("SELECT id FROM position WHERE uid = ?", (uid,)).fetchone()
        return int(pid)
    finally:
        conn.close()


def test_unparseable_symbols_are_left_alone_and_reported(registry: Path) -> None:
    with raw(registry) as c:
        (uid,) = _uids(c, "SELECT uid FROM position WHERE closed_ms IS NOT NULL ORDER BY id LIMIT 1")
        c.execute("UPDATE position SET symbol_key = 'EUR/GBP' WHERE uid = ?", (uid,))
    db = connect(registry)
    try:
        report = run_merge(db, FakeClock())
    finally:
        db.close()
    assert report.rekeyed == 0 and report.collisions == []
    assert [(u.uid, u.symbol_key) for u in report.unparseable] == [(uid, "EUR/GBP")]
    assert "malformed symbol" in report.unparseable[0].reason
    assert _positions(registry)[uid][0] == "EUR/GBP"


def test_single_drifted_spelling_is_rekeyed_without_a_collision(registry: Path) -> None:
    with raw(registry) as c:
        c.execute("UPDATE position SET symbol_key = lower(symbol_key) WHERE symbol_key = 'PF_SOLUSD'")
        (n,) = c.execute("SELECT count(*) FROM position WHERE symbol_key = 'pf_solusd'").fetchone()
    assert n >= 1
    db = connect(registry)
    try:
        report = run_merge(db, FakeClock())
    finally:
        db.close()
    assert report.rekeyed == n and report.collisions == []
    assert all(key != "pf_solusd" for key, _, _ in _positions(registry).values())
