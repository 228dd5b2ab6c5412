"""The optional Prometheus endpoint (`[metrics] enabled = true`; off by default; bound to 127.0.0.1 only).

The values come from where they are already produced and declared: the structured events (`lifecycle.events`).
A logging handler on the events logger turns each event into metric updates, so the metrics cannot drift from
the log lines an operator greps, and no job carries metric code. The one direct hook is the job runner's timing
(`job_finished`), which no event carries. `deploy/grafana-dashboard.json` reads these series.

Series (all prefixed `trader_`):
  cycle_age_seconds, cycles_total, last_cycle_duration_seconds        the tick loop (CYCLE_SUMMARY)
  job_duration_seconds{job}, job_runs_total{job,result}               every scheduled job (the runner)
  breaker_state (0 closed, 1 half-open, 2 open), breaker_opened_total  the API circuit breaker
  kill_switch_active, kill_switch_activations_total{reason}, entries_allowed
  open_positions, margin_utilization_pct                              from CYCLE_SUMMARY
  reconciliation_last{field} (every counter, joint invariants included), reconciliation_complete,
  reconciliation_reports_total,
  reconciliation_issues_total{issue}, escalations_total{field}        RECONCILIATION_REPORT / _ISSUE, ESCALATION
  invariant_violations_total{invariant}, joint_invariants_total{invariant}, registry_audit_violations
  orders_total{purpose,outcome}, orders_rejected_total{purpose}, orders_outcome_unknown_total{purpose},
  protective_orders_placed_total{kind}
  stream_connected, stream_disconnects_total{reason}, stream_lag_total{state}   the order stream (docs/stream.md)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from lifecycle.events import EVENT_LOGGER, Ev

log = logging.getLogger(__name__)

BIND_ADDRESS = "127.0.0.1"
RECONCILIATION_FIELDS = (
    "orphaned",
    "phantom",
    "qty_mismatch",
    "qty_synced",
    "pending_adopted",
    "state_adjustments_logged",
    "state_adjustments_deduped",
)
BREAKER_STATES = {
    Ev.API_CIRCUIT_BREAKER_CLOSED.value: 0,
    Ev.API_CIRCUIT_BREAKER_HALF_OPEN.value: 1,
    Ev.API_CIRCUIT_BREAKER_OPENED.value: 2,
}


def _number(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None


def _label(value: object) -> str:
    # Label values come from our own enums and purposes; cap the length so a surprise cannot blow up a series.
    return str(value if value is not None else "-")[:64]


class Metrics:
    """The metric families on their own registry (one per daemon; tests build as many as they like)."""

    def __init__(self, clock: Any = time.time) -> None:
        self._clock = clock
        self._last_cycle: float | None = None
        self.registry = CollectorRegistry()
        r = self.registry
        self.cycle_age = Gauge(
            "trader_cycle_age_seconds", "Seconds since the last CYCLE_SUMMARY (-1 before the first)", registry=r
        )
        self.cycle_age.set_function(self._cycle_age)
        self.cycles = Counter("trader_cycles", "Tick cycles completed", registry=r)
        self.cycle_duration = Gauge("trader_last_cycle_duration_seconds", "Duration of the last tick", registry=r)
        self.job_duration = Histogram(
            "trader_job_duration_seconds",
            "Wall time of each scheduled job run",
            ["job"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=r,
        )
        self.job_runs = Counter("trader_job_runs", "Job runs by result (ok, failed)", ["job", "result"], registry=r)
        self.breaker_state = Gauge(
            "trader_breaker_state", "API circuit breaker: 0 closed, 1 half-open, 2 open", registry=r
        )
        self.breaker_opened = Counter("trader_breaker_opened", "Times the API circuit breaker opened", registry=r)
        self.kill_switch = Gauge("trader_kill_switch_active", "1 while the kill switch halts new entries", registry=r)
        self.kill_switch_activations = Counter(
            "trader_kill_switch_activations", "Kill switch activations", ["reason"], registry=r
        )
        self.entries_allowed = Gauge("trader_entries_allowed", "1 when new entries are allowed", registry=r)
        self.open_positions = Gauge("trader_open_positions", "Active (non-terminal) positions", registry=r)
        self.margin_util = Gauge("trader_margin_utilization_pct", "Margin utilisation, percent", registry=r)
        self.reconciliation_last = Gauge(
            "trader_reconciliation_last", "The last RECONCILIATION_REPORT's counters", ["field"], registry=r
        )
        self.reconciliation_complete = Gauge(
            "trader_reconciliation_complete", "1 when the last reconciliation saw a complete snapshot", registry=r
        )
        self.reconciliation_reports = Counter("trader_reconciliation_reports", "Reconciliations run", registry=r)
        self.reconciliation_issues = Counter(
            "trader_reconciliation_issues", "RECONCILIATION_ISSUE lines by issue class", ["issue"], registry=r
        )
        self.escalations = Counter("trader_escalations", "ESCALATION lines by field", ["field"], registry=r)
        self.invariant_violations = Counter(
            "trader_invariant_violations", "INVARIANT_VIOLATION lines by invariant", ["invariant"], registry=r
        )
        self.joint_invariants = Counter(
            "trader_joint_invariants",
            "JOINT_INVARIANT lines (registry x venue, past their grace) by invariant",
            ["invariant"],
            registry=r,
        )
        self.audit_violations = Gauge(
            "trader_registry_audit_violations", "violations_total of the last registry audit", registry=r
        )
        self.orders = Counter(
            "trader_orders", "Orders sent, by purpose and outcome", ["purpose", "outcome"], registry=r
        )
        self.orders_rejected = Counter("trader_orders_rejected", "Orders the venue refused", ["purpose"], registry=r)
        self.orders_unknown = Counter(
            "trader_orders_outcome_unknown", "Orders whose fate stayed unknown", ["purpose"], registry=r
        )
        self.protective_placed = Counter(
            "trader_protective_orders_placed", "Stop-loss / take-profit orders placed", ["kind"], registry=r
        )
        self.stream_connected = Gauge(
            "trader_stream_connected", "1 while the order stream is subscribed (STREAM_CONNECTED)", registry=r
        )
        self.stream_disconnects = Counter(
            "trader_stream_disconnects", "STREAM_DISCONNECTED lines by reason", ["reason"], registry=r
        )
        self.stream_lag = Counter("trader_stream_lag", "STREAM_LAG lines by state", ["state"], registry=r)
        self.breaker_state.set(0)
        self.kill_switch.set(0)
        self.entries_allowed.set(1)
        for name in RECONCILIATION_FIELDS:
            self.reconciliation_last.labels(field=name).set(0)

    def _cycle_age(self) -> float:
        return -1.0 if self._last_cycle is None else max(0.0, self._clock() - self._last_cycle)

    def job_finished(self, job: str, seconds: float, ok: bool) -> None:
        self.job_duration.labels(job=job).observe(seconds)
        self.job_runs.labels(job=job, result="ok" if ok else "failed").inc()

    def observe(self, event: str, fields: dict[str, object]) -> None:
        """Update the metrics from one event line's name and fields."""
        if event == Ev.CYCLE_SUMMARY:
            self._last_cycle = self._clock()
            self.cycles.inc()
            self._set(self.cycle_duration, fields.get("duration_ms"), scale=0.001)
            self._set(self.open_positions, fields.get("positions"))
            self._set(self.margin_util, fields.get("margin_util_pct"))
            allowed = fields.get("entries_allowed")
            if isinstance(allowed, bool):
                self.entries_allowed.set(int(allowed))
        elif event in BREAKER_STATES:
            self.breaker_state.set(BREAKER_STATES[event])
            if event == Ev.API_CIRCUIT_BREAKER_OPENED:
                self.breaker_opened.inc()
        elif event == Ev.KILL_SWITCH_ACTIVATED:
            self.kill_switch.set(1)
            self.kill_switch_activations.labels(reason=_label(fields.get("reason"))).inc()
        elif event == Ev.KILL_SWITCH_RELEASED:
            self.kill_switch.set(0)
        elif event == Ev.RECONCILIATION_REPORT:
            self.reconciliation_reports.inc()
            # every counter of the report, the joint-invariant ones included (stray orders, unbooked fills, ...)
            for name, value in fields.items():
                if name not in ("level", "complete") and _number(value) is not None:
                    self._set(self.reconciliation_last.labels(field=_label(name)), value)
            complete = fields.get("complete")
            if isinstance(complete, bool):
                self.reconciliation_complete.set(int(complete))
        elif event == Ev.RECONCILIATION_ISSUE:
            self.reconciliation_issues.labels(issue=_label(fields.get("issue"))).inc()
        elif event == Ev.ESCALATION:
            self.escalations.labels(field=_label(fields.get("field"))).inc()
        elif event == Ev.INVARIANT_VIOLATION:
            self.invariant_violations.labels(invariant=_label(fields.get("invariant"))).inc()
        elif event == Ev.JOINT_INVARIANT:
            self.joint_invariants.labels(invariant=_label(fields.get("invariant"))).inc()
        elif event == Ev.REGISTRY_AUDIT_REPORT:
            self._set(self.audit_violations, fields.get("violations_total"))
        elif event == Ev.ORDER_SUBMITTED:
            self.orders.labels(purpose=_label(fields.get("purpose")), outcome=_label(fields.get("outcome"))).inc()
        elif event == Ev.ORDER_REJECTED_BY_VENUE:
            self.orders_rejected.labels(purpose=_label(fields.get("purpose"))).inc()
        elif event == Ev.ORDER_OUTCOME_UNKNOWN:
            self.orders_unknown.labels(purpose=_label(fields.get("purpose"))).inc()
        elif event == Ev.PROTECTIVE_ORDER_PLACED:
            self.protective_placed.labels(kind=_label(fields.get("kind"))).inc()
        elif event == Ev.STREAM_CONNECTED:
            self.stream_connected.set(1)
        elif event == Ev.STREAM_DISCONNECTED:
            self.stream_connected.set(0)
            reason = str(fields.get("reason"))
            self.stream_disconnects.labels(reason=reason if reason in ("silent", "auth_refused") else "closed").inc()
        elif event == Ev.STREAM_LAG:
            self.stream_lag.labels(state=_label(fields.get("state"))).inc()

    @staticmethod
    def _set(gauge: Gauge, value: object, scale: float = 1.0) -> None:
        number = _number(value)
        if number is not None:
            gauge.set(number * scale)


