"""Daemon defects the DST schedules found, each pinned as a regression test (scripted, so it stays stable when the
schedule's event table changes) beside the seed that found it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from dst.harness import World, daemon_step
from dst.incidents import enter
from lifecycle.escalation import Escalator
from lifecycle.killswitch import KillSwitch
from lifecycle.reconcile import ReconciliationReport
from operations.safety import Safety

ETH = "PF_ETHUSD"


def test_a_report_stamped_before_the_previous_one_still_counts() -> None:
    # DST seed 17 (`daemon clock offset -3600s`): the escalator refuses a report older than the previous one, so
    # after the host clock stepped back every reconcile job raised ValueError (no RECONCILIATION_REPORT, no
    # escalation) until the clock caught up. The report is now taken at the previous one's time.
    safety = Safety(KillSwitch(Decimal(80), Decimal(5), 2), Escalator())
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    assert safety.observe_report(ReconciliationReport(), t0) == "ok"
    levels = [safety.observe_report(ReconciliationReport(orphaned=1), t0 - timedelta(hours=1)) for _ in range(5)]
    assert levels[0] == "warning"
    assert levels[-1] == "critical"  # consecutive cycles still count across the step back
    assert safety.observe_report(ReconciliationReport(), t0 + timedelta(seconds=30)) in ("ok", "warning", "critical")


@pytest.mark.parametrize("offset_at_cancel", [timedelta(hours=1), timedelta(0)], ids=["ahead", "stepped_back"])
def test_a_vanished_order_row_is_settled_whatever_the_host_clock_did(
    tmp_path: Path, offset_at_cancel: timedelta
) -> None:
    # DST seed 14 (`daemon clock offset +3600s`, then the venue dropping every stop, then a silent cancel of the
    # take-profit): reconciliation skipped every open row "sent after the snapshot" by comparing the row's created
    # time (the daemon's clock) with the snapshot's server time (the venue's), so with the host clock an hour ahead
    # the take-profit the venue cancelled stayed `open` for that hour (J4 order_status_drift, then critical). DST
    # seed 88: the same with the clock stepped back after the rows were written. Now judged by which rows existed.
    w = World(14, tmp_path)
    try:
        w.daemon_clock.offset = timedelta(hours=1)
        uid = enter(w, "long", ETH)
        w.dropping[ETH] = 9
        for _ in range(9):
            daemon_step(w)
        assert f"churn:{uid}" in w.ctx.announced_unprotectable  # no stop any more: protect leaves the TP alone
        [tp] = [o for o in w.registry.orders(uid) if o.purpose == "take_profit"]
        assert tp.status == "open" and tp.venue_order_id is not None
        w.daemon_clock.offset = offset_at_cancel
        w.sim.cancel_silently(tp.venue_order_id)
        for _ in range(3):
            daemon_step(w)
        [tp] = [o for o in w.registry.orders(uid) if o.purpose == "take_profit"]
        assert tp.status == "cancelled", tp
        joint = w.ctx.last_joint
        assert joint is not None and joint.counters()["order_status_drift"] == 0
    finally:
        w.close()
