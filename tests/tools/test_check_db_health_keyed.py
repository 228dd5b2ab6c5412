"""check_db_health on a keyed registry (--key-file, default DB.key) and on schema drift (issue 9 §2)."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

from lifecycle.clock import FakeClock
from store.keys import default_key_path
from store.registry import Registry
from tests.audit.helpers import health, raw, rechain
from tests.lifecycle.helpers import drive_to


def keyed(path: Path) -> Path:
    registry = Registry.open(path, FakeClock(), prepare_key=True)
    for symbol in ("PF_XBTUSD", "PF_ETHUSD"):
        drive_to(registry, "CLOSED", symbol=symbol)
    registry.close()
    return path


def test_a_keyed_registry_is_healthy_with_the_key_beside_it(tmp_path: Path) -> None:
    path = keyed(tmp_path / "r.db")
    result = health(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"key:             {default_key_path(path)} (key id" in result.stdout
    assert default_key_path(path).read_text().strip() not in result.stdout + result.stderr


def test_a_rewrite_with_recomputed_hashes_is_a_problem(tmp_path: Path) -> None:
    path = keyed(tmp_path / "r.db")
    with raw(path) as c:
        c.execute("UPDATE fill SET price = '1' WHERE id = 1")
        rechain(c, "fill")
    result = health(path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "fill_chain_breaks" in result.stderr and "schema drift" not in result.stderr


def test_without_the_key_a_keyed_registry_is_a_usage_error_naming_where_it_was_expected(tmp_path: Path) -> None:
    path = keyed(tmp_path / "r.db")
    moved = tmp_path / "backup.key"
    default_key_path(path).rename(moved)
    result = health(path)
    assert result.returncode == 2, result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert str(default_key_path(path)) in line and "--key-file" in line and "Traceback" not in line
    assert health(path, "--key-file", str(moved)).returncode == 0


def test_a_dropped_append_only_trigger_or_unique_index_is_a_problem(tmp_path: Path) -> None:
    path = keyed(tmp_path / "r.db")
    with sqlite3.connect(path) as c:
        c.execute('DROP TRIGGER "transition_append_only_delete"')
    result = health(path)
    assert result.returncode == 1 and "append-only trigger transition_append_only_delete" in result.stderr
    path2 = keyed(tmp_path / "r2.db")
    with sqlite3.connect(path2) as c:
        (index,) = c.execute(
            "SELECT il.name FROM pragma_index_list('position') il JOIN pragma_index_info(il.name) ii"
            " WHERE ii.name = 'uid' AND il.[unique] = 1"
        ).fetchone()
        c.execute(f'DROP INDEX "{index}"')
    result = health(path2)
    assert result.returncode == 1 and "unique index on position(uid) is missing" in result.stderr


def test_the_key_file_can_come_from_the_daemon_config(tmp_path: Path) -> None:
    path = keyed(tmp_path / "r.db")
    elsewhere = tmp_path / "keys" / "registry.key"
    elsewhere.parent.mkdir()
    default_key_path(path).rename(elsewhere)
    config = tmp_path / "daemon.toml"
    config.write_text(f'db_path = "{path}"\nregistry_key_file = "{elsewhere}"\n')
    assert health(path).returncode == 2
    result = health(path, "--config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"key:             {elsewhere} (key id" in result.stdout


def test_the_stop_bound_comes_from_the_daemon_config(tmp_path: Path) -> None:
    path = keyed(tmp_path / "r.db")
    registry = Registry.open(path, FakeClock())
    view = registry.import_position(
        symbol="PF_SOLUSD", side="long", qty=Decimal(1), entry_price=Decimal(100), cause="test"
    )
    registry.close()
    with sqlite3.connect(path) as c:
        c.execute("UPDATE position SET stop_price = '70' WHERE uid = ?", (view.uid,))  # 30 % below the entry
    assert health(path).returncode == 1  # the default bound, 25 %
    config = tmp_path / "daemon.toml"
    config.write_text(f'db_path = "{path}"\n[risk]\nmax_stop_distance_pct = 35\n')
    result = health(path, "--config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
