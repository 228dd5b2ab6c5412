"""Every structured log event, declared once: its name, level and fields.

A line is the event name first, then `key=value` fields (or one JSON object per line, see
`scheduler.logsetup`), so `grep EVENT` works and machines can parse it. `emit` refuses undeclared events and
fields, so the declaration here and the lines in the logs cannot drift apart.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from specs.reconciliation import JOINT_FIELDS

EVENT_LOGGER = "events"


class Ev(StrEnum):
    CYCLE_SUMMARY = "CYCLE_SUMMARY"
    DECISION_TRACE = "DECISION_TRACE"
    KILL_SWITCH_ACTIVATED = "KILL_SWITCH_ACTIVATED"
    KILL_SWITCH_RELEASED = "KILL_SWITCH_RELEASED"
    INVARIANT_VIOLATION = "INVARIANT_VIOLATION"
    ORDER_REJECTED_BY_VENUE = "ORDER_REJECTED_BY_VENUE"
    API_CIRCUIT_BREAKER_OPENED = "API circuit breaker OPENED"
    API_CIRCUIT_BREAKER_HALF_OPEN = "API circuit breaker HALF_OPEN"
    API_CIRCUIT_BREAKER_CLOSED = "API circuit breaker CLOSED"
    THRESHOLD_MISMATCH = "THRESHOLD_MISMATCH"
    REGISTRY_AUDIT_REPORT = "REGISTRY_AUDIT_REPORT"
    RECONCILIATION_REPORT = "RECONCILIATION_REPORT"
    RECOVERY_MERGE_COLLISION = "RECOVERY_MERGE_COLLISION"
    CORRUPTED_POSITION = "CORRUPTED_POSITION"
    QTY_SYNCED = "QTY_SYNCED"
    RECONCILIATION_ISSUE = "RECONCILIATION_ISSUE"
    ESCALATION = "ESCALATION"
    POSITION_TRANSITION = "POSITION_TRANSITION"
    ORDER_SUBMITTED = "ORDER_SUBMITTED"
    ORDER_OUTCOME_UNKNOWN = "ORDER_OUTCOME_UNKNOWN"
    PROTECTIVE_ORDER_PLACED = "PROTECTIVE_ORDER_PLACED"
    POSITION_UNPROTECTABLE = "POSITION_UNPROTECTABLE"
    STOP_PRICE_ADOPTED = "STOP_PRICE_ADOPTED"
    STOP_PRICE_TIGHTENED = "STOP_PRICE_TIGHTENED"
    STOP_CHURN_LIMIT = "STOP_CHURN_LIMIT"
    CREATED_IN_FUTURE = "CREATED_IN_FUTURE"
    ENTRY_SLIPPAGE = "ENTRY_SLIPPAGE"
    ORDERS_SETTLED = "ORDERS_SETTLED"
    UNOWNED_FILL = "UNOWNED_FILL"
    JOINT_INVARIANT = "JOINT_INVARIANT"
    STARTUP_STEP = "STARTUP_STEP"
    DAEMON_STARTED = "DAEMON_STARTED"
    DAEMON_STOPPED = "DAEMON_STOPPED"
    JOB_FAILED = "JOB_FAILED"
    TELEGRAM_UNAUTHORIZED = "TELEGRAM_UNAUTHORIZED"
    TRADE_CLOSED = "TRADE_CLOSED"
    SESSION_SUMMARY = "SESSION_SUMMARY"
    ENTRIES_PAUSED = "ENTRIES_PAUSED"
    ENTRIES_RESUMED = "ENTRIES_RESUMED"
    STREAM_CONNECTED = "STREAM_CONNECTED"
    STREAM_DISCONNECTED = "STREAM_DISCONNECTED"
    STREAM_LAG = "STREAM_LAG"


@dataclass(frozen=True)
class EventSpec:
    level: int
    fields: tuple[str, ...]
    meaning: str


EVENTS: dict[Ev, EventSpec] = {
    Ev.CYCLE_SUMMARY: EventSpec(
        logging.INFO,
        (
            "cycle",
            "duration_ms",
            "positions",
            "state",
            "orders_placed",
            "margin_util_pct",
            "entries_allowed",
            "stream",
            "stream_fills",
            "stream_gaps",
        ),
        "per-tick metrics (duration, positions, state; the order stream's state and counters when it runs)",
    ),
    Ev.DECISION_TRACE: EventSpec(
        logging.INFO, ("symbol", "verdict", "reason", "inputs"), "per-coin signal analysis result"
    ),
    Ev.KILL_SWITCH_ACTIVATED: EventSpec(logging.CRITICAL, ("reason", "detail"), "emergency halt triggered"),
    Ev.KILL_SWITCH_RELEASED: EventSpec(logging.WARNING, ("reason", "detail"), "a self-recovering halt ended"),
    Ev.INVARIANT_VIOLATION: EventSpec(logging.CRITICAL, ("invariant", "detail"), "safety limit breached"),
    Ev.ORDER_REJECTED_BY_VENUE: EventSpec(
        logging.WARNING, ("client_order_id", "symbol", "purpose", "reason"), "the exchange refused an order"
    ),
    Ev.API_CIRCUIT_BREAKER_OPENED: EventSpec(
        logging.ERROR, ("failures", "open_seconds", "last_error"), "circuit breaker tripped (API outage)"
    ),
    Ev.API_CIRCUIT_BREAKER_HALF_OPEN: EventSpec(logging.WARNING, ("probe",), "one probe call let through"),
    Ev.API_CIRCUIT_BREAKER_CLOSED: EventSpec(logging.WARNING, ("after_seconds",), "venue answered again"),
    Ev.THRESHOLD_MISMATCH: EventSpec(
        logging.CRITICAL,
        ("auction_max_margin_util", "max_margin_utilization_pct", "detail"),
        "config/safety limit inconsistency",
    ),
    Ev.REGISTRY_AUDIT_REPORT: EventSpec(
        logging.INFO, ("violations_total", "*"), "startup/runtime lifecycle integrity report"
    ),
    Ev.RECONCILIATION_REPORT: EventSpec(
        logging.INFO,
        (
            "orphaned",
            "phantom",
            "qty_mismatch",
            "qty_synced",
            "pending_adopted",
            "state_adjustments_logged",
            "state_adjustments_deduped",
            *JOINT_FIELDS,
            "synthetic_closes",
            "level",
            "complete",
        ),
        "reconciliation issue classes, the joint invariants (registry x venue) and convergence counters",
    ),
    Ev.JOINT_INVARIANT: EventSpec(
        logging.WARNING,
        ("invariant", "key", "detail"),
        "a joint invariant (registry x venue) broken past its grace: the order, fill or position it names",
    ),
    Ev.RECOVERY_MERGE_COLLISION: EventSpec(
        logging.WARNING, ("symbol_key", "survivor", "merged", "spellings"), "symbol-key collision resolved at startup"
    ),
    Ev.CORRUPTED_POSITION: EventSpec(logging.CRITICAL, ("position", "detail"), "a registry row failed its checks"),
    Ev.QTY_SYNCED: EventSpec(
        logging.INFO, ("position", "symbol", "fills", "registry_qty", "venue_qty"), "venue fills applied"
    ),
    Ev.RECONCILIATION_ISSUE: EventSpec(
        logging.WARNING, ("issue", "symbol", "position", "detail"), "one reconciliation issue (first occurrence)"
    ),
    Ev.ESCALATION: EventSpec(
        logging.CRITICAL, ("field", "rule", "detail", "action"), "a reconciliation threshold hit critical"
    ),
    Ev.POSITION_TRANSITION: EventSpec(
        logging.INFO, ("position", "symbol", "event", "source", "target", "cause"), "a lifecycle transition"
    ),
    Ev.ORDER_SUBMITTED: EventSpec(
        logging.INFO,
        ("client_order_id", "symbol", "purpose", "side", "size", "order_type", "outcome"),
        "an order was sent to the venue",
    ),
    Ev.ORDER_OUTCOME_UNKNOWN: EventSpec(
        logging.WARNING,
        ("client_order_id", "symbol", "purpose", "detail"),
        "order fate unknown after the evidence lookup (detail: the send failure, what was looked at); never re-sent",
    ),
    Ev.PROTECTIVE_ORDER_PLACED: EventSpec(
        logging.INFO, ("position", "symbol", "kind", "trigger_price", "size", "order_id"), "stop-loss or TP placed"
    ),
    Ev.STOP_PRICE_ADOPTED: EventSpec(
        logging.WARNING,
        ("position", "symbol", "order_id", "registry_stop", "venue_stop"),
        "the position's live stop triggers elsewhere than the registry said (moved by hand, or relinked): adopted",
    ),
    Ev.STOP_PRICE_TIGHTENED: EventSpec(
        logging.WARNING,
        ("position", "symbol", "entry_price", "registry_stop", "stop_price", "max_stop_distance_pct"),
        "the position's stop lay beyond risk.max_stop_distance_pct of its entry on the loss side (a hand's add moved"
        " the average entry, or a hand moved the stop): tightened to the limit in the registry; protect edits the"
        " live stop to it",
    ),
    Ev.POSITION_UNPROTECTABLE: EventSpec(
        logging.ERROR,
        ("position", "symbol", "remaining_qty", "min_size", "detail"),
        "no stop can be sent for an exposed position (below the venue's minimum size, or its level is already"
        " crossed by the mark or beyond the distance limit): not sent; the detail says why and what to do",
    ),
    Ev.STOP_CHURN_LIMIT: EventSpec(
        logging.CRITICAL,
        ("position", "symbol", "placements", "limit"),
        "a position needed more stop placements in the last hour than protect.max_replacements_per_hour: no more"
        " are sent until the hour has passed; find out why its stops keep vanishing",
    ),
    Ev.CREATED_IN_FUTURE: EventSpec(
        logging.WARNING,
        ("position", "created", "now"),
        "a position's created time is in the future (a reused registry, a clock stepped back): clamped to now",
    ),
    Ev.ENTRY_SLIPPAGE: EventSpec(
        logging.WARNING,
        ("position", "symbol", "decision_price", "fill_price", "slippage_r", "action"),
        "the entry filled away from the decision price: the stop is re-anchored to the fill, or the position exited",
    ),
    Ev.UNOWNED_FILL: EventSpec(
        logging.WARNING,
        ("position", "fill_id", "symbol", "side", "qty", "price", "reason"),
        "a fill of one of our orders, or on a symbol we hold, that no position can own (a stray of a closed"
        " position, the part of a hand's trade beyond the position it closed): recorded once and reported;"
        " reconciliation judges the exposure",
    ),
    Ev.ORDERS_SETTLED: EventSpec(
        logging.INFO,
        ("position", "state", "cancelled", "left"),
        "a terminal position's orders were cancelled on the venue and their rows settled",
    ),
    Ev.STARTUP_STEP: EventSpec(logging.INFO, ("step", "detail"), "one step of the startup sequence"),
    Ev.DAEMON_STARTED: EventSpec(logging.INFO, ("mode", "venue", "db", "symbols"), "jobs are running"),
    Ev.DAEMON_STOPPED: EventSpec(
        logging.INFO, ("reason", "cycles", "orders_placed", "open_positions", "uptime_s"), "final summary line"
    ),
    Ev.JOB_FAILED: EventSpec(logging.ERROR, ("job", "error"), "a scheduled job raised; the next run goes on"),
    Ev.TELEGRAM_UNAUTHORIZED: EventSpec(
        logging.WARNING,
        ("chat_id", "user_id", "messages"),
        "updates from outside the allowlists, ignored; at most one line per sender per minute (messages: how many)",
    ),
    Ev.TRADE_CLOSED: EventSpec(
        logging.INFO,
        ("uid", "symbol", "side", "qty", "entry", "exit", "net_pnl", "fees", "funding", "r", "reason", "held_s"),
        "a position closed: its money (lifecycle.accounting; fees and funding as recorded so far; docs/money.md)",
    ),
    Ev.SESSION_SUMMARY: EventSpec(
        logging.INFO,
        ("trades", "wins", "win_rate_pct", "net_pnl", "fees", "funding", "max_drawdown"),
        "the money of the trades closed during this run, logged after DAEMON_STOPPED and at a paper run's end",
    ),
    Ev.ENTRIES_PAUSED: EventSpec(
        logging.WARNING, ("by",), "an operator paused new entries (exits, protection, reconciliation go on)"
    ),
    Ev.ENTRIES_RESUMED: EventSpec(logging.WARNING, ("by",), "an operator resumed new entries"),
    Ev.STREAM_CONNECTED: EventSpec(
        logging.INFO, ("url", "snapshot_fills", "connects"), "the order stream is subscribed (fills snapshot received)"
    ),
    Ev.STREAM_DISCONNECTED: EventSpec(
        logging.WARNING,
        ("reason", "last_message_age_s", "retry_in_s"),
        "the order stream dropped; REST reconciliation runs now, trading goes on by REST polling",
    ),
    Ev.STREAM_LAG: EventSpec(
        logging.WARNING,
        ("state", "last_message_age_s", "lag_ms", "detail"),
        "the order stream is silent, late, or down past stream.degraded_after_s (state=degraded)",
    ),
}


class UndeclaredEventField(ValueError):
    pass


def render_value(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral_value() else format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    if text == "" or any(c.isspace() or c in '"=' for c in text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def render_kv(event: str, fields: dict[str, object]) -> str:
    return " ".join([event, *(f"{k}={render_value(v)}" for k, v in fields.items())])


class EventLine:
    """An event's log message: rendered the first time a handler asks for it, then kept. A backtest or a DST run
    hands its events to no handler that formats them (a NullHandler, or one that only counts `record.event`), so
    there the line is never built; a daemon's handlers format every record they take, once each."""

    __slots__ = ("_event", "_fields", "_text")

    def __init__(self, event: str, fields: dict[str, object]) -> None:
        self._event, self._fields, self._text = event, fields, ""

    def __str__(self) -> str:
        if not self._text:
            self._text = render_kv(self._event, self._fields)
        return self._text


def emit(event: Ev, logger: logging.Logger | None = None, /, **fields: object) -> EventLine:
    """Log one event line (`str()` of the result is the line). Undeclared fields are a programming error (caught by
    tests)."""
    spec = EVENTS[event]
    if "*" not in spec.fields:
        unknown = set(fields) - set(spec.fields)
        if unknown:
            raise UndeclaredEventField(f"{event}: undeclared fields {sorted(unknown)}")
    line = EventLine(event.value, fields)
    (logger or logging.getLogger(EVENT_LOGGER)).log(
        spec.level, line, extra={"event": event.value, "event_fields": fields}
    )
    return line
