"""check_live_readiness and pre_flight_check: each check passes on a sound setup and fails for its own cause."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from simulator.faults import FaultKind
from tests.tools_runbook.conftest import API_SECRET, Env, run_tool


def _checks(doc: Any) -> dict[str, bool]:
    return {c["name"]: c["ok"] for c in doc["checks"]}


def test_readiness_passes_against_a_sound_venue(env: Env) -> None:
    env.clock.set(datetime.now(UTC))
    run = run_tool("check_live_readiness", *env.args("--max-skew-s", "30", "--json"))
    assert run.code == 0, run.out
    checks = _checks(run.json())
    assert checks == {
        "config": True, "venue_reachable": True, "authentication": True, "clock_skew": True,
        "instrument:PF_XBTUSD": True, "instrument:PF_ETHUSD": True, "margin": True,
    }  # fmt: skip


def test_readiness_names_each_failure(env: Env) -> None:
    env.clock.set(datetime.now(UTC) - timedelta(hours=1))
    text = env.config.read_text().replace('"PF_XBTUSD", "PF_ETHUSD"', '"PF_XBTUSD", "PF_DOTUSD"')
    env.config.write_text(text)
    run = run_tool("check_live_readiness", *env.args("--json"))
    assert run.code == 1
    checks = _checks(run.json())
    assert checks["clock_skew"] is False and checks["instrument:PF_DOTUSD"] is False
    assert checks["instrument:PF_XBTUSD"] is True and checks["authentication"] is True


def test_readiness_fails_clock_skew_when_the_venue_sends_no_server_time(env: Env) -> None:
    """Without serverTime the accounts time would be our own clock, and the skew check would pass on nothing."""
    env.clock.set(datetime.now(UTC) - timedelta(hours=1))  # a skew it would otherwise have to notice
    env.sim.faults.add(FaultKind.NO_SERVER_TIME, "accounts", count=None)
    run = run_tool("check_live_readiness", *env.args("--json"))
    assert run.code == 1
    [skew] = [c for c in run.json()["checks"] if c["name"] == "clock_skew"]
    assert skew["ok"] is False and "no serverTime" in skew["detail"] and "cannot be measured" in skew["detail"]
    assert _checks(run.json())["authentication"] is True


def test_readiness_wrong_secret_fails_authentication_without_echoing_it(env: Env) -> None:
    wrong = base64.b64encode(b"another-secret-" * 5).decode()
    env.config.write_text(env.config.read_text().replace(API_SECRET, wrong))
    run = run_tool("check_live_readiness", *env.args())
    assert run.code == 1 and "[FAIL] authentication" in run.out and "NOT READY: 1 check(s) failed" in run.out
    assert wrong not in run.out + run.err


def test_readiness_bad_config_is_a_failed_check(env: Env) -> None:
    env.config.write_text(env.config.read_text().replace('mode = "paper"', 'mode = "sideways"'))
    run = run_tool("check_live_readiness", *env.args("--json"))
    assert run.code == 1 and _checks(run.json()) == {"config": False}
    assert "mode" in run.json()["checks"][0]["detail"]


def test_pre_flight_passes_then_fails_on_an_unprotected_position(env: Env) -> None:
    env.clock.set(datetime.now(UTC))
    env.sim.open_position_direct("PF_XBTUSD", "long", Decimal("0.01"))
    assert run_tool("sync_positions", *env.args("--confirm-wait-s", "0", "--execute")).code == 0
    ok = run_tool("pre_flight_check", *env.args("--max-skew-s", "60", "--json"))
    assert ok.code == 0, ok.out
    assert {"config_permissions", "thresholds", "kill_switch", "registry_health", "positions_protected"} <= set(
        _checks(ok.json())
    )
    for order in env.sim.open_orders():
        env.sim.cancel_order(order.order_id)
    bad = run_tool("pre_flight_check", *env.args("--max-skew-s", "60", "--json"))
    assert bad.code == 1
    # The registry's own record (positions_protected) and the joint invariant J2 (stops_protective) both see it.
    assert [n for n, passed in _checks(bad.json()).items() if not passed] == ["positions_protected", "stops_protective"]


def test_pre_flight_flags_permissions_thresholds_and_kill_switch(env: Env) -> None:
    env.clock.set(datetime.now(UTC))
    text = env.config.read_text().replace(
        'timeframe = "1m"\n', 'timeframe = "1m"\n[risk]\nauction_max_margin_util = 90\nkill_switch_hysteresis_pct = 0\n'
    )
    env.config.write_text(text)
    env.db.touch()  # an empty file is not a registry
    run = run_tool("pre_flight_check", *env.args("--max-skew-s", "60", "--json"))
    failed = {n for n, passed in _checks(run.json()).items() if not passed}
    assert run.code == 1 and failed == {"thresholds", "kill_switch", "registry_health"}
    env.config.chmod(0o644)
    perms = run_tool("pre_flight_check", *env.args("--json"))
    failed = {n for n, passed in _checks(perms.json()).items() if not passed}
    assert {"config", "config_permissions"} <= failed


def test_pre_flight_fails_on_a_position_past_its_stop_churn_bound(env: Env) -> None:
    """J5 read by the tool as the daemon reads it: a position whose stops were placed more often in the last hour
    than protect.max_replacements_per_hour gets no more stops from the daemon; that is not ready for live."""
    env.clock.set(datetime.now(UTC))
    env.sim.open_position_direct("PF_XBTUSD", "long", Decimal("0.01"))
    assert run_tool("sync_positions", *env.args("--confirm-wait-s", "0", "--execute")).code == 0
    reg = env.registry(timedelta(0))  # placements written now, inside the hour
    (pos,) = reg.active_positions()
    for _ in range(6):  # protect.max_replacements_per_hour's default; the import's own stop makes seven
        reg.record_order_intent(
            pos.uid, purpose="stop", side="sell", order_type="stop", qty=Decimal("0.01"), trigger_price=Decimal(1)
        )
    reg.close()
    run = run_tool("pre_flight_check", *env.args("--max-skew-s", "60", "--json"))
    assert run.code == 1
    assert [n for n, passed in _checks(run.json()).items() if not passed] == ["stops_not_churning"]
    [check] = [c for c in run.json()["checks"] if c["name"] == "stops_not_churning"]
    assert pos.uid in check["detail"]
