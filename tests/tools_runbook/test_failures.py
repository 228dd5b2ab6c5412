"""Failures an operator meets: one line naming the cause and the fix, the right exit code, no traceback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.tools_runbook.conftest import Env, run_tool, write_config


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # closed again: connections are refused


@pytest.mark.parametrize("tool", ["sync_positions", "check_tp_coverage", "backfill_historical_data"])
def test_unreachable_venue_is_one_line(env: Env, tmp_path: Path, tool: str) -> None:
    env.registry().close()
    config = write_config(tmp_path / "dead.toml", _dead_url(), db=env.db)
    run = run_tool(tool, "--config", str(config), "--db", str(env.db), *_extra(tool, tmp_path))
    assert run.code == 1
    (line,) = run.err.strip().splitlines()
    assert line.startswith("error: ") and "VenueUnavailable" in line


def _extra(tool: str, tmp_path: Path) -> tuple[str, ...]:
    return ("--candles", str(tmp_path / "c.db")) if tool == "backfill_historical_data" else ()


def test_missing_registry_is_a_usage_error(env: Env) -> None:
    run = run_tool("check_tp_coverage", *env.args("--offline"))
    assert run.code == 2 and "does not exist" in run.err and not env.db.exists()


def test_bad_config_is_a_usage_error_naming_the_key(env: Env) -> None:
    env.config.write_text(env.config.read_text().replace("enable_rate_limit = false", "enable_rate_limit = 3"))
    run = run_tool("sync_positions", *env.args("--execute"))
    assert run.code == 2 and "venue.enable_rate_limit" in run.err
