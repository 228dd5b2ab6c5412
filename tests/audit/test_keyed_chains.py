"""Tamper evidence with a key (issue 9 §2): the chains are keyed MACs and the anchors are signed, with a key kept
outside the registry file. Before the key, a rewrite with recomputed hashes and a moved anchor was HEALTHY; the
first test states that limit of the unkeyed chain, the others show the keyed one catching it."""

from __future__ import annotations

import os
import sqlite3
import stat
from decimal import Decimal
from pathlib import Path

import pytest

from lifecycle.clock import FakeClock
from store.anchors import audit_and_anchor, clear_anchors
from store.audit import AuditReport, KeyRequired, run_audit
from store.db import connect
from store.keys import KeyFileError, default_key_path, load_seal, read_key, verify_seal
from store.registry import Registry
from tests.audit.helpers import raw, rechain
from tests.lifecycle.helpers import drive_to


def history(registry: Registry, n: int = 6) -> None:
    for i in range(n):
        symbol = ("PF_XBTUSD", "PF_ETHUSD", "PF_SOLUSD")[i % 3]
        drive_to(registry, "CLOSED", symbol=symbol)


def keyed_registry(path: Path, n: int = 6) -> Registry:
    registry = Registry.open(path, FakeClock(), prepare_key=True)
    history(registry, n)
    return registry


def keyed_audit(path: Path, *, full: bool = True, workers: int | None = 1) -> AuditReport:
    db = connect(path, readonly=True)
    try:
        key = read_key(default_key_path(path))
        return run_audit(db, keyed=verify_seal(db, key), full=full, workers=workers)
    finally:
        db.close()


def anchor(path: Path, keyed: bool = True) -> AuditReport:
    db = connect(path)
    try:
        k = verify_seal(db, read_key(default_key_path(path))) if keyed else None
        return audit_and_anchor(db, 10**12, keyed=k)
    finally:
        db.close()


def test_unkeyed_chain_cannot_see_a_rewrite_with_recomputed_hashes(tmp_path: Path) -> None:
    """The limit the key removes (and what docs/audit.md says the unkeyed chain cannot detect)."""
    path = tmp_path / "r.db"
    registry = Registry.open(path, FakeClock())
    history(registry)
    registry.close()
    with raw(path) as c:
        c.execute("UPDATE fill SET price = '999' WHERE id = 1")
        rechain(c, "fill")
    db = connect(path, readonly=True)
    try:
        assert run_audit(db).ok
    finally:
        db.close()


