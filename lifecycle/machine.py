"""The position state machine, built from `specs.lifecycle` at import time.

There is no hand-written transition table here: states, finals and edges are read from the spec, and each
edge's `condition` names one of the guard methods below. The class is a python-statemachine `StateMachine`
(never `StateChart`): an illegal event raises and a failing hook leaves the state at the source.

Guards read keyword facts passed with the event (`fills_count`, `has_stop`, `remaining_units`); the registry
computes them from the database, so the machine itself touches nothing.
"""

from __future__ import annotations

import inspect
import threading
from dataclasses import asdict, dataclass
from typing import Any

from statemachine import State, StateMachine
from statemachine.exceptions import TransitionNotAllowed
from statemachine.factory import StateMachineMetaclass

from lifecycle.errors import GuardFailed, IllegalTransition
from specs import lifecycle as spec

INITIAL_STATE = spec.CREATIONS[0].target  # PENDING_ENTRY: what `open_intent` creates
IMPORTED_STATE = next(c.target for c in spec.CREATIONS if c.event == "import")


@dataclass(frozen=True)
class Facts:
    """What the guards may look at. Missing facts default to the value that makes the guards fail safe."""

    fills_count: int = 0  # entry fills recorded in the ledger
    has_stop: bool = False  # a live stop-loss order id is recorded
    remaining_units: int = 0  # entry fills minus exit fills, in lifecycle.units

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self).items())


class _Guards:
    """Guard methods named by `TransitionSpec.condition`; arguments are injected by name from the event kwargs."""

    def has_fills(self, fills_count: int = 0) -> bool:
        return fills_count > 0

    def has_no_fills(self, fills_count: int = 0) -> bool:
        return fills_count == 0

    def has_stop_order(self, has_stop: bool = False) -> bool:
        return bool(has_stop)

    def has_open_qty(self, remaining_units: int = 0) -> bool:
        return remaining_units > 0

    def is_flat(self, remaining_units: int = 0) -> bool:
        return remaining_units == 0


GUARDS: frozenset[str] = frozenset(n for n in vars(_Guards) if not n.startswith("_"))


def _state_id(name: str) -> str:
    return name.lower()


def _build(transitions: tuple[spec.TransitionSpec, ...] = spec.TRANSITIONS) -> type[StateMachine]:
    unknown = {t.condition for t in transitions if t.condition and t.condition not in GUARDS}
    if unknown:
        raise RuntimeError(f"specs.lifecycle names guards that lifecycle.machine does not define: {sorted(unknown)}")
    attrs: dict[str, Any] = {"__module__": __name__, "__qualname__": "PositionMachine"}
    states: dict[str, State] = {}
    for s in spec.STATES:
        states[s.name] = State(s.name, value=s.name, initial=s.name == INITIAL_STATE, final=s.terminal)
        attrs[_state_id(s.name)] = states[s.name]
    for event in dict.fromkeys(t.event for t in transitions):
        edges: Any = None
        for t in transitions:
            if t.event != event:
                continue
            kwargs: dict[str, Any] = {"cond": t.condition} if t.condition else {}
            edge = states[t.source].to(states[t.target], **kwargs)
            edges = edge if edges is None else edges | edge
        attrs[event] = edges
    # Guards are copied into the class body so the library resolves `cond="has_fills"` to them by name.
    attrs.update({name: vars(_Guards)[name] for name in GUARDS})
    cls = StateMachineMetaclass("PositionMachine", (StateMachine,), attrs)
    assert issubclass(cls, StateMachine)
    return cls


PositionMachine: type[StateMachine] = _build()


def build_machine(transitions: tuple[spec.TransitionSpec, ...]) -> type[StateMachine]:
    """A machine class built the same way from another transition table (tests build one from an edited copy)."""
    return _build(transitions)


def machine_table() -> dict[tuple[str, str], str]:
    """(source, event) -> target as the built machine sees it (used to prove it equals the spec)."""
    table: dict[tuple[str, str], str] = {}
    for s in PositionMachine.states:
        for t in s.transitions:
            for e in t.events:
                table[(str(t.source.value), str(e.id))] = str(t.target.value)
    return table


