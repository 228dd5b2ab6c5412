"""`specs/lifecycle.py`'s Python that no test pinned (found by `make mutate`): the derived state sets, the order
edge rule, the vocabulary check's refusal, and that spec records cannot be changed at run time."""

from __future__ import annotations

import dataclasses

import pytest

from specs import lifecycle as spec
from tests.safety.properties import ENTERING, HOLDING, TERMINAL


def test_the_derived_state_sets_mean_what_they_say() -> None:
    assert spec.ACTIVE_STATES == ENTERING | HOLDING
    assert spec.TERMINAL_STATES == TERMINAL
    assert spec.EXPOSED_STATES == HOLDING


def test_an_order_may_be_recorded_again_in_its_status_and_moves_only_along_the_table() -> None:
    for status in spec.ORDER_STATUSES:
        assert spec.order_edge_legal(status, status)  # an idempotent re-record
    assert spec.order_edge_legal("intent", "open")
    assert spec.order_edge_legal("cancelled", "filled")  # late fills are the stronger evidence
    assert not spec.order_edge_legal("filled", "open")
    assert not spec.order_edge_legal("rejected", "filled")


@pytest.mark.parametrize(("source", "target"), [("intent", "limbo"), ("limbo", "open")])
def test_an_order_edge_naming_an_unknown_status_is_refused(
    monkeypatch: pytest.MonkeyPatch, source: str, target: str
) -> None:
    monkeypatch.setattr(spec, "ORDER_TRANSITIONS", (*spec.ORDER_TRANSITIONS, spec.OrderEdge(source, target, "x")))
    with pytest.raises(RuntimeError, match="names an unknown status"):
        spec._check_vocabulary()


RECORDS = [spec.STATES[0], spec.TRANSITIONS[0], spec.CREATIONS[0], spec.INVARIANTS[0], spec.ORDER_TRANSITIONS[0]]


@pytest.mark.parametrize("record", RECORDS, ids=[type(r).__name__ for r in RECORDS])
def test_spec_records_cannot_be_changed_at_run_time(record: object) -> None:
    name = dataclasses.fields(record)[0].name  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(record, name, "edited")
