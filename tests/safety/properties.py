"""Safety properties of a position, written by hand from what the states MEAN, never read from the spec.

`specs.lifecycle` is where the transitions and their guards live, and every other lifecycle test reads its
expectations from there, so a wrong guard in the spec moves those tests with it. The statements below are the
second opinion: they name states by their meaning (a terminal state holds nothing; a position never filled
holds no entry fills; PROTECTED names its stop; ...) and are checked against whatever machine they are given,
including machines built from edited copies of the spec table (`tests/safety/test_spec_edits.py`).

Nothing here imports `specs`: the state names and their meanings are spelled out again on purpose.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

from statemachine import StateMachine
from statemachine.exceptions import TransitionNotAllowed

from lifecycle.errors import IllegalTransition
from lifecycle.machine import Facts, next_state

# What each state means, by hand (specs/lifecycle.py says the same in its `meaning` column).
TERMINAL = frozenset({"CLOSED", "CANCELLED", "REJECTED"})  # the position's story is over: it holds nothing
NEVER_FILLED = frozenset({"CANCELLED", "REJECTED"})  # the entry order never filled
ENTERING = frozenset({"PENDING_ENTRY", "ENTRY_OPEN"})  # the entry order is not done yet
HOLDING = frozenset({"OPEN", "PROTECTED", "EXITING"})  # the position holds quantity on the venue
ALL_STATES = ENTERING | HOLDING | TERMINAL


class SafetyViolation(AssertionError):
    """A position in a situation its states' meanings forbid."""


@dataclass(frozen=True)
class Position:
    """A position at one moment: its state and the facts its ledger and protection give."""

    state: str
    entry_fills: int = 0  # entry fills in the ledger
    remaining_units: int = 0  # entry fills minus exit fills
    has_stop: bool = False  # a live stop-loss order id is recorded

    def facts(self) -> Facts:
        return Facts(fills_count=self.entry_fills, has_stop=self.has_stop, remaining_units=self.remaining_units)


def state_violations(p: Position) -> list[str]:
    """What is wrong with `p` on its own (empty when nothing is)."""
    out: list[str] = []
    if p.state not in ALL_STATES:
        out.append(f"{p.state} is not a position state")
    if p.state in TERMINAL and p.remaining_units != 0:
        out.append(f"terminal {p.state} with remaining quantity {p.remaining_units}")
    if p.state in NEVER_FILLED and p.entry_fills != 0:
        out.append(f"{p.state} holds {p.entry_fills} entry fill(s)")
    if p.state == "PROTECTED" and not p.has_stop:
        out.append("PROTECTED without a live stop id")
    if p.state == "CLOSED" and p.remaining_units != 0:
        out.append(f"CLOSED while not flat ({p.remaining_units})")
    return out


def step_violations(before: Position, event: str, target: str) -> list[str]:
    """What is wrong with `before` taking `event` into `target` (its facts unchanged by the transition)."""
    after = replace(before, state=target)
    out = [f"after {before.state} --{event}--> {target}: {v}" for v in state_violations(after)]
    edge = f"{before.state} --{event}--> {target}"
    if before.state in TERMINAL:
        out.append(f"{edge}: a terminal state was left")
    if before.state == "OPEN" and target == "PROTECTED" and not before.has_stop:
        out.append(f"{edge} without a stop")
    if target == "CLOSED" and before.remaining_units != 0:
        out.append(f"{edge} with remaining quantity {before.remaining_units}")
    if before.state in HOLDING and target not in HOLDING and not (target == "CLOSED" and before.remaining_units == 0):
        out.append(f"{edge}: an exposed position left exposure without a close")
    if before.state in ENTERING and target in HOLDING and before.entry_fills == 0:
        out.append(f"{edge}: holding a position whose entry never filled")
    if before.state == "EXITING" and target == "OPEN" and before.remaining_units == 0:
        out.append(f"{edge}: a flat position sent back to OPEN instead of being closed")
    return out


def check_state(p: Position) -> None:
    problems = state_violations(p)
    if problems:
        raise SafetyViolation("; ".join(problems))


def check_step(before: Position, event: str, target: str) -> None:
    problems = step_violations(before, event, target)
    if problems:
        raise SafetyViolation("; ".join(problems))


