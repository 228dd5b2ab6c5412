"""Daemon defects the DST schedules found, each pinned as a regression test (scripted, so it stays stable when the
schedule's event table changes) beside the seed that found it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from lifecycle.escalation import Escalator
from lifecycle.killswitch import KillSwitch
from lifecycle.reconcile import ReconciliationReport
from operations.safety import Safety


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
