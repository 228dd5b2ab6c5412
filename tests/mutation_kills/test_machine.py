"""Machine behaviours no test pinned (issue 15): missing facts fail safe, both in `Facts()` (documented as
"fail safe") and when an event is sent to the machine class with no facts at all; a copied table naming a
guard the machine lacks is refused."""

from __future__ import annotations

from dataclasses import replace

import pytest
from statemachine.exceptions import TransitionNotAllowed

from lifecycle.errors import GuardFailed
from lifecycle.machine import Facts, build_machine, machine_for, next_state
from specs import lifecycle as spec

# Edges whose guard needs positive evidence: an entry fill, a stop, open quantity.
NEEDS_EVIDENCE = [("PENDING_ENTRY", "entry_filled"), ("OPEN", "protection_confirmed"), ("EXITING", "exit_failed")]


@pytest.mark.parametrize(("state", "event"), NEEDS_EVIDENCE)
def test_default_facts_never_pass_a_guard_that_needs_evidence(state: str, event: str) -> None:
    with pytest.raises(GuardFailed):
        next_state(state, event, Facts())


@pytest.mark.parametrize(("state", "event"), NEEDS_EVIDENCE)
def test_an_event_sent_without_facts_never_passes_a_guard_that_needs_evidence(state: str, event: str) -> None:
    sm = machine_for(state)
    with pytest.raises(TransitionNotAllowed):
        sm.send(event)
    assert sm.current_state_value == state


def test_default_facts_describe_an_empty_unprotected_position() -> None:
    assert Facts().describe() == "fills_count=0, has_stop=False, remaining_units=0"


def test_without_facts_a_flat_exit_closes_and_an_unfilled_entry_is_rejected() -> None:
    # The guards that hold for "nothing recorded" (is_flat, has_no_fills) do hold when no facts are sent.
    closing = machine_for("EXITING")
    closing.send("position_closed")
    assert closing.current_state_value == "CLOSED"
    rejected = machine_for("PENDING_ENTRY")
    rejected.send("entry_rejected")
    assert rejected.current_state_value == "REJECTED"


def test_a_table_naming_an_unknown_guard_is_refused() -> None:
    edited = tuple(replace(t, condition="has_magic") if t.event == "entry_rejected" else t for t in spec.TRANSITIONS)
    with pytest.raises(RuntimeError, match="has_magic"):
        build_machine(edited)


def test_after_a_guard_raises_the_next_evaluation_is_still_right() -> None:
    # An evaluation that raises does not poison the evaluations after it (the machine is reused across calls).
    bad = Facts(fills_count="x", remaining_units=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        next_state("PENDING_ENTRY", "entry_filled", bad)
    assert next_state("OPEN", "protection_confirmed", Facts(fills_count=1, has_stop=True, remaining_units=1)) == (
        "PROTECTED"
    )
    assert next_state("PENDING_ENTRY", "entry_filled", Facts(fills_count=1, remaining_units=1)) == "OPEN"
