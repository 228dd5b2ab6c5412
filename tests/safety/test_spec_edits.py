"""The three spec edits issue 15 names, each applied to a COPY of the spec table: a machine built from the copy
breaks the hand-written safety properties (over the table, and in a random history), and the copy no longer
equals the hand-written expected-guard table. The real spec module is never modified."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from lifecycle.machine import build_machine
from specs import lifecycle as spec
from tests.safety.lifecycle_model import lifecycle_model
from tests.safety.properties import (
    SafetyViolation,
    candidate_positions,
    class_stepper,
    liveness_violations,
    table_violations,
)
from tests.safety.test_expected_guards import differences
from tests.safety.test_safety_properties import EVENTS

# (event, guard dropped, what the properties must then report)
NAMED_EDITS = [
    ("entry_rejected", "has_no_fills", "REJECTED holds"),
    ("position_closed", "is_flat", "CLOSED while not flat"),
    ("protection_confirmed", "has_stop_order", "PROTECTED without a live stop id"),
]
# One case per edge carrying the guard: position_closed has three sources, each edited on its own.
EDGE_EDITS = [
    (t.source, event, guard, message)
    for event, guard, message in NAMED_EDITS
    for t in spec.TRANSITIONS
    if t.event == event and t.condition == guard
]


def without_guard(source: str, event: str) -> tuple[spec.TransitionSpec, ...]:
    return tuple(replace(t, condition="") if (t.source, t.event) == (source, event) else t for t in spec.TRANSITIONS)


# Fully explicit (the parent is Hypothesis' own default, not the loaded profile), so the search is the same under
# every profile; each example is cheap (the stepper is cached), and the first failing history ends the search.
STATEFUL = settings(
    settings.get_profile("default"),
    max_examples=2000,
    stateful_step_count=30,
    derandomize=True,
    database=None,
    deadline=None,
    report_multiple_bugs=False,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.generate],  # the first failing history is enough; shrinking it only costs time
)


def test_every_named_edit_has_an_edge_to_apply_to() -> None:
    assert {e for _, e, _, _ in EDGE_EDITS} == {e for e, _, _ in NAMED_EDITS}
    assert len(EDGE_EDITS) == 5  # entry_rejected 1, position_closed 3, protection_confirmed 1


def test_an_unedited_copy_is_safe() -> None:
    """Control: building from a copy is not what breaks the properties."""
    copy = tuple(replace(t) for t in spec.TRANSITIONS)
    assert table_violations(class_stepper(build_machine(copy)), EVENTS) == []
    assert differences(copy) == []


@pytest.mark.parametrize(
    ("source", "event", "guard", "message"), EDGE_EDITS, ids=[f"{s}-{e}" for s, e, *_ in EDGE_EDITS]
)
def test_named_edit_breaks_the_table_check(source: str, event: str, guard: str, message: str) -> None:
    edited = without_guard(source, event)
    found = table_violations(class_stepper(build_machine(edited)), EVENTS)
    assert found, f"dropping {guard} from {source} --{event}--> broke no property"
    assert any(message in v for v in found), found


@pytest.mark.parametrize(
    ("source", "event", "guard", "message"), EDGE_EDITS, ids=[f"{s}-{e}" for s, e, *_ in EDGE_EDITS]
)
def test_named_edit_breaks_a_random_history(source: str, event: str, guard: str, message: str) -> None:
    model = lifecycle_model(class_stepper(build_machine(without_guard(source, event))), EVENTS)
    with pytest.raises(SafetyViolation, match=message):
        run_state_machine_as_test(model, settings=STATEFUL)


@pytest.mark.parametrize(
    ("source", "event", "guard", "message"), EDGE_EDITS, ids=[f"{s}-{e}" for s, e, *_ in EDGE_EDITS]
)
def test_named_edit_differs_from_the_expected_table(source: str, event: str, guard: str, message: str) -> None:
    [line] = differences(without_guard(source, event))
    assert f"{source} --{event}-->" in line and guard in line


GUARDED = [(t.source, t.event, t.condition) for t in spec.TRANSITIONS if t.condition]


@pytest.mark.parametrize(("source", "event", "guard"), GUARDED, ids=[f"{s}-{e}" for s, e, _ in GUARDED])
def test_dropping_any_guard_breaks_a_property(source: str, event: str, guard: str) -> None:
    """Beyond the three named edits: no guard of the spec is decorative."""
    assert table_violations(class_stepper(build_machine(without_guard(source, event))), EVENTS)


GUARD_NAMES = ("has_fills", "has_no_fills", "has_stop_order", "has_open_qty", "is_flat")
# Adding has_stop_order to an edge out of PROTECTED changes nothing a position can do: PROTECTED always has a
# stop (a state property; the registry refuses to clear it there), so these two edits are equivalent.
EQUIVALENT_EDITS = {
    ("PROTECTED", "protection_lost", "has_stop_order"),
    ("PROTECTED", "exit_requested", "has_stop_order"),
}


def with_guard(index: int, guard: str) -> tuple[spec.TransitionSpec, ...]:
    return tuple(replace(t, condition=guard) if i == index else t for i, t in enumerate(spec.TRANSITIONS))


def test_every_guard_dropped_swapped_or_added_breaks_a_safety_or_liveness_property() -> None:
    """What `make mutate`'s guard pass does, checked by the hand-written properties alone (no expected table)."""
    unnoticed = []
    for i, t in enumerate(spec.TRANSITIONS):
        for guard in ("", *GUARD_NAMES):
            if guard == t.condition or (t.source, t.event, guard) in EQUIVALENT_EDITS:
                continue
            step = class_stepper(build_machine(with_guard(i, guard)))
            # Only the edited edge changed, so only steps out of its source by its event are checked (fast).
            events, states = (t.event,), frozenset({t.source})
            if not (table_violations(step, events, states) or liveness_violations(step, events, states)):
                unnoticed.append(f"{t.source} --{t.event}--> {t.condition!r} -> {guard!r}")
    assert unnoticed == []


def test_the_equivalent_edits_really_change_nothing_a_safe_position_can_do() -> None:
    real = class_stepper(build_machine(spec.TRANSITIONS))
    for i, t in enumerate(spec.TRANSITIONS):
        for source, event, guard in EQUIVALENT_EDITS:
            if (t.source, t.event) == (source, event):
                edited = class_stepper(build_machine(with_guard(i, guard)))
                for p in candidate_positions():
                    assert edited(p.state, event, p.facts()) == real(p.state, event, p.facts())
