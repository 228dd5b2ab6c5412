"""Where the daemon and the tools find their config, bad flags and settings, and the redacting excepthooks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scheduler.__main__ import _config as daemon_config
from scheduler.__main__ import parse_args
from scheduler.paper import PAPER_FAULTS, history_minutes, paper_config_text
from settings.config import ConfigError, load_settings
from settings.discovery import DiscoveryError, discover
from tests.deploy.conftest import ROOT


def write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def test_order_is_flag_then_env_then_system_then_local(tmp_path: Path) -> None:
    system = write(tmp_path / "etc" / "config.toml", "")
    local = write(tmp_path / "cwd" / "config.toml", "")
    env_file = write(tmp_path / "env.toml", "")
    flag = tmp_path / "flag.toml"
    places = {"system": system, "local": local}
    assert discover(flag, {"TRADER_CONFIG": str(env_file)}, **places).source == "--config"
    found = discover(None, {"TRADER_CONFIG": str(env_file)}, **places)
    assert (found.path, found.source) == (env_file, "TRADER_CONFIG")
    assert discover(None, {}, **places).path == system
    assert discover(None, {}, system=tmp_path / "absent.toml", local=local).path == local
    nothing = discover(None, {}, system=tmp_path / "a.toml", local=tmp_path / "b.toml")
    assert nothing.path is None and "embedded paper defaults" in nothing.describe()
    with pytest.raises(DiscoveryError, match="TRADER_CONFIG is set but empty"):
        discover(None, {"TRADER_CONFIG": " "}, **places)


def test_a_secrets_file_beside_the_config_is_used_unless_the_variable_names_one(tmp_path: Path) -> None:
    config = write(tmp_path / "config.toml", "")
    secrets = write(tmp_path / "secrets.toml", "", 0o600)
    found = discover(config, {})
    assert found.secrets == secrets and f"secrets from {secrets}" in found.describe()
    assert discover(config, {"TRADER_SECRETS_FILE": "/elsewhere.toml"}).secrets is None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a file another user cannot read")
def test_an_unreadable_default_config_is_found_and_named_not_skipped(tmp_path: Path) -> None:
    # The service user's view of a root-only file: stat fails with EACCES. Simulate with a dir without x for others.
    guarded = tmp_path / "etc"
    config = write(guarded / "config.toml", 'mode = "paper"\n')
    guarded.chmod(0o700)
    script = (
        "import os, pathlib\n"
        "from settings.discovery import discover\n"
        "os.setgid(65534); os.setuid(65534)\n"
        f"f = discover(None, {{}}, system=__import__('pathlib').Path({str(config)!r}))\n"
        "print(f.path)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.stdout.strip() == str(config), out.stderr


def run_daemon(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scheduler", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--paper", "--speed", "nan"], "--speed must be a number in 0.1..10000, not 'nan'"),
        (["--paper", "--speed", "0"], "--speed must be a number in 0.1..10000, not '0'"),
        (["--paper", "--speed", "-5"], "--speed must be a number in 0.1..10000, not '-5'"),
        (["--paper", "--speed", "inf"], "--speed must be a number"),
        (["--paper", "--duration", "-1"], "--duration must be a number"),
        (["--paper", "--recovery-wait", "nan"], "--recovery-wait must be a number"),
        (["--paper", "--seed", "-3"], "--seed must be a whole number"),
        (["--paper", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse_args(args)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_the_real_daemon_refuses_a_bad_speed_in_one_line() -> None:
    out = run_daemon("--paper", "--speed", "nan")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "--speed must be a number" in out.stderr


def test_without_a_config_the_daemon_refuses_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRADER_CONFIG", "")
    with pytest.raises(SystemExit) as empty:
        daemon_config(parse_args([]))
    assert empty.value.code == 2 and "TRADER_CONFIG is set but empty" in capsys.readouterr().err
    monkeypatch.delenv("TRADER_CONFIG")
    if Path("/etc/trading-bot/config.toml").exists():
        pytest.skip("this machine has /etc/trading-bot/config.toml")
    with pytest.raises(SystemExit) as none:
        daemon_config(parse_args([]))
    err = capsys.readouterr().err
    assert none.value.code == 2 and err.count("\n") == 1 and "no config file found" in err


def test_the_config_in_the_working_directory_is_used_and_named(tmp_path: Path) -> None:
    write(tmp_path / "config.toml", 'mode = "paper"\n[venue]\nbase_url = "http://127.0.0.1:1"\n')
    out = run_daemon(env={"TRADER_CONFIG": str(tmp_path / "config.toml")}, cwd=tmp_path)
    # no keys: refused at the venue step, after saying which file it read
    assert out.returncode == 2, out.stderr
    assert f"config: {tmp_path / 'config.toml'} (TRADER_CONFIG)" in out.stderr


@pytest.mark.parametrize("bad", ["reg\x00.db", "my registry.db", 'a"b.db', "reg\n.db", "$HOME/r.db"])
def test_db_path_characters_are_checked_before_anything_opens_it(bad: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None, {"TRADER_DB_PATH": bad})
    assert any(p.key == "db_path" and "may only contain" in p.message for p in err.value.problems)


def test_the_nul_byte_in_a_file_is_refused_by_check_with_exit_2(tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", 'db_path = "reg\\u0000.db"\n')
    out = subprocess.run(
        [sys.executable, "-m", "settings.config", "--check", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (
        out.returncode == 2 and out.stderr.count("\n") == 1 and "config error: db_path: may only contain" in out.stderr
    )


def test_paper_speed_and_faults_are_read_and_ranged(tmp_path: Path) -> None:
    assert load_settings(None, {}).paper.speed == 60
    with pytest.raises(ConfigError, match=r"paper\.speed"):
        load_settings(None, {"TRADER_PAPER__SPEED": "0"})
    assert PAPER_FAULTS and all(0 < p <= 1 for _, _, p, _ in PAPER_FAULTS)
    assert history_minutes("1m") == 720 and history_minutes("1h") == 6000 and history_minutes("1w") == 7 * 1440


def test_paper_config_for_the_tools_loads_as_a_venue_config(tmp_path: Path) -> None:
    settings = load_settings(None, {})
    text = paper_config_text(settings, "http://127.0.0.1:8123", "k" * 36, "c2VjcmV0" * 8, tmp_path / "r.db")
    path = write(tmp_path / "config.toml", text, 0o600)
    loaded = load_settings(path, {})
    assert loaded.venue.base_url == "http://127.0.0.1:8123" and loaded.db_path == (tmp_path / "r.db").resolve()
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_settings(path, {})


def test_a_crashing_thread_prints_one_redacted_line_not_a_traceback() -> None:
    script = (
        "import threading\n"
        "from scheduler.logsetup import install_excepthooks, register_secret\n"
        "register_secret('SECRETKEY-1234567890')\n"
        "install_excepthooks()\n"
        "def boom(): raise ValueError('bad SECRETKEY-1234567890')\n"
        "t = threading.Thread(target=boom, name='clock')\n"
        "t.start(); t.join()\n"
        "raise RuntimeError('main SECRETKEY-1234567890')\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in out.stderr and "SECRETKEY" not in out.stderr
    assert "uncaught ValueError in thread clock" in lines[0] and "uncaught RuntimeError in the main thread" in lines[1]


def test_a_paper_config_file_keeps_its_db_path_and_timeframe(tmp_path: Path) -> None:
    db = tmp_path / "state" / "mine.db"
    config = write(tmp_path / "paper.toml", f'mode = "paper"\ndb_path = "{db}"\ntimeframe = "5m"\n')
    out = subprocess.run(
        [sys.executable, "-m", "scheduler", "--config", str(config), "--duration", "2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert db.exists() and not (tmp_path / "var").exists()  # nothing written or archived under var/paper
    config_line = next(line for line in out.stderr.splitlines() if "STARTUP_STEP step=config " in line)
    assert "timeframe=5m" in config_line and f"db={db}" in config_line and "paper_speed=60" in config_line
    assert "var/paper/config.toml" not in out.stderr  # the tools' config is make run's alone


def test_make_run_writes_a_0600_config_that_the_tools_use_against_the_paper_daemon(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    daemon = subprocess.Popen(
        [sys.executable, "-m", "scheduler", "--paper", "--duration", "40"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    config = tmp_path / "var" / "paper" / "config.toml"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not config.exists():
            time.sleep(0.2)
        assert config.exists(), "var/paper/config.toml was not written"
        assert oct(config.stat().st_mode & 0o777) == "0o600"
        tool = subprocess.run(
            [sys.executable, "-m", "tools.check_tp_coverage", "--config", "var/paper/config.toml", "--json"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert tool.returncode in (0, 1), tool.stderr  # 1: coverage problems found, still a working tool run
        assert tool.stdout.strip().startswith("{")
    finally:
        daemon.terminate()
        _, err = daemon.communicate(timeout=60)
    assert "step=tools" in err and "var/paper/config.toml (0600)" in err
    assert not config.exists()  # removed when the daemon stops: its keys die with the session
