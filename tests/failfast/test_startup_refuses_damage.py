"""The daemon refuses to start on a damaged registry (issue 9 §2): each case was reproduced starting and trading
before its fix. Real registry files, the real daemon process against the simulator."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from store.anchors import audit_and_anchor
from store.db import connect
from tests.daemon.procs import daemon, live_simulator, write_config
from tests.failfast.helpers import closed_history, edit_with_triggers_restored, flip_bytes_mid_file


def run_daemon(tmp_path: Path, seed: int) -> tuple[int, str, list[object]]:
    with live_simulator(seed=seed) as (sim, base_url):
        config = write_config(tmp_path, base_url)
        proc = daemon(config, duration=6)
        out, _ = proc.communicate(timeout=60)
        return proc.returncode, out, list(sim.order_log)


def refused(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("trading daemon:")]


def test_64_flipped_bytes_mid_file_refuse_to_start_with_exit_3(tmp_path: Path) -> None:
    path = closed_history(tmp_path / "registry.db")
    flip_bytes_mid_file(path)
    code, out, orders = run_daemon(tmp_path, seed=3)
    assert code == 3, out[-3000:]
    assert "DAEMON_STARTED" not in out and orders == []
    [line] = refused(out)
    assert "registry" in line and "restore it from backup" in line
    assert "Traceback" not in out


def test_same_length_edit_of_an_old_fill_before_the_anchor_refuses_to_start(tmp_path: Path) -> None:
    path = closed_history(tmp_path / "registry.db")
    db = connect(path)
    try:  # a clean daemon audit anchored the chains an hour ago: today's startup audit would be a tail audit
        assert audit_and_anchor(db, int(time.time() * 1000) - 3_600_000).ok
    finally:
        db.close()
    edit_with_triggers_restored(path, "UPDATE fill SET price = '900.25' WHERE id = 1 AND price = '100.25'")
    code, out, orders = run_daemon(tmp_path, seed=4)
    assert code == 3, out[-3000:]
    [report] = [line for line in out.splitlines() if "REGISTRY_AUDIT_REPORT" in line]
    assert "fill_chain_breaks=1" in report and "scope=full" in report
    assert "DAEMON_STARTED" not in out and orders == []
    assert len(refused(out)) == 1


def test_a_dropped_append_only_trigger_refuses_to_start(tmp_path: Path) -> None:
    path = closed_history(tmp_path / "registry.db", positions=20)
    with sqlite3.connect(path) as conn:
        conn.execute('DROP TRIGGER "fill_append_only_update"')
    code, out, orders = run_daemon(tmp_path, seed=5)
    assert code == 3, out[-3000:]
    [line] = refused(out)
    assert "fill_append_only_update" in line and "DAEMON_STARTED" not in out and orders == []


def test_a_dropped_unique_index_refuses_to_start(tmp_path: Path) -> None:
    path = closed_history(tmp_path / "registry.db", positions=20)
    with sqlite3.connect(path) as conn:
        (index,) = conn.execute(
            "SELECT il.name FROM pragma_index_list('fill') il JOIN pragma_index_info(il.name) ii"
            " WHERE ii.name = 'fill_id' AND il.[unique] = 1"
        ).fetchone()
        conn.execute(f'DROP INDEX "{index}"')
    code, out, _ = run_daemon(tmp_path, seed=6)
    assert code == 3, out[-3000:]
    [line] = refused(out)
    assert "unique index on fill(fill_id) is missing" in line
