"""Escalation rules from specs.reconciliation, one timeline per rule kind, with the boundaries made explicit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from lifecycle.escalation import Escalator, Evaluation
from lifecycle.events import Ev, emit
from specs.reconciliation import ISSUE_CLASSES, Rule

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def feed(esc: Escalator, timeline: Sequence[tuple[float, dict[str, int]]]) -> Evaluation:
    result = None
    for minute, counters in timeline:
        result = esc.observe(counters, at(minute))
    assert result is not None
    return result


def test_every_spec_rule_kind_is_understood() -> None:
    esc = Escalator()
    for c in ISSUE_CLASSES:
        assert isinstance(c.warning, Rule) and isinstance(c.critical, Rule)
    assert feed(esc, [(0, {})]).level == "ok"


def test_clean_reports_are_ok() -> None:
    result = feed(Escalator(), [(m, {}) for m in range(0, 60, 1)])
    assert set(result.levels.values()) == {"ok"}
    assert result.critical_hits == () and not result.entries_paused


def test_orphaned_one_in_a_cycle_is_warning() -> None:
    result = feed(Escalator(), [(0, {"orphaned": 1})])
    assert result.levels["orphaned"] == "warning"
    assert result.critical_hits == ()


def test_orphaned_three_within_exactly_fifteen_minutes_is_critical() -> None:
    result = feed(Escalator(), [(0, {"orphaned": 1}), (7, {"orphaned": 1}), (15, {"orphaned": 1})])
    assert result.levels["orphaned"] == "critical"
    [hit] = result.critical_hits
    assert (hit.field, hit.rule) == ("orphaned", "window_sum_at_least")
    assert result.new_critical_hits == (hit,)
    assert result.entries_paused
    line = str(emit(Ev.ESCALATION, None, **hit.fields()))
    assert line.startswith("ESCALATION field=orphaned rule=window_sum_at_least")


def test_orphaned_three_spread_over_more_than_fifteen_minutes_is_not_critical() -> None:
    result = feed(Escalator(), [(0, {"orphaned": 1}), (7, {"orphaned": 1}), (15.02, {"orphaned": 1})])
    assert result.levels["orphaned"] == "warning"


def test_phantom_three_in_one_cycle_is_critical() -> None:
    assert feed(Escalator(), [(0, {"phantom": 3})]).levels["phantom"] == "critical"


def test_qty_mismatch_two_consecutive_cycles_is_warning_three_is_critical() -> None:
    esc = Escalator()
    two = feed(esc, [(0, {"qty_mismatch": 1}), (1, {"qty_mismatch": 1})])
    assert two.levels["qty_mismatch"] == "warning"
    three = esc.observe({"qty_mismatch": 1}, at(2))
    assert three.levels["qty_mismatch"] == "critical"
    assert [h.field for h in three.new_critical_hits] == ["qty_mismatch"]
    # Still critical next cycle, but not new: the daemon emits ESCALATION once per crossing.
    four = esc.observe({"qty_mismatch": 1}, at(3))
    assert four.critical_hits and four.new_critical_hits == ()


def test_qty_mismatch_interrupted_run_is_not_critical() -> None:
    result = feed(Escalator(), [(0, {"qty_mismatch": 1}), (1, {}), (2, {"qty_mismatch": 1}), (3, {"qty_mismatch": 1})])
    assert result.levels["qty_mismatch"] == "warning"


def test_incomplete_reports_neither_count_nor_break_a_run() -> None:
    esc = Escalator()
    feed(esc, [(0, {"qty_mismatch": 1}), (1, {"qty_mismatch": 1})])
    esc.observe({}, at(2), complete=False)
    assert esc.observe({"qty_mismatch": 1}, at(3)).levels["qty_mismatch"] == "critical"


def test_qty_synced_three_in_a_cycle_is_warning_and_never_pauses() -> None:
    result = feed(Escalator(), [(0, {"qty_synced": 3})])
    assert result.levels["qty_synced"] == "warning"


def test_qty_synced_sustained_increase_over_thirty_minutes_is_critical_but_not_escalating() -> None:
    timeline = [(m, {"qty_synced": i + 1}) for i, m in enumerate(range(0, 31, 10))]  # 1,2,3,4 at 0,10,20,30
    result = feed(Escalator(), timeline)
    assert result.levels["qty_synced"] == "critical"
    assert result.critical_hits == () and not result.entries_paused


def test_qty_synced_dip_breaks_the_sustained_increase() -> None:
    timeline = [(0, {"qty_synced": 1}), (10, {"qty_synced": 3}), (20, {"qty_synced": 2}), (30, {"qty_synced": 4})]
    assert feed(Escalator(), timeline).levels["qty_synced"] != "critical"


def test_pending_adopted_repeated_every_restart() -> None:
    esc = Escalator()
    esc.observe({"pending_adopted": 1}, at(0))
    esc.observe({}, at(1))  # later cycles do not matter
    esc.mark_restart()
    esc.observe({"pending_adopted": 2}, at(2))
    assert esc.observe({}, at(3)).levels["pending_adopted"] == "ok"  # two restarts only
    # A real restart: a new object fed the persisted values.
    restarted = Escalator(restart_firsts=esc.restart_firsts)
    result = restarted.observe({"pending_adopted": 1}, at(10))
    assert result.levels["pending_adopted"] == "critical"
    assert result.critical_hits == ()  # pending_adopted does not escalate


def test_pending_adopted_one_quiet_restart_clears_the_repetition() -> None:
    firsts = {"pending_adopted": (1, 0)}
    result = Escalator(restart_firsts=firsts).observe({"pending_adopted": 1}, at(0))
    assert result.levels["pending_adopted"] == "warning"


def test_deduped_rising_trend_is_warning() -> None:
    timeline = [(0, {"state_adjustments_deduped": 1}), (1, {"state_adjustments_deduped": 2})]
    esc = Escalator()
    assert feed(esc, timeline).levels["state_adjustments_deduped"] == "ok"  # two values are not a trend of 3
    assert esc.observe({"state_adjustments_deduped": 5}, at(2)).levels["state_adjustments_deduped"] == "warning"


def test_deduped_dominating_for_exactly_thirty_minutes_is_not_yet_critical() -> None:
    dominating = {"state_adjustments_deduped": 4, "state_adjustments_logged": 1}
    esc = Escalator()
    esc.observe({"state_adjustments_logged": 2}, at(-1))
    result = feed(esc, [(m, dominating) for m in range(0, 31)])
    assert result.levels["state_adjustments_deduped"] != "critical"
    assert esc.observe(dominating, at(31)).levels["state_adjustments_deduped"] == "critical"


def test_dominance_needs_the_window_covered() -> None:
    dominating = {"state_adjustments_deduped": 4, "state_adjustments_logged": 1}
    result = feed(Escalator(), [(m, dominating) for m in range(0, 30)])
    assert result.levels["state_adjustments_deduped"] != "critical"


def test_out_of_order_reports_are_refused() -> None:
    esc = Escalator()
    esc.observe({}, at(5))
    with pytest.raises(ValueError, match="older than"):
        esc.observe({}, at(4))


def test_entry_pause_is_sticky_after_the_window_expires() -> None:
    esc = Escalator()
    feed(esc, [(0, {"phantom": 3})])
    later = esc.observe({}, at(60))
    assert later.levels["phantom"] == "ok"
    assert later.entries_paused
