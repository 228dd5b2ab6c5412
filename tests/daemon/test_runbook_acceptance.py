"""Operator acceptance: every item the operations runbook names exists here, is documented in RUNBOOK.md for
this layout (`python -m tools.X`, not `src.tools.X`), and behaves as written.

The SEED_* tuples are the operations runbook's own items (its tools, log patterns and report fields), copied
here because that runbook lives outside the repository.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from lifecycle.events import EVENT_LOGGER, EVENTS, Ev, emit
from scheduler.startup import held_startup_alerts
from scheduler.telegram.bridge import AlertLogHandler, HeldAlerts
from specs.reconciliation import ISSUE_CLASSES, REPORT_FIELDS
from store.audit import AuditReport
from tests.daemon.harness import captured_events, world
from tests.tools_runbook.conftest import run_tool

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = (ROOT / "RUNBOOK.md").read_text()

SEED_TOOLS = (
    "sync_positions",
    "recover_sl_order_ids",
    "check_tp_coverage",
    "check_live_readiness",
    "pre_flight_check",
    "check_db_health",
    "monitor_trade_execution",
    "backfill_historical_data",
)
SEED_STATE_CHANGING_TOOLS = ("sync_positions", "recover_sl_order_ids", "backfill_historical_data")
SEED_LOG_PATTERNS = (
    "CYCLE_SUMMARY",
    "DECISION_TRACE",
    "KILL_SWITCH_ACTIVATED",
    "INVARIANT_VIOLATION",
    "ORDER_REJECTED_BY_VENUE",
    "API circuit breaker OPENED",
    "THRESHOLD_MISMATCH",
    "REGISTRY_AUDIT_REPORT",
    "RECONCILIATION_REPORT",
    "RECOVERY_MERGE_COLLISION",
)
SEED_AUDIT_FIELDS = (
    "violations_total",
    "duplicate_active_symbol_keys",
    "non_terminal_in_closed_history",
    "remaining_qty_violations",
)
SEED_RECONCILIATION_FIELDS = (
    "orphaned",
    "phantom",
    "qty_mismatch",
    "qty_synced",
    "pending_adopted",
    "state_adjustments_deduped",
    "state_adjustments_logged",
)
SEED_PLAYBOOK_EVENTS = ("CORRUPTED_POSITION", "QTY_SYNCED")
SEED_TELEGRAM_COMMANDS = ("/status", "/positions", "/help")


def _event_table() -> dict[str, list[str]]:
    """RUNBOOK.md's "Log events" table: event name -> documented fields (rows with one event name only)."""
    rows: dict[str, list[str]] = {}
    section = RUNBOOK.split("## Log events", 1)[1].split("### REGISTRY_AUDIT_REPORT", 1)[0]
    for match in re.finditer(r"^\| `([^`]+)` \| ([^|]+) \|", section, flags=re.MULTILINE):
        name, fields = match.group(1), match.group(2).strip()
        if name in {e.value for e in Ev}:
            rows[name] = [f.strip() for f in fields.split(",")]
    return rows


