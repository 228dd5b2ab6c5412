"""INV-13 invalid_stop_prices (issue 9 §2): a stop no planner would send, in a stored position row, is reported by
the audit through the same rule the protection planner applies (`lifecycle.stops.stop_problem`).

Reproduced first: a hand-set `stop_price = 1` on a 71k long was HEALTHY and the daemon called it PROTECTED."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

from lifecycle.clock import FakeClock
from store.audit import AuditReport, run_audit
from store.db import connect
from store.registry import Registry
from tests.audit.helpers import health


def registry_with(path: Path, side: str, entry: str, stop: str, *, close: bool = False) -> str:
    registry = Registry.open(path, FakeClock())
    view = registry.import_position(
        symbol="PF_XBTUSD", side=side, qty=Decimal("0.5"), entry_price=Decimal(entry), cause="test"
    )
    if close:
        registry.close_external(view.uid, cause="test")
    registry.close()
    with sqlite3.connect(path) as c:  # position rows are mutable: no trigger stands in the way
        c.execute("UPDATE position SET stop_price = ? WHERE uid = ?", (stop, view.uid))
    return view.uid


def audit(path: Path, max_pct: str = "25") -> AuditReport:
    db = connect(path, readonly=True)
    try:
        return run_audit(db, max_stop_distance_pct=Decimal(max_pct))
    finally:
        db.close()


def test_a_hand_set_stop_of_1_on_a_71k_long_is_reported_and_check_db_health_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    uid = registry_with(path, "long", "71000", "1")
    report = audit(path)
    assert report.invalid_stop_prices == 1 and report.violations_total == 1, report.summary()
    [detail] = report.details["invalid_stop_prices"]
    assert detail.startswith(uid) and "beyond the 25% limit" in detail
    result = health(path)
    assert result.returncode == 1 and "invalid_stop_prices=1" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_a_planned_stop_is_clean_and_the_bound_is_the_configured_one(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    registry_with(path, "long", "71000", "65000")  # 8.5 %
    assert audit(path).ok
    path2 = tmp_path / "r2.db"
    registry_with(path2, "long", "71000", "52000")  # 26.8 %
    assert audit(path2).invalid_stop_prices == 1
    assert audit(path2, max_pct="30").ok


def test_a_short_is_bounded_the_same_way(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    registry_with(path, "short", "3000", "4000")  # 33 % above
    assert audit(path).invalid_stop_prices == 1
    path2 = tmp_path / "r2.db"
    registry_with(path2, "short", "3000", "3150")
    assert audit(path2).ok


def test_a_closed_positions_stop_is_history_not_a_violation(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    registry_with(path, "long", "71000", "1", close=True)
    assert audit(path).ok


def test_a_garbled_stop_counts_once_as_an_invalid_value(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    registry_with(path, "long", "71000", "7x000")
    report = audit(path)
    assert report.invalid_position_values == 1 and report.invalid_stop_prices == 0
