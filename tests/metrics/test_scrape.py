"""The Prometheus endpoint, scraped over HTTP: from the real events, and from a real paper daemon."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from lifecycle.events import Ev, emit
from operations.stats import RunStats
from scheduler import metrics
from scheduler.app import JobRunner
from specs.reconciliation import JOINT_FIELDS

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana-dashboard.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return values


def test_events_become_metrics_on_a_loopback_only_endpoint() -> None:
    port = free_port()
    with metrics.serving(port) as active:
        assert active is not None
        emit(
            Ev.CYCLE_SUMMARY,
            cycle=1,
            duration_ms=250,
            positions=2,
            state="trading",
            orders_placed=1,
            margin_util_pct=Decimal("12.5"),
            entries_allowed=True,
        )
        emit(
            Ev.RECONCILIATION_REPORT,
            orphaned=1,
            phantom=0,
            qty_mismatch=0,
            qty_synced=3,
            pending_adopted=0,
            state_adjustments_logged=2,
            state_adjustments_deduped=5,
            **dict.fromkeys(JOINT_FIELDS, 4),
            level="warning",
            complete=True,
        )
        emit(Ev.JOINT_INVARIANT, invariant="stray_order", key="PF_XBTUSD", detail="x")
        emit(Ev.RECONCILIATION_ISSUE, issue="orphaned", symbol="PF_XBTUSD", position="-", detail="x")
        emit(Ev.API_CIRCUIT_BREAKER_OPENED, failures=5, open_seconds=60, last_error="timeout")
        emit(Ev.KILL_SWITCH_ACTIVATED, reason="margin_critical", detail="85 > 80")
        emit(Ev.INVARIANT_VIOLATION, invariant="stray_order", detail="order on a closed position")
        emit(Ev.REGISTRY_AUDIT_REPORT, violations_total=0)
        for outcome in ("accepted", "accepted", "rejected"):
            emit(
                Ev.ORDER_SUBMITTED,
                client_order_id="c",
                symbol="PF_XBTUSD",
                purpose="entry",
                side="buy",
                size=1,
                order_type="market",
                outcome=outcome,
            )
        emit(
            Ev.PROTECTIVE_ORDER_PLACED,
            position="p",
            symbol="PF_XBTUSD",
            kind="stop",
            trigger_price=1,
            size=1,
            order_id="o",
        )
        runner = JobRunner(None, RunStats())
        runner.timed_run("tick", lambda: None)

        def boom() -> None:
            raise RuntimeError("venue down")

        runner.timed_run("reconcile", boom)
        got = scrape(port)
        # bound to 127.0.0.1 only: another local address of this machine does not answer
        with socket.socket() as probe:
            probe.settimeout(1)
            outside = socket.gethostbyname(socket.gethostname())
            if outside != "127.0.0.1" and not outside.startswith("127."):
                assert probe.connect_ex((outside, port)) != 0
    assert got["trader_cycles_total"] == 1
    assert 0 <= got["trader_cycle_age_seconds"] < 5
    assert got["trader_last_cycle_duration_seconds"] == 0.25
    assert got["trader_open_positions"] == 2
    assert got["trader_margin_utilization_pct"] == 12.5
    assert got["trader_entries_allowed"] == 1
    assert got["trader_reconciliation_last{field=orphaned}"] == 1
    assert got["trader_reconciliation_last{field=qty_synced}"] == 3
    assert got["trader_reconciliation_last{field=state_adjustments_deduped}"] == 5
    assert got["trader_reconciliation_complete"] == 1
    assert JOINT_FIELDS and all(got[f"trader_reconciliation_last{{field={name}}}"] == 4 for name in JOINT_FIELDS)
    assert got["trader_joint_invariants_total{invariant=stray_order}"] == 1
    assert got["trader_reconciliation_issues_total{issue=orphaned}"] == 1
    assert got["trader_breaker_state"] == 2 and got["trader_breaker_opened_total"] == 1
    assert got["trader_kill_switch_active"] == 1
    assert got["trader_kill_switch_activations_total{reason=margin_critical}"] == 1
    assert got["trader_invariant_violations_total{invariant=stray_order}"] == 1
    assert got["trader_registry_audit_violations"] == 0
    assert got["trader_orders_total{outcome=accepted,purpose=entry}"] == 2
    assert got["trader_orders_total{outcome=rejected,purpose=entry}"] == 1
    assert got["trader_protective_orders_placed_total{kind=stop}"] == 1
    assert got["trader_job_runs_total{job=tick,result=ok}"] == 1
    assert got["trader_job_runs_total{job=reconcile,result=failed}"] == 1
    assert got["trader_job_duration_seconds_count{job=tick}"] == 1


def test_endpoint_is_off_by_default_and_a_taken_port_does_not_stop_trading() -> None:
    with metrics.serving(None) as active:
        assert active is None
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with metrics.serving(taken.getsockname()[1]) as active:
            assert active is None  # logged, and the daemon goes on


def test_a_paper_daemon_with_metrics_enabled_is_scraped_while_it_trades(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "TRADER_METRICS__ENABLED": "true", "TRADER_METRICS__PORT": str(port)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "scheduler", "--paper", "--duration", "20", "--db", str(tmp_path / "r.db")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    got: dict[str, float] = {}
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and got.get("trader_cycles_total", 0) < 2:
            time.sleep(0.5)
            try:
                got = scrape(port)
            except OSError:
                continue
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    assert got.get("trader_cycles_total", 0) >= 2, err[-2000:]
    assert got["trader_job_runs_total{job=tick,result=ok}"] >= 2
    assert got["trader_reconciliation_reports_total"] >= 1
    assert got["trader_breaker_state"] == 0 and got["trader_kill_switch_active"] == 0
    assert 0 <= got["trader_cycle_age_seconds"] < 30


def test_the_grafana_dashboard_reads_only_series_the_endpoint_exports() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exported = {
        name
        for family in metrics.Metrics().registry.collect()
        for name in {family.name, f"{family.name}_total", *(s.name for s in family.samples)}
    }
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    assert len(exprs) >= 10
    import re

    used = {m for expr in exprs for m in re.findall(r"\btrader_[a-z_]+", expr)}
    histogram_parts = {f"trader_job_duration_seconds_{s}" for s in ("bucket", "sum", "count")}
    assert used <= exported | histogram_parts, used - exported - histogram_parts
