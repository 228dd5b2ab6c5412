"""A hand on the venue takes our position through zero (DST seed 2587), end to end: real ccxt over HTTP to the
simulator, a real SQLite registry. The part of the hand's fill that closes our position is booked and closes it
(its stop and take-profit are cancelled at once); the rest is recorded unowned, reported once, never booked by a
later read; reconciliation adopts the venue's new exposure as an orphan and protects it.

Before: the whole fill stayed unowned, the position kept a quantity the venue no longer held (qty_mismatch,
escalated, entries paused), its reduce-only stop sat on the wrong side of the venue's net, and a later read booked
the same fill after all when an add had grown the position enough to absorb it."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import pytest

from lifecycle.values import Side, VenueFill
from operations import account_log, fills
from operations.trades import load_books, load_unattributed_charges
from tests.daemon.harness import captured_events, world

XBT = "PF_XBTUSD"


@pytest.mark.parametrize("door", ["exits", "reconcile"])
def test_a_hand_flipping_our_position_closes_it_and_the_rest_is_adopted_as_an_orphan(tmp_path: Path, door: str) -> None:
    """Whichever door meets the hand's fill first: the exits job's fill poll, or reconciliation's snapshot (whose plan
    splits the fill the same way; the door is handed the whole fill, so both parts are recorded)."""
    with world(tmp_path, take_profit=True) as w, captured_events() as ev:
        w.strategy.tp_pct = Decimal("0.01")
        uid = w.protected_entry(XBT)
        pos = w.registry.get(uid)
        held, protective = pos.remaining_qty, {pos.sl_order_id, pos.tp_order_id}
        assert None not in protective
        w.sim.open_position_direct(XBT, "short", held * 3)  # a hand sells three times what we hold
        w.advance(5)
        getattr(w, door)()  # the first door to meet the hand's fill
        assert w.registry.get(uid).state == "CLOSED"
        assert not protective & {o.order_id for o in w.sim.open_orders()}  # no stray left to cut the next position
        [booked] = [f for f in w.registry.fills(uid) if not f["is_entry"]]
        [record] = w.registry.unowned_fills()
        assert record["fill_id"] == booked["fill_id"]
        assert (record["side"], record["qty"]) == ("sell", str(held * 2))  # the part beyond our position
        [reported] = ev.named("UNOWNED_FILL")
        assert reported["fill_id"] == record["fill_id"]
        for _ in range(3):
            w.advance(5)
            w.exits()
            w.reconcile()
            w.protect()
        assert len(w.registry.fills(uid)) == 2  # the entry and the closing part: never booked again
        assert len(ev.named("UNOWNED_FILL")) == 1
        [orphan] = w.registry.active_positions()
        assert (orphan.side, orphan.remaining_qty, orphan.state) == ("short", held * 2, "PROTECTED")
        report = ev.named("RECONCILIATION_REPORT")[-1]
        assert report["qty_mismatch"] == 0 and report["unbooked_fills"] == 0
        assert w.audit_ok()


def test_reconciliation_meeting_the_hand_first_reports_no_mismatch_and_adopts_the_rest_a_cycle_later(
    tmp_path: Path,
) -> None:
    """The cycle that books the closing part closes the position: the venue's new short is then a first orphan
    sighting, not a quantity mismatch (before: one cycle of `qty_mismatch`, a warning that counts towards the
    escalation, and the orphan adopted a cycle later than evidence allows)."""
    with world(tmp_path, take_profit=True) as w, captured_events() as ev:
        uid = w.protected_entry(XBT)
        held = w.registry.get(uid).remaining_qty
        w.sim.open_position_direct(XBT, "short", held * 3)
        w.advance(5)
        first = w.reconcile()
        assert w.registry.get(uid).state == "CLOSED"
        assert first.report.qty_mismatch == 0
        assert not [e for e in ev.named("RECONCILIATION_ISSUE") if e["issue"] == "qty_mismatch"]
        assert ("orphaned", XBT, "") in first.suspected
        w.advance(5)
        second = w.reconcile()
        assert second.report.orphaned == 1
        [orphan] = w.registry.active_positions()
        assert (orphan.side, orphan.remaining_qty) == ("short", held * 2)


def test_a_fill_recorded_unowned_is_never_judged_again(tmp_path: Path) -> None:
    """The fill door judges a fill once. Before, every read of the fill window judged a fill recorded unowned again
    and booked it once a position could absorb it (seed 2587: an add had grown the position past the hand's sell),
    after its UNOWNED_FILL report had told the operator it was nobody's."""
    with world(tmp_path) as w:
        uid = w.protected_entry(XBT)
        pos = w.registry.get(uid)
        assert pos.entry_price is not None
        half = pos.remaining_qty / 2
        hand = VenueFill("hand-1", "m-1", None, XBT, Side.SELL, half, pos.entry_price, w.clock.now())
        assert w.registry.record_unowned(hand, position_uid=None, reason="test: judged unowned by an earlier read")
        result = fills.ingest(w.ctx, [hand])
        assert (result.recorded, result.unowned) == ((), ())
        assert hand.fill_id not in {f["fill_id"] for f in w.registry.fills(uid)}
        assert w.registry.get(uid).remaining_qty == pos.remaining_qty


def test_the_fee_of_a_split_fill_is_shared_between_our_trade_and_the_account(tmp_path: Path) -> None:
    """The venue charges one fee for the hand's whole fill. Our closed trade bears the share of the part it booked;
    the rest is account money in no trade (beside the other hand-made fees), so the two still add up to the fee."""
    with world(tmp_path) as w:
        uid = w.protected_entry(XBT)
        held = w.registry.get(uid).remaining_qty
        w.sim.open_position_direct(XBT, "short", held * 4)  # 1/4 of it closes our long
        w.advance(5)
        w.exits()
        assert w.registry.get(uid).state == "CLOSED"
        account_log.ingest(w.registry, w.venue, w.clock)
        [hand_fill] = [f for f in w.registry.fills(uid) if not f["is_entry"]]
        assert hand_fill["qty"] == held
        with closing(sqlite3.connect(tmp_path / "registry.db")) as db:
            [(entry_id, amount)] = db.execute(
                "SELECT entry_id, amount FROM account_charge WHERE fill_id = ?", (hand_fill["fill_id"],)
            ).fetchall()
        fee = Decimal(str(amount))
        assert fee != 0
        [book] = load_books(uids=[uid])
        shares = {c.entry_id: c.amount for c in book.charges if c.kind == "fee"}
        assert shares[str(entry_id)] == fee / 4
        assert [e.amount for e in load_unattributed_charges() if e.kind == "fee"] == [fee - fee / 4]


def test_reconciliation_plans_only_the_fills_the_door_would_judge(tmp_path: Path) -> None:
    """The plan and the door read the same 'judged' set (the ledger and the unowned record). Before, the plan read the
    ledger only: a fill recorded unowned was planned as booked again each cycle, its quantity counted in the plan's
    view of the registry, which then matched the venue, while the door skipped it and the registry kept the old
    quantity: a real mismatch reported as `qty_synced`."""
    with world(tmp_path) as w:
        uid = w.protected_entry(XBT)
        held = w.registry.get(uid).remaining_qty
        hand = w.sim.open_position_direct(XBT, "short", held / 2)  # the venue now holds half
        venue_fill = next(f for f in w.venue.fills_since(None) if f.fill_id == hand.fill_id)
        assert w.registry.record_unowned(venue_fill, position_uid=None, reason="test: an earlier judgement")
        w.advance(5)
        report = w.reconcile().report
        assert w.registry.get(uid).remaining_qty == held
        assert (report.qty_synced, report.qty_mismatch) == (0, 1)


class Crash(Exception):
    """The process dying between two writes of one batch."""


def test_a_crash_between_the_booked_part_and_the_unowned_record_loses_neither(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A split fill is recorded twice under one fill id: the part our position held in the ledger, the rest as
    unowned. Written in two transactions, a crash between them left the ledger part alone, and every later read
    skipped the fill as judged: the unowned record and its UNOWNED_FILL alert were lost for good. The batch is one
    transaction: after the crash neither part is there, and the next read judges the fill whole."""
    with world(tmp_path) as w, captured_events() as ev:
        uid = w.protected_entry(XBT)
        held = w.registry.get(uid).remaining_qty
        w.sim.open_position_direct(XBT, "short", held * 3)
        w.advance(5)
        [hand] = [f for f in w.ctx.venue.fills_since(None) if f.client_order_id is None]
        record_unowned = w.registry.record_unowned

        def crash(*args: object, **kwargs: object) -> bool:
            raise Crash

        monkeypatch.setattr(w.registry, "record_unowned", crash)
        with pytest.raises(Crash):
            fills.ingest(w.ctx, [hand])
        assert hand.fill_id not in {f["fill_id"] for f in w.registry.fills(uid)}  # nothing half-written
        monkeypatch.setattr(w.registry, "record_unowned", record_unowned)  # the restarted process
        fills.ingest(w.ctx, [hand])
        assert w.registry.get(uid).state == "CLOSED"
        [record] = w.registry.unowned_fills()
        assert (record["fill_id"], record["qty"]) == (hand.fill_id, str(held * 2))
        assert [e["fill_id"] for e in ev.named("UNOWNED_FILL")] == [hand.fill_id]
        assert w.audit_ok()


@pytest.mark.parametrize("door", ["exits", "reconcile"])
def test_a_hand_through_zero_while_a_lost_reply_leaves_our_entry_pending_closes_it_in_one_cycle(
    tmp_path: Path, door: str
) -> None:
    """The entry's reply is lost and the lookups that would resolve it fail, so the entry is still pending when a hand
    sells three times what it bought. The entry's fill is exposure all the same: whichever door meets the fills first
    books the entry, books the hand's closing part against it and closes it, and records the rest unowned; the venue's
    short is then an orphan, adopted and protected. Before: the hand's fill was nobody's while the entry was pending,
    so reconciliation adopted the entry and compared it with the venue's short (`qty_mismatch`, a warning towards the
    escalation) and the closing part was booked a cycle later."""
    with world(tmp_path) as w, captured_events() as ev:
        w.sim.faults.add("timeout_after_accept", "sendorder", count=1, delay=2.5)  # past the client's 2 s timeout
        for endpoint in ("openorders", "orders", "triggers", "fills"):
            w.sim.faults.add("http_500", endpoint, count=20)
        w.strategy.entries[XBT] = "long"
        w.advance(60)
        w.tick()
        w.strategy.entries.clear()
        [pos] = w.registry.active_positions()
        assert pos.state == "PENDING_ENTRY"
        w.sim.faults.clear()
        [venue] = w.sim.positions()
        bought = venue.size
        w.sim.open_position_direct(XBT, "short", bought * 3)
        w.advance(5)
        getattr(w, door)()
        assert w.registry.get(pos.uid).state == "CLOSED"
        ledger = w.registry.fills(pos.uid)
        assert sorted((f["is_entry"], Decimal(str(f["qty"]))) for f in ledger) == [(False, bought), (True, bought)]
        [record] = w.registry.unowned_fills()
        assert (record["side"], record["qty"]) == ("sell", str(bought * 2))
        for _ in range(3):
            w.advance(5)
            w.reconcile()
            w.exits()
            w.protect()
        assert not [e for e in ev.named("RECONCILIATION_ISSUE") if e["issue"] == "qty_mismatch"]
        assert all(r["qty_mismatch"] == 0 for r in ev.named("RECONCILIATION_REPORT"))
        [orphan] = w.registry.active_positions()
        assert (orphan.side, orphan.remaining_qty, orphan.state) == ("short", bought * 2, "PROTECTED")
        assert len(ev.named("UNOWNED_FILL")) == 1
        assert w.audit_ok()
