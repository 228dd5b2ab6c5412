"""The DST harness's money-view check (dst.money.money_finding), tested itself: clean after the daemon's own account-log
job over a run with our trades, a hand's trade and funding; and each kind of damage to the registry's charges (a
fee lost, a funding amount changed, a row of no venue entry, a cursor behind the venue, a fee or a funding entry
booked against the wrong position) is reported, each by what it breaks."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import peewee as pw
import pytest

from dst.harness import World, daemon_step
from dst.incidents import enter
from dst.money import money_finding
from specs.lifecycle import State

XBT, ETH = "PF_XBTUSD", "PF_ETHUSD"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Our long held across a funding hour, a hand's trade on another symbol, the daemon's jobs every slice."""
    w = World(5, tmp_path_factory.mktemp("money"))
    try:
        uid = enter(w, "long", XBT)
        w.sim.open_position_direct(ETH, "short", Decimal("0.5"))  # a hand's trade: its fee is nobody's
        for _ in range(130):  # 65 minutes: at least one full hour, so funding is booked on our position
            daemon_step(w)
            if _funding_of(w.registry.db, uid):
                break
        assert w.registry.get(uid).state == State.PROTECTED
        assert _funding_of(w.registry.db, uid), "no funding booked on our position within the run"
        yield w
    finally:
        w.close()


def _funding_of(db: pw.Database, uid: str) -> list[tuple[int]]:
    return list(
        db.execute_sql(  # type: ignore[no-untyped-call]
            'SELECT c."entry_id" FROM "account_charge" c JOIN "position" p ON p."id" = c."position_id"'
            ' WHERE c."kind" = \'funding\' AND p."uid" = ?',
            (uid,),
        ).fetchall()
    )


@contextmanager
def _copy(w: World, tmp_path: Path, damage: str) -> Iterator[pw.SqliteDatabase]:
    """A copy of the run's registry with `damage` (SQL) applied to it; the run's own file stays as it is."""
    path = tmp_path / "copy.db"
    source = sqlite3.connect(w.tmp / "registry.db")
    target = sqlite3.connect(path)
    source.backup(target)
    source.close()
    target.execute(damage)
    target.commit()
    target.close()
    db = pw.SqliteDatabase(str(path))
    try:
        yield db
    finally:
        db.close()


def test_the_daemons_own_account_log_job_leaves_nothing_to_report(run: World) -> None:
    assert money_finding(run.sim.account_log.entries, run.registry.db) is None
    kinds = {k for (k,) in run.registry.db.execute_sql('SELECT DISTINCT "kind" FROM "account_charge"').fetchall()}  # type: ignore[no-untyped-call]
    assert kinds == {"fee", "funding"}


HAND_FEE = '(SELECT min("entry_id") FROM "account_charge" WHERE "kind" = \'fee\' AND "position_id" IS NULL)'
OUR_FEE = '(SELECT min("entry_id") FROM "account_charge" WHERE "kind" = \'fee\' AND "position_id" IS NOT NULL)'
FIRST_POSITION = '(SELECT min("id") FROM "position")'
OUR_FUNDING = '(SELECT min("entry_id") FROM "account_charge" WHERE "kind" = \'funding\' AND "position_id" IS NOT NULL)'


@pytest.mark.parametrize(
    ("damage", "reported"),
    [
        (f'DELETE FROM "account_charge" WHERE "entry_id" = {OUR_FEE}', "of fee, the venue's account log"),
        (
            f'UPDATE "account_charge" SET "amount" = "amount" * 2 WHERE "entry_id" = {OUR_FUNDING}',
            "of funding, the venue's account log",
        ),
        (
            'INSERT INTO "account_charge" ("entry_id", "kind", "amount", "at_ms", "recorded_ms")'
            " VALUES (999999, 'fee', '0', 1, 1)",
            "rows of no venue account-log entry: [999999]",
        ),
        ('UPDATE "account_log_cursor" SET "last_entry_id" = "last_entry_id" - 1', "the account-log cursor stands at"),
        (
            f'UPDATE "account_charge" SET "position_id" = NULL WHERE "entry_id" = {OUR_FEE}',
            "fees booked against another position than their fill's",
        ),
        (
            f'UPDATE "account_charge" SET "position_id" = {FIRST_POSITION} WHERE "entry_id" = {HAND_FEE}',
            "fees booked against another position than their fill's",
        ),
        (
            f'UPDATE "account_charge" SET "position_id" = NULL WHERE "entry_id" = {OUR_FUNDING}',
            "funding booked against a position that did not hold the symbol then",
        ),
    ],
    ids=[
        "fee_lost",
        "funding_changed",
        "unknown_entry",
        "cursor_behind",
        "our_fee_unowned",
        "hand_fee_ours",
        "funding_unowned",
    ],
)
def test_each_damage_to_the_charges_is_reported(run: World, tmp_path: Path, damage: str, reported: str) -> None:
    with _copy(run, tmp_path, damage) as db:
        finding = money_finding(run.sim.account_log.entries, db)
    assert finding is not None and reported in finding, finding
