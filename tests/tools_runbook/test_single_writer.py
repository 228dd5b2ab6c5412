"""A runbook tool with --execute refuses while another process writes the registry (the daemon, in production),
names the holder, and changes nothing on the registry or the venue; once the holder is gone it works."""

from __future__ import annotations

from decimal import Decimal

from tests.lifecycle.test_writer_lock import holder
from tests.tools_runbook.conftest import Env, registry_dump, run_tool


def test_sync_positions_execute_refuses_while_the_daemon_holds_the_registry(env: Env) -> None:
    env.sim.open_position_direct("PF_XBTUSD", "long", Decimal("0.01"))  # an orphan it would import
    env.registry().close()  # the daemon's registry exists
    before_db, before_venue = registry_dump(env.db), env.venue_state()
    daemon = holder(env.db)
    try:
        refused = run_tool("sync_positions", *env.args("--confirm-wait-s", "0", "--execute"))
        assert refused.code == 1, refused.err
        assert f"pid {daemon.pid} (daemon)" in refused.err and "nothing was changed" in refused.err
        assert refused.err.count("\n") == 1  # one operator line
        assert registry_dump(env.db) == before_db and env.venue_state() == before_venue
        dry = run_tool("sync_positions", *env.args("--confirm-wait-s", "0"))  # reading needs no lock
        assert dry.code == 1 and "would import" in dry.out
    finally:
        daemon.kill()
        daemon.wait(10)
    done = run_tool("sync_positions", *env.args("--confirm-wait-s", "0", "--execute"))
    assert done.code == 0, done.err
    assert len(env.registry().active_positions()) == 1


def test_check_db_health_reset_anchors_execute_refuses_while_the_daemon_holds_the_registry(env: Env) -> None:
    env.registry().close()
    daemon = holder(env.db)
    try:
        refused = run_tool("check_db_health", "--db", str(env.db), "--reset-anchors", "--execute")
        assert refused.code == 1 and "in use by another process" in refused.err, refused.err
        dry = run_tool("check_db_health", "--db", str(env.db), "--reset-anchors")
        assert dry.code == 0, dry.err
    finally:
        daemon.kill()
        daemon.wait(10)
    assert run_tool("check_db_health", "--db", str(env.db), "--reset-anchors", "--execute").code == 0