def test_first_keyed_open_creates_the_key_0600_and_the_keyed_registry_audits_clean(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    registry = keyed_registry(path)
    registry.close()
    key_path = default_key_path(path)
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    assert "created=0600" in registry.key_detail and key_path.read_text().strip() not in registry.key_detail
    seal = load_seal(connect(path, readonly=True))
    assert {row.keyed_after for row in seal.values()} == {0}
    report = keyed_audit(path)
    assert report.ok, report.summary()
    assert keyed_audit(path, workers=2).ok  # the worker processes get the key over their pipe


def test_a_rewrite_with_recomputed_unkeyed_hashes_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    keyed_registry(path).close()
    with raw(path) as c:
        c.execute("UPDATE fill SET price = '999' WHERE id = 1")
        rechain(c, "fill")
    report = keyed_audit(path)
    assert report.fill_chain_breaks > 0 and report.transition_chain_breaks == 0, report.summary()


def test_a_rewrite_with_another_key_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    keyed_registry(path).close()
    other = Registry.open(tmp_path / "other.db", FakeClock(), prepare_key=True)
    other.close()
    forged = read_key(default_key_path(tmp_path / "other.db")).secret
    with raw(path) as c:
        prev = "0" * 64
        from store import chain

        rows = c.execute(
            "SELECT id, fill_id, position_id, side, is_entry, qty_units, price, fill_ms FROM fill ORDER BY id"
        )
        for rid, fid, pid, side, is_entry, qty, price, fms in rows.fetchall():
            h = chain.fill_hash(prev, fid, pid, side, bool(is_entry), qty, price, fms, key=forged)
            c.execute("UPDATE fill SET prev_hash = ?, row_hash = ? WHERE id = ?", (prev, h, rid))
            prev = h
    assert keyed_audit(path).fill_chain_breaks > 0


def test_an_anchor_moved_without_the_key_is_a_finding(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    keyed_registry(path).close()
    assert anchor(path).ok
    with raw(path) as c:
        c.execute("DELETE FROM fill WHERE id = (SELECT max(id) FROM fill)")  # a tail deletion ...
        (last, h) = c.execute("SELECT id, row_hash FROM fill ORDER BY id DESC LIMIT 1").fetchone()
        (n,) = c.execute("SELECT count(*) FROM fill").fetchone()
        # ... and the anchor moved to match, as a tamperer who read store/anchors.py would
        c.execute(
            "UPDATE chain_anchor SET through_id = ?, through_hash = ?, rows = ? WHERE chain = 'fill'", (last, h, n)
        )
    db = connect(path)
    try:
        report = audit_and_anchor(db, 10**12, keyed=verify_seal(db, read_key(default_key_path(path))))
    finally:
        db.close()
    assert report.fill_chain_breaks == 1 and "anchor" in report.details["fill_chain_breaks"][0], report.summary()


def test_a_moved_seal_boundary_is_a_finding(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    keyed_registry(path).close()
    with sqlite3.connect(path) as c:
        c.execute("UPDATE chain_seal SET keyed_after = 1000 WHERE chain = 'fill'")
    report = keyed_audit(path)
    assert report.fill_chain_breaks >= 1 and any("seal" in d for d in report.details["fill_chain_breaks"])


def test_a_legacy_registry_is_sealed_where_it_ends_and_its_old_rows_stay_protected(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    legacy = Registry.open(path, FakeClock())
    history(legacy, 3)
    legacy.close()
    registry = Registry.open(path, FakeClock(), prepare_key=True)
    history(registry, 3)  # keyed rows after the boundary
    registry.close()
    seal = load_seal(connect(path, readonly=True))
    assert seal["fill"].keyed_after > 0 and seal["transition"].keyed_after > 0
    assert keyed_audit(path).ok
    with raw(path) as c:  # rewrite an old, unkeyed row and recompute the whole chain unkeyed
        c.execute("UPDATE fill SET price = '999' WHERE id = 1")
        rechain(c, "fill")
    assert keyed_audit(path).fill_chain_breaks > 0  # the keyed rows after the boundary cannot be recomputed


def test_the_audit_of_a_keyed_registry_needs_the_key(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    keyed_registry(path, 1).close()
    db = connect(path, readonly=True)
    try:
        with pytest.raises(KeyRequired):
            run_audit(db)
    finally:
        db.close()


def test_a_keyed_registry_opens_with_the_key_beside_it_and_refuses_without(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    keyed_registry(path, 1).close()
    registry = Registry.open(path, FakeClock())  # a tool: finds <db>.key
    assert registry.key is not None
    drive_to(registry, "CLOSED", symbol="PF_ADAUSD")
    registry.close()
    assert keyed_audit(path).ok
    key_path = default_key_path(path)
    key_path.rename(tmp_path / "elsewhere.key")
    with pytest.raises(KeyFileError, match=f"expected at {key_path}"):
        Registry.open(path, FakeClock())
    with pytest.raises(KeyFileError, match="expected at"):
        Registry.open(path, FakeClock(), prepare_key=True)  # the daemon: never makes a new key for a keyed file
    assert not key_path.exists()
    registry = Registry.open(path, FakeClock(), key_file=tmp_path / "elsewhere.key")
    registry.close()


def test_another_registrys_key_is_refused(tmp_path: Path) -> None:
    keyed_registry(tmp_path / "a.db", 1).close()
    keyed_registry(tmp_path / "b.db", 1).close()
    with pytest.raises(KeyFileError, match="is not the key that sealed"):
        Registry.open(tmp_path / "a.db", FakeClock(), key_file=default_key_path(tmp_path / "b.db"))


def test_history_never_keyed_beside_an_existing_key_is_refused_but_an_empty_registry_is_sealed(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    keyed_registry(path, 1).close()
    # strip the seal, as someone rewriting history without the key would have to
    with sqlite3.connect(path) as c:
        c.execute("DELETE FROM chain_seal")
    with pytest.raises(KeyFileError, match="never keyed"):
        Registry.open(path, FakeClock(), prepare_key=True)
    fresh = tmp_path / "fresh.db"
    default_key_path(path).rename(default_key_path(fresh))  # e.g. a new paper registry beside last run's key
    registry = Registry.open(fresh, FakeClock(), prepare_key=True)
    assert registry.key is not None and "sealed=new" in registry.key_detail
    registry.close()


def test_the_key_never_reaches_the_repr_of_the_key_object(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    registry = keyed_registry(path, 0)
    secret_hex = default_key_path(path).read_text().strip()
    assert secret_hex not in repr(registry.key) and secret_hex not in str(registry.key)
    registry.close()


def test_keyed_rows_use_the_key_only_after_the_seal(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    registry = keyed_registry(path, 1)
    pos = registry.import_position(symbol="PF_DOTUSD", side="long", qty=Decimal(1), entry_price=Decimal(5), cause="t")
    registry.close()
    assert keyed_audit(path).ok
    assert pos.uid


def test_anchors_deleted_outside_a_reset_are_a_finding_and_a_reset_is_not(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    keyed_registry(path).close()
    assert anchor(path).ok
    with raw(path) as c:  # a rewrite with recomputed hashes over a chain that has no keyed row is not possible
        c.execute("DELETE FROM chain_anchor")  # here (keyed from 0); the anchors' deletion itself must show
    report = anchor(path)
    assert report.fill_chain_breaks == 1 and report.transition_chain_breaks == 1, report.summary()
    db = connect(path)
    try:
        clear_anchors(db)  # the operator's reset (check_db_health --reset-anchors --execute)
    finally:
        db.close()
    assert anchor(path).ok
