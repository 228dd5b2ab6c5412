"""The machine is built from the spec and nothing else: its states, finals and edges equal the spec's exactly."""

from __future__ import annotations

import itertools

import pytest

from lifecycle import machine
from lifecycle.errors import GuardFailed, IllegalTransition
from lifecycle.machine import Facts, PositionMachine, legal_events, machine_table, next_state
from specs import lifecycle as spec

# Facts that satisfy each guard (and, for has_no_fills, a position with nothing recorded at all).
# Boundary values: one fill, one unit; a guard that is off by one fails here.
SATISFY: dict[str, Facts] = {
    "": Facts(),
    "has_fills": Facts(fills_count=1, remaining_units=1),
    "has_no_fills": Facts(fills_count=0),
    "has_stop_order": Facts(fills_count=1, has_stop=True, remaining_units=1),
    "has_open_qty": Facts(fills_count=1, remaining_units=1),
    "is_flat": Facts(fills_count=1, remaining_units=0),
}
VIOLATE: dict[str, Facts] = {
    "has_fills": Facts(fills_count=0),
    "has_no_fills": Facts(fills_count=1, remaining_units=1),
    "has_stop_order": Facts(fills_count=1, has_stop=False, remaining_units=1),
    "has_open_qty": Facts(fills_count=1, remaining_units=0),
    "is_flat": Facts(fills_count=1, remaining_units=1),
}


def test_states_and_finals_equal_spec() -> None:
    assert {s.value for s in PositionMachine.states} == set(spec.STATE_NAMES)
    assert {s.value for s in PositionMachine.final_states} == spec.TERMINAL_STATES
    assert PositionMachine.initial_state.value == "PENDING_ENTRY"


def test_transition_table_equals_spec() -> None:
    assert machine_table() == spec.TABLE
    assert len(machine_table()) == len(spec.TRANSITIONS)  # no two spec edges collapse onto one key


def test_every_condition_is_a_guard_and_tests_cover_each() -> None:
    conditions = {t.condition for t in spec.TRANSITIONS}
    assert conditions <= machine.GUARDS | {""}
    assert conditions <= set(SATISFY)
    assert conditions - {""} <= set(VIOLATE)


def test_imported_positions_restore_at_open() -> None:
    sm = PositionMachine(start_value=machine.IMPORTED_STATE)
    assert sm.current_state_value == "OPEN"


def test_legal_events_match_spec() -> None:
    for state in spec.STATE_NAMES:
        expected = [e for e in spec.EVENTS if (state, e) in spec.TABLE]
        assert legal_events(state) == expected
    for state in spec.TERMINAL_STATES:
        assert legal_events(state) == []


ALL_EVENTS = [*spec.EVENTS, *spec.CREATION_EVENTS, "no_such_event", ""]
PAIRS = list(itertools.product(spec.STATE_NAMES, ALL_EVENTS))


@pytest.mark.parametrize(("state", "event"), PAIRS, ids=[f"{s}-{e or 'EMPTY'}" for s, e in PAIRS])
def test_every_state_event_pair(state: str, event: str) -> None:
    if (state, event) in spec.TABLE:
        cond = machine.spec_condition(state, event)
        assert next_state(state, event, SATISFY[cond]) == spec.TABLE[(state, event)]
        if cond:
            with pytest.raises(GuardFailed) as g:
                next_state(state, event, VIOLATE[cond], uid="p-1")
            assert cond in str(g.value) and "p-1" in str(g.value)
    else:
        with pytest.raises(IllegalTransition) as exc:
            next_state(state, event, Facts(fills_count=1, has_stop=True, remaining_units=0), uid="p-9")
        assert not isinstance(exc.value, GuardFailed)
        msg = str(exc.value)
        assert f"position p-9 in {state} cannot take {event}; legal here: " in msg
        for legal in legal_events(state):
            assert legal in msg


def test_unknown_state_is_refused() -> None:
    with pytest.raises(IllegalTransition, match="BOGUS"):
        next_state("BOGUS", "entry_filled", Facts(fills_count=1))
