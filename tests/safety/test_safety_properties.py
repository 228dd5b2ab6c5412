"""The hand-written safety properties hold for the real machine: over the whole transition table from every
safe boundary configuration, and after every step of random position histories."""

from __future__ import annotations

import pytest

from lifecycle import machine
from specs import lifecycle as spec
from tests.safety.expected_guards import EXPECTED_EVENTS
from tests.safety.lifecycle_model import lifecycle_model
from tests.safety.properties import (
    Position,
    SafetyViolation,
    candidate_positions,
    check_state,
    check_step,
    liveness_violations,
    must_accept,
    real_stepper,
    state_violations,
    step_violations,
    table_violations,
)

EVENTS = tuple(dict.fromkeys((*EXPECTED_EVENTS, *spec.EVENTS)))


def test_no_allowed_step_from_a_safe_position_breaks_a_property() -> None:
    assert table_violations(real_stepper, EVENTS) == []


def test_the_real_machine_accepts_every_fact_it_must() -> None:
    assert liveness_violations(real_stepper) == []


def test_every_non_terminal_state_has_something_it_must_accept() -> None:
    must = {p.state for p in candidate_positions() if must_accept(p)}
    assert must == {"PENDING_ENTRY", "ENTRY_OPEN", "OPEN", "PROTECTED", "EXITING"}


def test_the_table_check_explores_every_state_and_edge() -> None:
    """The inductive check is only as good as its coverage: every state appears as a source, and every edge of
    the real machine is taken from at least one safe configuration."""
    sources = {p.state for p in candidate_positions()}
    assert sources == set(spec.STATE_NAMES)
    taken = {
        (p.state, e) for p in candidate_positions() for e in EVENTS if real_stepper(p.state, e, p.facts()) is not None
    }
    assert taken == set(spec.TABLE)


def test_creations_start_safe() -> None:
    assert machine.INITIAL_STATE == "PENDING_ENTRY"
    assert machine.IMPORTED_STATE == "OPEN"
    check_state(Position("PENDING_ENTRY"))
    check_state(Position("OPEN", entry_fills=1, remaining_units=1))


# Each property, shown to fire on a position or step that breaks it (a property that cannot fail proves nothing).
UNSAFE_POSITIONS = [
    (Position("CLOSED", entry_fills=1, remaining_units=1), "CLOSED while not flat"),
    (Position("CANCELLED", entry_fills=1, remaining_units=1), "terminal CANCELLED with remaining quantity"),
    (Position("REJECTED", entry_fills=1), "REJECTED holds 1 entry fill"),
    (Position("CANCELLED", entry_fills=2), "CANCELLED holds 2 entry fill"),
    (Position("PROTECTED", entry_fills=1, remaining_units=1), "PROTECTED without a live stop id"),
    (Position("LIMBO"), "LIMBO is not a position state"),
]


@pytest.mark.parametrize(("position", "message"), UNSAFE_POSITIONS, ids=[m for _, m in UNSAFE_POSITIONS])
def test_each_state_property_fires(position: Position, message: str) -> None:
    assert any(message in v for v in state_violations(position))
    with pytest.raises(SafetyViolation, match=message):
        check_state(position)


UNSAFE_STEPS = [
    (Position("OPEN", 1, 1, has_stop=False), "protection_confirmed", "PROTECTED", "without a stop"),
    (Position("EXITING", 1, 1, has_stop=True), "position_closed", "CLOSED", "with remaining quantity 1"),
    (Position("OPEN", 1, 1), "entry_cancelled", "CANCELLED", "left exposure without a close"),
    (Position("PROTECTED", 1, 0, has_stop=True), "entry_rejected", "REJECTED", "left exposure without a close"),
    (Position("PENDING_ENTRY"), "entry_filled", "OPEN", "whose entry never filled"),
    (Position("ENTRY_OPEN"), "entry_filled", "EXITING", "whose entry never filled"),
    (Position("EXITING", 1, 0), "exit_failed", "OPEN", "flat position sent back to OPEN"),
    (Position("CLOSED", 1, 0), "entry_filled", "OPEN", "a terminal state was left"),
    (Position("PENDING_ENTRY", 1, 1), "entry_rejected", "REJECTED", "REJECTED holds 1 entry fill"),
]


@pytest.mark.parametrize(("before", "event", "target", "message"), UNSAFE_STEPS, ids=[s[3] for s in UNSAFE_STEPS])
def test_each_step_property_fires(before: Position, event: str, target: str, message: str) -> None:
    assert any(message in v for v in step_violations(before, event, target))
    with pytest.raises(SafetyViolation, match=message):
        check_step(before, event, target)


SAFE_STEPS = [
    (Position("OPEN", 1, 1, has_stop=True), "protection_confirmed", "PROTECTED"),
    (Position("PROTECTED", 1, 1, has_stop=True), "protection_lost", "OPEN"),  # protect re-places the stop
    (Position("EXITING", 2, 0), "position_closed", "CLOSED"),
    (Position("EXITING", 1, 1), "exit_failed", "OPEN"),
    (Position("ENTRY_OPEN", 1, 1), "entry_filled", "OPEN"),
    (Position("ENTRY_OPEN"), "entry_cancelled", "CANCELLED"),
]


@pytest.mark.parametrize(("before", "event", "target"), SAFE_STEPS, ids=[f"{s[0].state}-{s[1]}" for s in SAFE_STEPS])
def test_safe_steps_pass(before: Position, event: str, target: str) -> None:
    assert step_violations(before, event, target) == []


TestRealMachineStaysSafe = lifecycle_model(real_stepper, EVENTS).TestCase