def _tool_help(tool: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", f"tools.{tool}", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, f"tools.{tool} --help failed: {proc.stderr}"
    return proc.stdout


@pytest.mark.parametrize("tool", SEED_TOOLS)
def test_each_runbook_tool_exists_documented_for_this_layout_and_accepts_its_documented_flags(tool: str) -> None:
    assert f"python -m tools.{tool}" in RUNBOOK
    help_text = _tool_help(tool)
    documented = set()
    for line in re.findall(rf"python -m tools\.{tool}\b[^`|\n]*", RUNBOOK):
        documented |= set(re.findall(r"--[a-z][a-z-]*", line))
    for flag in documented | {"--db", "--json"}:
        assert flag in help_text, f"RUNBOOK.md documents {flag} for tools.{tool}; its --help does not offer it"
    if tool in SEED_STATE_CHANGING_TOOLS:
        assert "--execute" in help_text and "dry-run" in help_text


def test_the_runbook_names_the_seed_layout_mapping() -> None:
    assert "`python -m src.tools.X` is `python -m tools.X`" in RUNBOOK


@pytest.mark.parametrize("pattern", SEED_LOG_PATTERNS + SEED_PLAYBOOK_EVENTS)
def test_each_runbook_log_pattern_is_a_declared_event_with_its_fields_documented(pattern: str) -> None:
    event = Ev(pattern)
    table = _event_table()
    assert pattern in table, f"RUNBOOK.md's Log events table has no row for {pattern}"
    declared = [f for f in EVENTS[event].fields if f != "*"]
    documented = table[pattern]
    if "*" in EVENTS[event].fields:
        assert documented[0] == declared[0]  # "violations_total, then every invariant field"
    else:
        assert documented == declared


def test_every_documented_event_row_matches_its_declaration() -> None:
    for name, documented in _event_table().items():
        spec = EVENTS[Ev(name)]
        if "*" not in spec.fields:
            assert documented == list(spec.fields), name


def test_audit_report_fields_are_the_runbooks_and_all_are_documented() -> None:
    fields = list(AuditReport().fields())
    assert tuple(fields[:4]) == SEED_AUDIT_FIELDS
    section = RUNBOOK.split("### REGISTRY_AUDIT_REPORT", 1)[1].split("#### Chain anchors", 1)[0]
    for field in fields:
        assert f"`{field}`" in section, f"{field} missing from RUNBOOK.md's REGISTRY_AUDIT_REPORT table"


def test_reconciliation_thresholds_are_the_runbooks() -> None:
    assert set(REPORT_FIELDS) == set(SEED_RECONCILIATION_FIELDS)
    rules = {c.field: (c.warning, c.critical, c.escalates) for c in ISSUE_CLASSES}
    # The runbook's table, row by row: warning, critical, and whether critical pauses entries.
    assert (rules["orphaned"][1].n, rules["orphaned"][1].minutes, rules["orphaned"][2]) == (3, 15, True)
    assert (rules["phantom"][1].n, rules["phantom"][1].minutes, rules["phantom"][2]) == (3, 15, True)
    assert (rules["qty_mismatch"][1].kind, rules["qty_mismatch"][1].n) == ("consecutive_cycles", 3)
    assert (rules["qty_synced"][0].n, rules["qty_synced"][1].minutes) == (3, 30)
    assert rules["pending_adopted"][1].kind == "repeated_restarts"
    assert (rules["state_adjustments_deduped"][1].kind, rules["state_adjustments_deduped"][1].minutes) == (
        "dominates",
        30,
    )
    for field in SEED_RECONCILIATION_FIELDS:
        assert f"`{field}`" in RUNBOOK


def test_runbook_documents_kill_switch_telegram_and_playbook_items() -> None:
    for text in (
        "KILL_SWITCH_ACTIVATED",
        "reason=margin_critical",
        "reason=invariant_violation",
        "KILL_SWITCH_RELEASED",
        "FORAI.md",
        "make smoke",
        "systemctl status trading-bot",
        "journalctl -u trading-bot",
        "## Position import",
        "## TP backfill",
        "### Escalation criteria",
        "websocket",
        *SEED_TELEGRAM_COMMANDS,
    ):
        assert text in RUNBOOK, text
    assert (ROOT / "FORAI.md").is_file()
    assert "trading-bot" in (ROOT / "deploy" / "trading-bot.service").read_text()


def test_a_runtime_audit_breach_names_the_corrupted_rows_once_and_alerts(tmp_path: Path) -> None:
    held = HeldAlerts()
    with world(tmp_path) as w, captured_events() as ev:
        handler = AlertLogHandler(held)
        logging.getLogger(EVENT_LOGGER).addHandler(handler)
        try:
            w.sim.open_position_direct("PF_ETHUSD", "long", Decimal("0.5"))
            w.reconcile()
            w.advance(5)
            w.reconcile()
            [pos] = w.registry.active_positions()
            with sqlite3.connect(tmp_path / "registry.db") as conn:
                conn.execute(
                    "UPDATE position SET remaining_qty_units = remaining_qty_units + 1 WHERE uid = ?", (pos.uid,)
                )
            w.health()
            w.health()
        finally:
            logging.getLogger(EVENT_LOGGER).removeHandler(handler)
        corrupted = ev.named("CORRUPTED_POSITION")
        assert [c["detail"] for c in corrupted] == ["remaining_qty_violations"]  # once, when the halt begins
        assert pos.uid in str(corrupted[0]["position"])
    assert any(t.startswith("CRITICAL INVARIANT_VIOLATION") and "remaining_qty_violations=1" in t for t in held.texts)


def test_alerts_logged_during_startup_are_held_for_the_bot() -> None:
    with held_startup_alerts() as held:
        emit(Ev.API_CIRCUIT_BREAKER_OPENED, failures=3, open_seconds=60, last_error="NetworkError")
        emit(Ev.STARTUP_STEP, step="merge", detail="collisions=0")  # not an alert
    emit(Ev.ESCALATION, field="orphaned", rule="3 in 15 min", detail="after startup: not held", action="pause")
    delivered = HeldAlerts()
    held.forward(delivered)
    assert len(delivered.texts) == 1 and "failures=3" in delivered.texts[0]
    assert held.texts == []


def test_a_triggered_stop_and_a_cancelled_sibling_are_settled_in_the_order_table(tmp_path: Path) -> None:
    with world(tmp_path, take_profit=True) as w:
        w.strategy.entries["PF_XBTUSD"] = "long"
        w.strategy.tp_pct = Decimal("0.05")
        w.advance(60)
        w.tick()
        w.strategy.entries.clear()
        [pos] = w.registry.active_positions()
        assert pos.sl_order_id is not None and pos.tp_order_id is not None
        w.sim.set_mark("PF_XBTUSD", Decimal(str(pos.stop_price)) * Decimal("0.98"))
        w.advance(2)
        w.exits()
        assert w.registry.active_positions() == []
        statuses = {o.purpose: o.status for o in w.registry.orders(pos.uid)}
        assert statuses == {"entry": "filled", "stop": "filled", "take_profit": "cancelled"}
        assert w.sim.open_orders() == []


def test_paper_daemon_writes_the_runbooks_events_and_the_tools_read_its_registry(tmp_path: Path) -> None:
    db = tmp_path / "registry.db"
    proc = subprocess.run(
        [sys.executable, "-m", "scheduler", "--paper", "--duration", "12", "--db", str(db), "--log-format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("{")]
    by_event: dict[str, list[dict[str, object]]] = {}
    for line in lines:
        by_event.setdefault(str(line.get("event")), []).append(line)
    steps = [str(s["step"]) for s in by_event["STARTUP_STEP"]]
    ours = ["database", "key", "structure", "merge", "audit", "venue", "auth", "recovery", "reconcile"]
    assert steps[0] == "config" and [x for x in steps if x in ours] == ours
    for name in ("CYCLE_SUMMARY", "RECONCILIATION_REPORT", "DECISION_TRACE"):
        assert by_event.get(name), f"no {name} line in a paper run"
        for fields in EVENTS[Ev(name)].fields:
            assert all(fields in line for line in by_event[name]), (name, fields)
    audit_fields = [*AuditReport().fields(), "scope"]
    assert all(all(f in line for f in audit_fields) for line in by_event["REGISTRY_AUDIT_REPORT"])
    assert all(str(line["violations_total"]) == "0" for line in by_event["REGISTRY_AUDIT_REPORT"])
    [stopped] = by_event["DAEMON_STOPPED"]
    assert stopped["reason"] == "time_limit"

    health = run_tool("check_db_health", "--db", str(db), "--json")
    assert health.code == 0, health.out + health.err
    report = health.json()
    assert report["ok"] is True and report["audit"]["violations_total"] == 0 and report["audit"]["scope"] == "full"
    coverage = run_tool("check_tp_coverage", "--db", str(db), "--offline", "--json")
    assert coverage.code == 0, coverage.out + coverage.err
    assert coverage.json()["gaps"] == 0
