"""The quiet-cycles rule: a routine report line is printed when it changes, or once every `log.quiet_cycles`.

Routine means nothing to act on: a `RECONCILIATION_REPORT` with every counter at zero, level ok and a complete
snapshot, or a `REGISTRY_AUDIT_REPORT` with no violation. Those made most of a paper run's output. Any other line,
and every warning or alert, passes untouched; so does the first routine line after a non-routine one.

It is a filter on the daemon's OUTPUT handler only (scheduler.logsetup): the records are still emitted, so the
metrics endpoint and the Telegram alert bridge, which are handlers of their own, still see every report.
"""

from __future__ import annotations

import logging

from lifecycle.events import Ev

DEFAULT_QUIET_CYCLES = 10
# Every other field of RECONCILIATION_REPORT is a count: routine when all of them are 0, whatever fields are added.
_NOT_COUNTS = frozenset({"level", "complete"})


def is_routine(event: str, fields: dict[str, object]) -> bool:
    if event == Ev.RECONCILIATION_REPORT.value:
        return (
            all(str(value) == "0" for name, value in fields.items() if name not in _NOT_COUNTS)
            and fields.get("level", "ok") == "ok"
            and fields.get("complete", True) is True
        )
    if event == Ev.REGISTRY_AUDIT_REPORT.value:
        return str(fields.get("violations_total")) == "0"
    return False


class QuietRoutine(logging.Filter):
    """Per event: print a routine line when its fields differ from the last one printed, else every `every`-th."""

    def __init__(self, every: int = DEFAULT_QUIET_CYCLES) -> None:
        super().__init__()
        if every < 1:
            raise ValueError(f"quiet_cycles must be at least 1, got {every}")
        self._every = every
        self._last: dict[str, dict[str, object]] = {}
        self._held: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        event = getattr(record, "event", None)
        fields = getattr(record, "event_fields", None)
        if not isinstance(event, str) or not isinstance(fields, dict):
            return True
        if event not in (Ev.RECONCILIATION_REPORT.value, Ev.REGISTRY_AUDIT_REPORT.value):
            return True
        if record.levelno > logging.INFO or not is_routine(event, fields):
            self._last.pop(event, None)  # the next routine line is news again
            self._held.pop(event, None)
            return True
        held = self._held.get(event, 0)
        if self._last.get(event) == fields and held + 1 < self._every:
            self._held[event] = held + 1
            return False
        self._last[event] = dict(fields)
        self._held[event] = 0
        return True
