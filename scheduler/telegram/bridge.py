"""Forwarding alert-worthy log events to Telegram.

Attach an `AlertLogHandler` to the `events` logger (or the root). It selects records by the `event` attribute
that `lifecycle.events.emit` sets, never by parsing text, so an ordinary log line that merely mentions
KILL_SWITCH_ACTIVATED is not an alert.
"""

from __future__ import annotations

import logging
from typing import Protocol

from lifecycle.events import Ev

ALERT_EVENTS: frozenset[str] = frozenset(
    {
        Ev.KILL_SWITCH_ACTIVATED.value,
        Ev.INVARIANT_VIOLATION.value,
        Ev.ESCALATION.value,
        Ev.API_CIRCUIT_BREAKER_OPENED.value,
        Ev.REGISTRY_AUDIT_REPORT.value,
        Ev.ORDER_REJECTED_BY_VENUE.value,
        Ev.POSITION_UNPROTECTABLE.value,  # no stop can be placed: only the operator can close it
        Ev.STOP_CHURN_LIMIT.value,  # stops keep vanishing: protection has stopped retrying for the hour
        Ev.CORRUPTED_POSITION.value,  # the runbook escalates on repeated ones: each names the row to look at
        Ev.STREAM_LAG.value,  # only state=degraded: the order stream down past stream.degraded_after_s
        Ev.UNOWNED_FILL.value,  # once per fill: exposure moved by a trade no position owns
    }
)


class AlertSink(Protocol):
    def alert(self, text: str) -> bool: ...


def _is_alert(event: str, fields: object) -> bool:
    if event not in ALERT_EVENTS:
        return False
    if event == Ev.REGISTRY_AUDIT_REPORT.value:
        # The audit reports on every run; only a report with violations is worth waking someone for.
        violations = fields.get("violations_total") if isinstance(fields, dict) else None
        try:
            return violations is not None and int(str(violations)) > 0
        except ValueError:
            return True  # an unreadable count is itself suspicious
    if event == Ev.STREAM_LAG.value:
        return isinstance(fields, dict) and fields.get("state") == "degraded"  # a silence or a late fill is not
    return True


class HeldAlerts:
    """An AlertSink that keeps alerts until a real one exists: startup runs before the bot can send, and a
    non-fatal startup alert (the breaker opening during the first reconciliation) must still reach the operator
    afterwards."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def alert(self, text: str) -> bool:
        self.texts.append(text)
        return True

    def forward(self, sink: AlertSink) -> None:
        for text in self.texts:
            sink.alert(text)
        self.texts.clear()


class AlertLogHandler(logging.Handler):
    """Level NOTSET by default: REGISTRY_AUDIT_REPORT is logged at INFO and must still get through."""

    def __init__(self, sink: AlertSink, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self._sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "event", None)
        if not isinstance(event, str) or not _is_alert(event, getattr(record, "event_fields", None)):
            return
        try:
            self._sink.alert(f"{record.levelname} {record.getMessage()}")
        except Exception:  # a failing alert path must never break the logging call in a trading job
            self.handleError(record)
