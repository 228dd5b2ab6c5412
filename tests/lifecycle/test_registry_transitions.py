"""Every state x event pair through the registry on a real SQLite file: legal ones land and are logged,
illegal ones and failing guards raise and leave the database byte-for-byte as it was."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from lifecycle.errors import GuardFailed, IllegalTransition, UnknownPosition
from lifecycle.machine import spec_condition
from specs import lifecycle as spec
from specs.lifecycle import Event
from store.registry import Registry
from tests.lifecycle.helpers import as_event, drive_to, entry_fill, exit_fill, open_registry, snapshot, verify_chains

ALL_EVENTS = [*spec.EVENTS, *spec.CREATION_EVENTS, "no_such_event"]
PAIRS = list(itertools.product(spec.STATE_NAMES, ALL_EVENTS))

Prep = Callable[[Registry, str], None]


def _nothing(reg: Registry, uid: str) -> None:
    pass


def _entry(reg: Registry, uid: str) -> None:
    entry_fill(reg, uid)


def _stop(reg: Registry, uid: str) -> None:
    reg.set_protection(uid, sl_order_id="sl-77")


def _flatten(reg: Registry, uid: str) -> None:
    exit_fill(reg, uid)


SATISFY: dict[str, Prep] = {
    "": _nothing,
    "has_fills": _entry,
    "has_no_fills": _nothing,
    "has_stop_order": _stop,
    "has_open_qty": _nothing,  # drive_to leaves exposed positions holding quantity
    "is_flat": _flatten,
}
VIOLATE: dict[str, Prep] = {
    "has_fills": _nothing,
    "has_no_fills": _entry,
    "has_stop_order": _nothing,
    "has_open_qty": _flatten,
    "is_flat": _nothing,
}


def _log_rows(path: Path, uid: str) -> list[tuple[str, str | None, str]]:
    con = sqlite3.connect(path)
    try:
        return con.execute(
            "SELECT t.event, t.source, t.target FROM transition t JOIN position p ON p.id = t.position_id"
            " WHERE p.uid = ? ORDER BY t.id",
            (uid,),
        ).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize(("state", "event"), PAIRS, ids=[f"{s}-{e}" for s, e in PAIRS])
def test_state_event_pair_through_registry(tmp_path: Path, state: str, event: str) -> None:
    path = tmp_path / "reg.db"
    reg = open_registry(path)
    pos = drive_to(reg, state)
    if (state, event) in spec.TABLE:
        cond = spec_condition(state, event)
        if cond:
            VIOLATE[cond](reg, pos.uid)
            before = snapshot(path)
            with pytest.raises(GuardFailed, match=cond):
                reg.apply(pos.uid, Event(event), cause="guard should fail")
            assert snapshot(path) == before
            reg.close()
            return  # the satisfying case runs on a fresh position below
        SATISFY[cond](reg, pos.uid)
        n_before = len(_log_rows(path, pos.uid))
        clock_before = reg.clock.now()
        out = reg.apply(pos.uid, Event(event), cause="legal")
        target = spec.TABLE[(state, event)]
        assert out.state == target == reg.get(pos.uid).state
        assert (out.closed is not None) == (target in spec.TERMINAL_STATES)
        if out.closed is not None:
            assert out.closed == clock_before
        rows = _log_rows(path, pos.uid)
        assert len(rows) == n_before + 1 and rows[-1] == (event, state, target)
        verify_chains(path)
    else:
        before = snapshot(path)
        with pytest.raises(IllegalTransition) as exc:
            reg.apply(pos.uid, as_event(event), cause="illegal")
        assert not isinstance(exc.value, GuardFailed)
        assert f"in {state} cannot take {event}" in str(exc.value)
        assert snapshot(path) == before
    reg.close()


@pytest.mark.parametrize(
    ("state", "event"),
    [(s, e) for (s, e) in spec.TABLE if spec_condition(s, e)],
)
def test_guarded_edges_succeed_when_satisfied(tmp_path: Path, state: str, event: str) -> None:
    path = tmp_path / "reg.db"
    reg = open_registry(path)
    pos = drive_to(reg, state)
    SATISFY[spec_condition(state, event)](reg, pos.uid)
    assert reg.apply(pos.uid, Event(event), cause="legal").state == spec.TABLE[(state, event)]
    verify_chains(path)
    reg.close()


def test_unknown_position(tmp_path: Path) -> None:
    reg = open_registry(tmp_path / "reg.db")
    with pytest.raises(UnknownPosition, match="nope"):
        reg.apply("nope", Event.ENTRY_ACKNOWLEDGED, cause="x")
    reg.close()