class _EventHandler(logging.Handler):
    def __init__(self, metrics: Metrics) -> None:
        super().__init__(logging.DEBUG)
        self._metrics = metrics

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "event", None)
        fields = getattr(record, "event_fields", None)
        if isinstance(event, str) and isinstance(fields, dict):
            try:
                self._metrics.observe(event, fields)
            except Exception:  # a metric must never break the line being logged, nor the job logging it
                log.debug("metrics: could not record %s", event, exc_info=True)


# The daemon's metrics while the endpoint runs; the job runner reports job timings here (None: endpoint off).
_ACTIVE: Metrics | None = None
_ACTIVE_LOCK = threading.Lock()


def job_finished(job: str, seconds: float, ok: bool) -> None:
    """The job runner's hook: a no-op unless the endpoint runs."""
    active = _ACTIVE
    if active is not None:
        active.job_finished(job, seconds, ok)


@contextmanager
def serving(port: int | None, metrics: Metrics | None = None) -> Iterator[Metrics | None]:
    """Serve /metrics on 127.0.0.1:`port` while the block runs (`port=None`: the endpoint is off, nothing runs).
    A port that cannot be bound is logged and trading goes on: metrics are never a reason to stop."""
    global _ACTIVE
    if port is None:
        yield None
        return
    metrics = metrics or Metrics()
    try:
        server, thread = start_http_server(port, addr=BIND_ADDRESS, registry=metrics.registry)
    except OSError as exc:
        log.error(
            "metrics endpoint not started: cannot listen on %s:%d (%s); change metrics.port", BIND_ADDRESS, port, exc
        )
        yield None
        return
    handler = _EventHandler(metrics)
    events = logging.getLogger(EVENT_LOGGER)
    events.addHandler(handler)
    # Every event feeds a metric even with log.level = WARNING; the log handler keeps its own level.
    previous_level = events.level
    if events.getEffectiveLevel() > logging.INFO:
        events.setLevel(logging.INFO)
    with _ACTIVE_LOCK:
        _ACTIVE = metrics
    log.info("metrics endpoint on http://%s:%d/metrics", BIND_ADDRESS, port)
    try:
        yield metrics
    finally:
        with _ACTIVE_LOCK:
            _ACTIVE = None
        events.removeHandler(handler)
        events.setLevel(previous_level)
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
