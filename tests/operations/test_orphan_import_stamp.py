"""An orphan is imported as of the snapshot that showed it: the hand fills that built it, stamped at or before the
snapshot's server time, are inside the imported quantity and are never booked on it again as external adds.

Found by the crash tests in CI (`test_crash[stop-after_intent]`): the simulator's clock stands still between its
whole-second steps, so the hand fill that opened the orphan carried the very stamp of the snapshot; the import was
stamped with it too, rule 3 (`fill.time >= created`) took the old fill for a new add, and the imported 0.5 became
1 in the registry against 0.5 on the venue: qty_mismatch, escalated, entries paused. On Kraken's millisecond stamps
the same happens whenever the hand fill and the snapshot share a millisecond. Both doors that import (the
reconciliation job and `sync_positions --execute`) are checked. Real ccxt over HTTP to the simulator.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from lifecycle.clock import FakeClock
from operations import sync
from tests.daemon.harness import world

XBT = "PF_XBTUSD"


def test_the_reconciliation_import_does_not_book_the_orphans_own_fill_again(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        w.sim.open_position_direct(XBT, "long", Decimal("0.5"))  # no clock step: fill and snapshot share a stamp
        w.reconcile()  # suspected
        assert w.reconcile().report.orphaned == 1  # confirmed by a second snapshot: imported
        [pos] = w.registry.active_positions()
        w.exits()  # the fill poll reads the hand fill that opened the orphan
        w.reconcile()
        again = w.reconcile()
        assert w.registry.get(pos.uid).remaining_qty == Decimal("0.5")
        assert again.report.qty_mismatch == 0
        assert [f["fill_id"] for f in w.registry.fills(pos.uid)] == [f"import:{pos.uid}"]
        assert w.audit_ok()


def test_the_operator_import_is_stamped_by_the_venue_snapshot_too(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        w.sim.open_position_direct(XBT, "long", Decimal("0.5"))
        # The host clock an hour behind the venue (a stepped clock): the import must not be stamped by it either, or
        # every hand fill of the hour before would read as newer than the imported position.
        w.registry.clock = FakeClock(w.clock.now() - timedelta(hours=1))
        rec = sync.confirmed_diff(w.ctx, 0)
        assert sync.sync(w.ctx, rec.actions).code == 0
        [pos] = w.registry.active_positions()
        w.exits()
        again = w.reconcile()
        assert w.registry.get(pos.uid).remaining_qty == Decimal("0.5")
        assert again.report.qty_mismatch == 0
        assert w.audit_ok()
