"""Issue #5 item 5: the tools never say READY or `in sync` beside a mismatch, a stray order or an escalation, and a
mistyped --db is a usage error (exit 2), not an empty registry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from operations.daemon_state import DaemonState, write_state
from tests.tools_runbook.conftest import Env, run_tool


def _failed(run_json: dict[str, object]) -> set[str]:
    checks = run_json["checks"]
    assert isinstance(checks, list)
    return {c["name"] for c in checks if not c["ok"]}


def _import_and_protect(env: Env) -> None:
    env.clock.set(datetime.now(UTC))
    env.sim.open_position_direct("PF_XBTUSD", "long", Decimal("0.01"))
    assert run_tool("sync_positions", *env.args("--confirm-wait-s", "0", "--execute")).code == 0


def test_pre_flight_fails_on_a_quantity_mismatch_and_a_stray_order(env: Env) -> None:
    _import_and_protect(env)
    ok = run_tool("pre_flight_check", *env.args("--max-skew-s", "60", "--json"))
    assert ok.code == 0, ok.out
    # The venue position grows by hand (a fill the daemon has not seen) and a reduce-only order of no position rests.
    env.sim.open_position_direct("PF_XBTUSD", "long", Decimal("0.02"))
    env.sim.place_order(
        symbol="PF_XBTUSD", side="sell", order_type="lmt", size=Decimal("0.001"), limit_price=Decimal(10**7),
        reduce_only=True,
    )  # fmt: skip
    bad = run_tool("pre_flight_check", *env.args("--max-skew-s", "60", "--json"))
    assert bad.code == 1
    assert {"registry_matches_venue", "no_stray_orders"} <= _failed(bad.json())


def test_pre_flight_is_not_ready_while_the_daemon_reports_an_escalation(env: Env) -> None:
    _import_and_protect(env)
    write_state(env.db, DaemonState("paused_escalation", ("qty_mismatch",), datetime.now(UTC), 4242))
    run = run_tool("pre_flight_check", *env.args("--max-skew-s", "60", "--json"))
    assert run.code == 1 and _failed(run.json()) == {"daemon_state"}
    detail = next(c["detail"] for c in run.json()["checks"] if c["name"] == "daemon_state")
    assert "qty_mismatch" in detail and "paused_escalation" in detail
    write_state(env.db, DaemonState("trading", (), datetime.now(UTC), 4242))
    assert run_tool("pre_flight_check", *env.args("--max-skew-s", "60", "--json")).code == 0


def test_sync_dry_run_never_says_in_sync_beside_a_mismatch(env: Env) -> None:
    _import_and_protect(env)
    env.sim.open_position_direct("PF_XBTUSD", "short", Decimal("0.05"))  # flips the venue position by hand
    run = run_tool("sync_positions", *env.args("--confirm-wait-s", "0"))
    assert run.code == 1
    assert "in sync: nothing" not in run.out and "NOT in sync" in run.out


def test_pre_flight_fails_beside_a_venue_position_no_registry_position_owns(env: Env) -> None:
    """An orphan (a venue position the registry does not hold, unprotected by us) is a difference between the
    registry and the venue. Before, pre-flight said "every registry quantity matches the venue" beside it."""
    env.clock.set(datetime.now(UTC))
    env.registry().db.close()
    env.sim.open_position_direct("PF_XBTUSD", "long", Decimal("0.01"))
    run = run_tool("pre_flight_check", *env.args("--max-skew-s", "60", "--json"))
    assert run.code == 1 and _failed(run.json()) == {"registry_matches_venue"}
    detail = next(c["detail"] for c in run.json()["checks"] if c["name"] == "registry_matches_venue")
    assert "PF_XBTUSD" in detail and "long 0.01" in detail and "no registry position" in detail


def test_pre_flight_fails_beside_a_registry_position_the_venue_does_not_hold(env: Env) -> None:
    """A phantom seen once: before, `registry_matches_venue` passed beside it (only the missing stop failed)."""
    env.clock.set(datetime.now(UTC))
    reg = env.registry()
    pos = reg.import_position(
        symbol="PF_XBTUSD", side="long", qty=Decimal("0.01"), entry_price=Decimal(60000), cause="test: gone since"
    )
    reg.db.close()
    run = run_tool("pre_flight_check", *env.args("--max-skew-s", "60", "--json"))
    assert run.code == 1 and "registry_matches_venue" in _failed(run.json())
    detail = next(c["detail"] for c in run.json()["checks"] if c["name"] == "registry_matches_venue")
    assert f"phantom {pos.uid} PF_XBTUSD" in detail


def test_the_tools_flag_a_hand_trade_through_zero_the_daemon_has_not_booked(env: Env) -> None:
    """The hand's fill (after the import, so ours to judge) closes our long and leaves a short nobody here opened. The
    daemon would book the closing part and adopt the short; until it has, the registry still holds the long. Neither
    tool may call that in sync (reconciliation reports it as a first orphan sighting, not a mismatch)."""
    _import_and_protect(env)
    env.clock.set(env.clock.now() + timedelta(seconds=5))
    env.sim.open_position_direct("PF_XBTUSD", "short", Decimal("0.05"))
    sync = run_tool("sync_positions", *env.args("--confirm-wait-s", "0"))
    assert sync.code == 1, sync.out
    assert "in sync: nothing" not in sync.out and "NOT in sync" in sync.out
    assert "orphan PF_XBTUSD short 0.04" in sync.out
    pre = run_tool("pre_flight_check", *env.args("--max-skew-s", "60", "--json"))
    assert pre.code == 1 and "registry_matches_venue" in _failed(pre.json())


def test_a_mistyped_db_is_a_usage_error_everywhere(env: Env) -> None:
    typo = env.tmp / "typo.db"
    for tool in ("sync_positions", "check_tp_coverage", "recover_sl_order_ids", "monitor_trade_execution"):
        run = run_tool(tool, "--config", str(env.config), "--db", str(typo))
        assert run.code == 2, (tool, run.out, run.err)
        assert "does not exist" in run.err
        assert not typo.exists()


def test_check_tp_coverage_reads_the_joint_invariant_a_stop_covering_half_is_a_gap(env: Env) -> None:
    _import_and_protect(env)
    assert run_tool("check_tp_coverage", *env.args()).code == 0
    [stop] = [o for o in env.sim.open_orders() if o.order_type == "stp"]
    status, _, _ = env.sim.edit_order(
        stop.order_id, size=stop.size / 2, stop_price=stop.stop_price, qty_mode="ABSOLUTE"
    )
    assert status == "edited"
    run = run_tool("check_tp_coverage", *env.args())
    assert run.code == 1 and "J2: stop covers" in run.out
