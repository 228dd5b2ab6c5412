"""Escalation behaviours no test pinned (found by `make mutate`): the history pruning (no test had more than
three samples older than an hour), restart memory, reports without a field, equal and out-of-order times, and
the sustained-increase boundary and detail. The classes are passed explicitly (the issue classes, whose longest
window is 30 minutes and largest n is 3), so the figures below do not move when classes are added.

The pruning tests read `Escalator._history`: the bound on what a long-running daemon keeps in memory is the
behaviour under test, and nothing public shows it."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifecycle.escalation import Escalator, Sample, evaluate_rule
from specs.reconciliation import ISSUE_CLASSES, REPORT_FIELDS, Rule

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def kept(esc: Escalator) -> list[datetime]:
    return [s.at for s in esc._history]


def reference_levels(history: Sequence[Sample], firsts: dict[str, list[int]], now: datetime) -> dict[str, str]:
    """The levels evaluated over the WHOLE history, without pruning."""
    out: dict[str, str] = {}
    for c in ISSUE_CLASSES:
        if evaluate_rule(c.critical, c.field, history, firsts[c.field], now) is not None:
            out[c.field] = "critical"
        elif evaluate_rule(c.warning, c.field, history, firsts[c.field], now) is not None:
            out[c.field] = "warning"
        else:
            out[c.field] = "ok"
    return out


report = st.dictionaries(st.sampled_from(REPORT_FIELDS), st.integers(0, 3), max_size=3)
timeline = st.lists(st.tuples(st.sampled_from([0, 1, 10, 29, 30, 31, 59, 60, 61, 120]), report), max_size=40)


@given(timeline)
def test_pruning_never_changes_an_evaluation(steps: list[tuple[int, dict[str, int]]]) -> None:
    esc = Escalator(ISSUE_CLASSES)
    history: list[Sample] = []
    firsts: dict[str, list[int]] = {c.field: [] for c in ISSUE_CLASSES}
    minute = 0
    for gap, counters in steps:
        minute += gap
        if not history:
            firsts = {c.field: [counters.get(c.field, 0)] for c in ISSUE_CLASSES}
        history.append(Sample(at(minute), counters))
        assert dict(esc.observe(counters, at(minute)).levels) == reference_levels(history, firsts, at(minute))


def test_consecutive_cycles_count_however_far_apart_the_cycles_are() -> None:
    esc = Escalator(ISSUE_CLASSES)
    for hour in range(3):
        result = esc.observe({"qty_mismatch": 1}, at(120 * hour))
    assert result.levels["qty_mismatch"] == "critical"


def test_a_domination_spanning_a_gap_of_twice_the_window_is_still_seen() -> None:
    # Dominating at 0, then (the daemon was away) three reports at 60: every report since the last one older than
    # the 30-minute window dominates, so the field has dominated for more than 30 minutes.
    esc = Escalator(ISSUE_CLASSES)
    dom = {"state_adjustments_deduped": 2, "state_adjustments_logged": 1}
    esc.observe(dom, at(0))
    for _ in range(3):
        result = esc.observe(dom, at(60))
    assert result.levels["state_adjustments_deduped"] == "critical"


def test_a_domination_spanning_a_gap_longer_than_twice_the_window_is_still_seen() -> None:
    # The `deep` profile's case: a gap of 61 minutes. Pruning at twice the window dropped the report at 0, the last
    # one before the window, and with it the domination (ok where the whole history says critical).
    esc = Escalator(ISSUE_CLASSES)
    dom = {"state_adjustments_deduped": 1}
    esc.observe(dom, at(0))
    for _ in range(3):
        result = esc.observe(dom, at(61))
    assert result.levels["state_adjustments_deduped"] == "critical"


def test_a_long_run_keeps_the_longest_window_and_the_last_report_before_it() -> None:
    esc = Escalator(ISSUE_CLASSES)
    for minute in range(0, 601, 10):
        esc.observe({}, at(minute))
    # The longest window is 30 min: the reports inside it (570 included) and the last one before it (560).
    assert kept(esc) == [at(m) for m in range(560, 601, 10)]


def test_after_a_long_gap_the_last_n_samples_the_count_rules_need_are_kept() -> None:
    esc = Escalator(ISSUE_CLASSES)
    for minute in (0, 1, 2, 3, 600):
        esc.observe({}, at(minute))
    assert kept(esc) == [at(2), at(3), at(600)]  # three: the largest n of any rule


def test_history_is_capped_at_1000_samples() -> None:
    esc = Escalator(ISSUE_CLASSES[:1])  # one class keeps each evaluation cheap
    for _ in range(1003):
        esc.observe({}, at(0))
    assert len(kept(esc)) == 1000


def test_restart_memory_keeps_the_last_20_restarts() -> None:
    firsts: Mapping[str, Sequence[int]] = {"pending_adopted": ()}
    for value in range(1, 26):
        esc = Escalator(ISSUE_CLASSES, restart_firsts=firsts)
        esc.observe({"pending_adopted": value}, at(value))
        firsts = esc.restart_firsts
    assert firsts["pending_adopted"] == tuple(range(6, 26))


def test_a_first_report_without_a_field_records_zero_for_it() -> None:
    esc = Escalator(ISSUE_CLASSES)
    esc.observe({}, at(0))
    assert set(esc.restart_firsts.values()) == {(0,)}


def test_reports_without_a_field_count_it_as_zero_in_a_window_sum() -> None:
    esc = Escalator(ISSUE_CLASSES)
    for minute, counters in [(0, {"orphaned": 1}), (1, {}), (2, {"orphaned": 1}), (3, {}), (4, {"orphaned": 1})]:
        result = esc.observe(counters, at(minute))
    assert result.levels["orphaned"] == "critical"


def test_reports_at_the_same_time_are_accepted_and_all_count() -> None:
    esc = Escalator(ISSUE_CLASSES)
    for _ in range(3):
        result = esc.observe({"orphaned": 1}, at(5))
    assert result.levels["orphaned"] == "critical"


def test_a_report_older_than_the_previous_one_is_refused_naming_the_previous_time() -> None:
    esc = Escalator(ISSUE_CLASSES)
    esc.observe({}, at(0))
    esc.observe({}, at(10))
    with pytest.raises(ValueError, match=re.escape(f"older than the previous one at {at(10)}")):
        esc.observe({}, at(5))


SUSTAINED = Rule("sustained_increase", n=3, minutes=30)


def test_sustained_increase_holds_with_exactly_n_rising_samples_and_names_first_and_last() -> None:
    history = [Sample(at(m), {"x": v}) for m, v in [(0, 1), (10, 4), (20, 7)]]
    assert evaluate_rule(SUSTAINED, "x", history, [], at(20)) == "rising every cycle over 30 min (1 -> 7)"
    assert evaluate_rule(SUSTAINED, "x", history[1:], [], at(20)) is None  # two samples are not enough


def test_sustained_increase_counts_a_report_exactly_its_window_old_and_none_older() -> None:
    """The window is closed at its start, as a window sum's is: a report exactly 30 minutes old is the first of the
    rising run; one a minute older is outside it."""
    history = [Sample(at(m), {"x": v}) for m, v in [(0, 1), (15, 4), (30, 7)]]
    assert evaluate_rule(SUSTAINED, "x", history, [], at(30)) == "rising every cycle over 30 min (1 -> 7)"
    assert evaluate_rule(SUSTAINED, "x", history, [], at(31)) is None  # the first report is 31 minutes old now


def test_dominates_reads_from_the_last_report_before_its_window_not_an_earlier_one() -> None:
    """`evaluate_rule` on a history nothing pruned: a report that did not dominate long before the window says
    nothing about the last 30 minutes; the last report before the window and every one since do."""
    rule = Rule("dominates", minutes=30, other="state_adjustments_logged")
    field = "state_adjustments_deduped"
    history = [
        Sample(at(0), {field: 0, "state_adjustments_logged": 1}),  # long before: did not dominate
        Sample(at(20), {field: 2, "state_adjustments_logged": 1}),  # the last report before the window [31, 61]
        Sample(at(45), {field: 2, "state_adjustments_logged": 1}),
        Sample(at(61), {field: 2, "state_adjustments_logged": 1}),
    ]
    assert evaluate_rule(rule, field, history, [], at(61)) is not None
    assert evaluate_rule(rule, field, history[:1] + history[2:], [], at(61)) is None  # from 0: not dominated
