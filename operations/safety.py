"""The daemon's safety state: the kill switch and the escalator (both pure) plus the log lines they cause.

Both only ever pause NEW ENTRIES. Nothing here can stop the protect job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from lifecycle.escalation import Escalator
from lifecycle.events import Ev, emit
from lifecycle.killswitch import INVARIANT_VIOLATION, KillSwitch, KillSwitchChange
from lifecycle.reconcile import ReconciliationReport
from operations.pause import EntryPause


def _announce(changes: list[KillSwitchChange]) -> None:
    for change in changes:
        emit(change.event, None, **change.fields())


class Safety:
    def __init__(
        self,
        killswitch: KillSwitch,
        escalator: Escalator,
        remember_restarts: Callable[[Mapping[str, Sequence[int]]], None] | None = None,
    ) -> None:
        self.killswitch = killswitch
        self.escalator = escalator
        self._remember_restarts = remember_restarts
        self._remembered = escalator.restart_firsts
        self.critical_fields: tuple[str, ...] = ()
        self._last_report_at: datetime | None = None

    entry_pause: EntryPause | None = None
    """The operator's /pause (operations.pause), set by the daemon; like the halts it stops new entries only."""

    @property
    def allows_new_entries(self) -> bool:
        paused = self.entry_pause is not None and self.entry_pause.paused
        return self.killswitch.allows_new_entries and not self.escalator.entries_paused and not paused

    @property
    def state(self) -> str:
        reasons = self.killswitch.active_reasons
        if reasons:
            state = "halted_" + reasons[0]
        elif self.escalator.entries_paused:
            state = "paused_escalation"
        else:
            state = "trading"
        return state if self.entry_pause is None else self.entry_pause.label(state)

    def observe_margin(self, utilization_pct: Decimal) -> None:
        _announce(self.killswitch.observe_margin(utilization_pct))

    def observe_auth(self, locked: bool, detail: str) -> None:
        """Feed the venue breaker's auth lock: KILL_SWITCH_ACTIVATED/RELEASED reason=auth_failed on a change."""
        _announce(self.killswitch.observe_auth(locked, detail))

    def invariant_violated(self, invariant: str, detail: str) -> None:
        emit(Ev.INVARIANT_VIOLATION, invariant=invariant, detail=detail)
        _announce(self.killswitch.trip_invariant(f"{invariant}: {detail}"))

    @property
    def invariant_halted(self) -> bool:
        return INVARIANT_VIOLATION in self.killswitch.active_reasons

    def observe_report(self, report: ReconciliationReport, at: datetime, joint: Mapping[str, int] | None = None) -> str:
        """Feed one reconciliation report (and the joint invariants' counters); emit ESCALATION for each new
        critical hit; return the level.

        The escalator's history must not go back in time, and the host clock can (an NTP step, a VM resumed): a
        report stamped before the previous one is taken at the previous one's time, so its cycle still counts
        (rules over consecutive cycles are unaffected; a window sees the step's samples bunched at one instant,
        which can only count more, never hide one). Refusing it would fail every reconcile job, with no report
        and no escalation, until the clock caught up again (DST seed 17, `daemon clock offset -3600s`)."""
        if self._last_report_at is not None and at < self._last_report_at:
            at = self._last_report_at
        self._last_report_at = at
        counters = {**report.counters(), **(joint or {})}
        evaluation = self.escalator.observe(counters, at, complete=report.complete)
        firsts = self.escalator.restart_firsts
        if self._remember_restarts is not None and firsts != self._remembered:
            self._remember_restarts(firsts)
            self._remembered = firsts
        for hit in evaluation.new_critical_hits:
            emit(Ev.ESCALATION, None, **hit.fields())
        self.critical_fields = tuple(sorted({h.field for h in evaluation.critical_hits}))
        return evaluation.level