def _legal_index() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {name: [] for name in spec.STATE_NAMES}
    for (source, event), _target in machine_table().items():
        if event not in out[source]:
            out[source].append(event)
    order = {e: i for i, e in enumerate(spec.EVENTS)}
    return {k: sorted(v, key=order.__getitem__) for k, v in out.items()}


_LEGAL = _legal_index()


def legal_events(state: str) -> list[str]:
    """Events the spec allows from `state` (guards not evaluated), in spec order; [] for a terminal state."""
    if state not in _LEGAL:
        raise IllegalTransition("?", state, "?", (), detail=f"{state!r} is not a state of specs.lifecycle")
    return list(_LEGAL[state])


def machine_for(state: str) -> StateMachine:
    """A machine positioned at `state` (a restore: no entry hooks fire)."""
    if state not in PositionMachine.states_map:
        raise IllegalTransition("?", state, "?", (), detail=f"{state!r} is not a state of specs.lifecycle")
    return PositionMachine(start_value=state)


_REUSED = threading.local()
_GUARD_ARGS: tuple[tuple[str, str], ...] = tuple(
    (name, next(iter(inspect.signature(getattr(_Guards, name)).parameters.keys() - {"self"})))
    for name in sorted(GUARDS)
)
_VERDICTS: dict[tuple[str, str, tuple[bool, ...]], str] = {}
"""(state, event, every guard's verdict on the facts) -> the machine's target, "" when no guard let it through.
The machine's answer depends on the facts only through the guards, so one evaluation per distinct verdict vector
(a few dozen in all) answers every later transition in microseconds (issue 9 §5)."""


def _evaluate(sm: StateMachine, event: str, facts: Facts) -> str:
    """The machine's target for `event` given `facts`, "" when no transition's guard allows it."""
    try:
        sm.send(event, **asdict(facts))
    except TransitionNotAllowed:
        return ""
    except BaseException:
        _REUSED.machine = None  # never reuse a machine an unexpected error left mid-step
        raise
    return str(sm.current_state_value)


def _guard_vector(facts: Facts) -> tuple[bool, ...]:
    values = asdict(facts)
    return tuple(bool(getattr(_Guards, name)(_Guards(), **{arg: values[arg]})) for name, arg in _GUARD_ARGS)


def _reused_machine(state: str) -> StateMachine:
    """One machine per thread, built once and set back to `state` for each evaluation (issue 9 §5): building a
    python-statemachine machine was most of the cost of a registry transition write. Setting the current state is
    a restore (no hooks fire), exactly what `machine_for` does on construction."""
    sm: StateMachine | None = getattr(_REUSED, "machine", None)
    if sm is None:
        sm = machine_for(state)
        _REUSED.machine = sm
    else:
        sm.current_state_value = state
    return sm


def next_state(state: str, event: str, facts: Facts, *, uid: str = "?") -> str:
    """The target of `event` from `state` given `facts`, evaluated by the machine.

    Raises IllegalTransition when the spec has no such edge (including unknown events and terminal states),
    GuardFailed when the edge exists but its condition is false for `facts`.
    """
    if state not in _LEGAL:
        raise IllegalTransition(uid, state, event, (), detail=f"{state!r} is not a state of specs.lifecycle")
    legal = _LEGAL[state]
    if event not in legal:
        raise IllegalTransition(uid, state, event, legal)
    key = (state, event, _guard_vector(facts))
    target = _VERDICTS.get(key)
    if target is None:
        target = _evaluate(_reused_machine(state), event, facts)
        if not target:  # a refusal is confirmed on a fresh machine before it is remembered
            _REUSED.machine = None
            target = _evaluate(machine_for(state), event, facts)
        _VERDICTS[key] = target
    if not target:
        condition = spec_condition(state, event)
        raise GuardFailed(uid, state, event, condition, facts.describe(), legal)
    return target


def spec_condition(state: str, event: str) -> str:
    for t in spec.TRANSITIONS:
        if t.source == state and t.event == event:
            return t.condition
    return ""