Stepper = Callable[[str, str, Facts], str | None]
"""(state, event, facts) -> the target the machine moves to, or None when it refuses."""


@functools.cache
def real_stepper(state: str, event: str, facts: Facts) -> str | None:
    """The production path: `lifecycle.machine.next_state` (what the registry calls)."""
    try:
        return next_state(state, event, facts)
    except IllegalTransition:  # GuardFailed included
        return None


def class_stepper(machine_cls: type[StateMachine]) -> Stepper:
    """A stepper over any machine class (one built by `lifecycle.machine.build_machine` from a table copy)."""

    @functools.cache  # a machine's answer depends only on its arguments; building an instance is the slow part
    def step(state: str, event: str, facts: Facts) -> str | None:
        sm = machine_cls(start_value=state)
        try:
            sm.send(event, **asdict(facts))
        except TransitionNotAllowed:
            return None
        return str(sm.current_state_value)

    return step


def candidate_positions() -> list[Position]:
    """Every state with boundary facts (0, 1, 2 fills and units; with and without a stop) that breaks no state
    property: the configurations a correct machine must keep safe whatever event arrives."""
    out: list[Position] = []
    for state in sorted(ALL_STATES):
        for fills in (0, 1, 2):
            for units in range(fills + 1):  # nothing held without an entry fill; at most one unit per fill here
                for stop in (False, True):
                    p = Position(state, entry_fills=fills, remaining_units=units, has_stop=stop)
                    if not state_violations(p):
                        out.append(p)
    return out


def table_violations(step: Stepper, events: tuple[str, ...], states: frozenset[str] = ALL_STATES) -> list[str]:
    """Every step the machine allows from a safe configuration that breaks a property (the inductive step);
    `states` narrows the sources (a one-edge edit can only change steps out of its source)."""
    out: list[str] = []
    for p in candidate_positions():
        if p.state not in states:
            continue
        for event in events:
            target = step(p.state, event, p.facts())
            if target is not None:
                out.extend(f"{v} [{p}]" for v in step_violations(p, event, target))
    return out


# --- liveness: what the machine must never refuse ------------------------------------------------------------
# The safety properties above catch a guard that is too weak; these catch one that is too strong. Each is a fact
# the venue (or we) can report in that situation, which the lifecycle has to be able to record.


def must_accept(p: Position) -> list[tuple[str, str]]:
    """(event, target) pairs the machine must accept from `p`, by what the states mean."""
    out: list[tuple[str, str]] = []
    if p.state == "PENDING_ENTRY":
        out.append(("entry_acknowledged", "ENTRY_OPEN"))  # the venue accepted the entry order
    if p.state in ENTERING and p.entry_fills > 0:
        out.append(("entry_filled", "OPEN"))  # the entry filled: the position exists whatever happened since
    if p.state in ENTERING and p.entry_fills == 0:
        out.append(("entry_cancelled", "CANCELLED"))  # nothing filled and the order is gone
    if p.state == "PENDING_ENTRY" and p.entry_fills == 0:
        out.append(("entry_rejected", "REJECTED"))  # the venue refused the order
    if p.state == "OPEN" and p.has_stop:
        out.append(("protection_confirmed", "PROTECTED"))
    if p.state == "PROTECTED":
        out.append(("protection_lost", "OPEN"))  # the venue cancelled our stop: never refuse to record it
    if p.state in ("OPEN", "PROTECTED"):
        out.append(("exit_requested", "EXITING"))  # an exit is never blocked
    if p.state == "EXITING" and p.remaining_units > 0:
        out.append(("exit_failed", "OPEN"))  # still exposed: back to where protect watches it
    if p.state in HOLDING and p.remaining_units == 0:
        out.append(("position_closed", "CLOSED"))  # flat by the ledger: it can always be closed
    return out


def liveness_violations(
    step: Stepper, events: tuple[str, ...] | None = None, states: frozenset[str] = ALL_STATES
) -> list[str]:
    """Every fact a safe boundary configuration must accept that the machine refuses (or sends elsewhere)."""
    out: list[str] = []
    for p in candidate_positions():
        if p.state not in states:
            continue
        for event, target in must_accept(p):
            if events is not None and event not in events:
                continue
            got = step(p.state, event, p.facts())
            if got != target:
                out.append(f"{p.state} --{event}--> expected {target}, machine gives {got} [{p}]")
    return out
