"""log.quiet_cycles: routine report lines are printed on change or every N; other lines, and other handlers, see
everything. Through the daemon's own configure_logging and emit."""

from __future__ import annotations

import io
import logging

import pytest

from lifecycle.events import Ev, emit
from scheduler.logsetup import configure_logging
from scheduler.quiet import QuietRoutine

ZERO = {
    "orphaned": 0, "phantom": 0, "qty_mismatch": 0, "qty_synced": 0, "pending_adopted": 0,
    "state_adjustments_logged": 0, "state_adjustments_deduped": 0, "level": "ok", "complete": True,
}  # fmt: skip


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.events.append(str(getattr(record, "event", "")))


def _lines(buffer: io.StringIO, event: str) -> list[str]:
    return [line for line in buffer.getvalue().splitlines() if f" {event} " in f" {line} "]


def test_routine_lines_print_on_change_or_every_n_and_other_handlers_see_all(log_state: io.StringIO) -> None:
    configure_logging("kv", "INFO", stream=log_state, quiet_cycles=10)
    seen = Collect()
    logging.getLogger("events").addHandler(seen)
    try:
        for _ in range(25):
            emit(Ev.RECONCILIATION_REPORT, **ZERO)
            emit(Ev.REGISTRY_AUDIT_REPORT, violations_total=0, scope="anchored")
        assert len(_lines(log_state, "RECONCILIATION_REPORT")) == 3  # the 1st, 11th and 21st
        assert len(_lines(log_state, "REGISTRY_AUDIT_REPORT")) == 3
        emit(Ev.RECONCILIATION_REPORT, **{**ZERO, "phantom": 1})  # news: printed at once
        emit(Ev.RECONCILIATION_REPORT, **ZERO)  # back to routine: printed, it changed
        emit(Ev.RECONCILIATION_REPORT, **ZERO)  # the same again: held
        emit(Ev.REGISTRY_AUDIT_REPORT, violations_total=0, scope="full")  # a field changed: printed
        emit(Ev.REGISTRY_AUDIT_REPORT, violations_total=2, scope="full")  # violations: always
        emit(Ev.REGISTRY_AUDIT_REPORT, violations_total=2, scope="full")
        rec = _lines(log_state, "RECONCILIATION_REPORT")
        assert len(rec) == 5 and "phantom=1" in rec[3] and "phantom=0" in rec[4]
        audit = _lines(log_state, "REGISTRY_AUDIT_REPORT")
        assert len(audit) == 6 and audit[-1].count("violations_total=2") == 1
        # the metrics endpoint and the alert bridge are handlers of their own: they get every report
        assert seen.events.count("RECONCILIATION_REPORT") == 28 and seen.events.count("REGISTRY_AUDIT_REPORT") == 28
        emit(Ev.CYCLE_SUMMARY, cycle=1)
        emit(Ev.CYCLE_SUMMARY, cycle=1)
        assert len(_lines(log_state, "CYCLE_SUMMARY")) == 2  # only the two report events are ever held
    finally:
        logging.getLogger("events").removeHandler(seen)


def test_one_prints_every_line_and_nonsense_is_refused(log_state: io.StringIO) -> None:
    configure_logging("json", "INFO", stream=log_state, quiet_cycles=1)
    for _ in range(4):
        emit(Ev.RECONCILIATION_REPORT, **ZERO)
    assert log_state.getvalue().count('"RECONCILIATION_REPORT"') == 4
    with pytest.raises(ValueError, match="at least 1"):
        QuietRoutine(0)
