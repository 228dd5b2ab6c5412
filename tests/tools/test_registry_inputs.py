"""The tools' read-only view of the registry for reconciliation (`tools._venue.registry_inputs`) judges when a
position began as the daemon does (`DaemonContext.created_of`): by its first ledger fill, stamped by the venue's
clock, not by its `created` column, the host's clock. Before, `sync_positions`' dry run, `recover_sl_order_ids` and
`pre_flight_check` read `created`: with the host clock an hour ahead, a hand fill of the hour after an import was
older than the position and every earlier hand fill of the last hour was newer, so the tools' diff booked differently
from the daemon's (DST seeds 196, 28, 41, 69 found that class in the daemon)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from lifecycle.clock import FakeClock
from store.registry import Registry
from tools._venue import registry_inputs

VENUE_TIME = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_a_position_begins_at_its_first_fill_for_the_tools_as_for_the_daemon(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    registry = Registry.open(path, FakeClock(VENUE_TIME + timedelta(hours=1)))  # the host clock an hour ahead
    imported = registry.import_position(
        symbol="PF_XBTUSD",
        side="long",
        qty=Decimal("0.5"),
        entry_price=Decimal(60000),
        cause="test import",
        fill_time=VENUE_TIME,
    )
    pending = registry.open_intent(
        symbol="PF_ETHUSD", side="long", target_qty=Decimal(1), stop_price=Decimal(2900), cause="test intent"
    )
    registry.close()
    by_uid = {p.uid: p for p in registry_inputs(path, FakeClock(VENUE_TIME + timedelta(hours=2))).positions}
    assert by_uid[imported.uid].created == VENUE_TIME  # its fill's stamp, not the host's hour-ahead `created`
    assert by_uid[pending.uid].created == VENUE_TIME + timedelta(hours=1)  # no fill yet: `created` is all there is
    # ... clamped to now, as the daemon clamps it (lifecycle.clock.position_began, one rule): a `created` in the
    # future is neither "young" for ever nor blind to the fills stamped before it.
    by_uid = {p.uid: p for p in registry_inputs(path, FakeClock(VENUE_TIME)).positions}
    assert by_uid[pending.uid].created == VENUE_TIME
