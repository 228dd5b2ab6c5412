"""The spec's transitions equal the hand-written table in `expected_guards.py`: changing a guard (or a target,
or adding or removing an edge) takes two deliberate edits."""

from __future__ import annotations

from specs import lifecycle as spec
from tests.safety.expected_guards import EXPECTED_GUARDS


def spec_guards(transitions: tuple[spec.TransitionSpec, ...]) -> dict[tuple[str, str], tuple[str, str]]:
    return {(t.source, t.event): (t.target, t.condition) for t in transitions}


def differences(transitions: tuple[spec.TransitionSpec, ...]) -> list[str]:
    """One line per (source, event) where `transitions` and the hand-written table disagree."""
    actual = spec_guards(transitions)
    out: list[str] = []
    for key in sorted(actual.keys() | EXPECTED_GUARDS.keys()):
        want, got = EXPECTED_GUARDS.get(key), actual.get(key)
        if want != got:
            out.append(f"{key[0]} --{key[1]}-->: expected (target, guard) {want}, spec has {got}")
    if len(actual) != len(transitions):
        out.append("the spec lists one (source, event) twice")
    return out


def test_spec_transitions_equal_the_hand_written_table() -> None:
    assert differences(spec.TRANSITIONS) == []
