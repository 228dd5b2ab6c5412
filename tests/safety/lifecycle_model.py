"""A Hypothesis model of one position driven through any machine, with the safety properties checked after
every step. The ledger's and the registry's own refusals are modelled (they are what keeps a terminal position
from receiving entry fills and a PROTECTED one from losing its stop id without a transition); everything about
which transitions are allowed comes from the machine under test."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tests.safety.properties import TERMINAL, Position, Stepper, check_state, check_step


def lifecycle_model(step: Stepper, events: tuple[str, ...]) -> type[RuleBasedStateMachine]:
    class LifecycleModel(RuleBasedStateMachine):
        p = Position("PENDING_ENTRY")

        @initialize(imported=st.booleans(), units=st.integers(1, 3))
        def create(self, imported: bool, units: int) -> None:
            # open_intent creates an empty PENDING_ENTRY; import adopts a venue position at OPEN with its fill.
            self.p = Position("OPEN", entry_fills=1, remaining_units=units) if imported else Position("PENDING_ENTRY")
            check_state(self.p)

        @rule(units=st.integers(1, 3))
        def entry_fill(self, units: int) -> None:
            if self.p.state in TERMINAL:  # the registry refuses it (FillOnTerminalPosition)
                return
            self.p = replace(self.p, entry_fills=self.p.entry_fills + 1, remaining_units=self.p.remaining_units + units)

        @rule(units=st.integers(1, 3))
        def exit_fill(self, units: int) -> None:
            units = min(units, self.p.remaining_units)  # the ledger refuses more (OverfillError)
            self.p = replace(self.p, remaining_units=self.p.remaining_units - units)

        @rule(stop=st.booleans())
        def protection(self, stop: bool) -> None:
            if not stop and self.p.state == "PROTECTED":  # the registry refuses: protection_lost comes first
                return
            self.p = replace(self.p, has_stop=stop)

        def _send(self, event: str) -> None:
            target = step(self.p.state, event, self.p.facts())
            if target is None:
                return
            check_step(self.p, event, target)
            self.p = replace(self.p, state=target)

        @rule(event=st.sampled_from(events))
        def send(self, event: str) -> None:
            self._send(event)

        @rule(data=st.data())
        def send_accepted(self, data: st.DataObject) -> None:
            """Most random events are refused; this one picks among those the machine accepts right now."""
            accepted = [e for e in events if step(self.p.state, e, self.p.facts()) is not None]
            if accepted:
                self._send(data.draw(st.sampled_from(accepted)))

        @invariant()
        def safe(self) -> None:
            check_state(self.p)

    return LifecycleModel
