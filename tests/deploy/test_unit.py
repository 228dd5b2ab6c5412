"""The unit file, the host config and the scripts, checked as systemd and bash read them."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scheduler import startup
from settings.config import load_settings
from tests.deploy.conftest import ROOT

UNIT = ROOT / "deploy" / "trading-bot.service"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
MAX_EXPOSURE = 2.5


def unit_values(text: str) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed (apt-get install -y systemd)")
def test_systemd_analyze_security_exposure_is_at_most_2_5(tmp_path: Path) -> None:
    unit = tmp_path / "trading-bot.service"
    shutil.copy(UNIT, unit)
    out = subprocess.run(
        [str(SYSTEMD_ANALYZE), "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"Overall exposure level for trading-bot\.service: (\d+\.\d)", out.stdout)
    assert found, out.stdout + out.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE, out.stdout


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed (apt-get install -y systemd)")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    # verify checks that ExecStart's binary exists: point it at this interpreter, keep everything else.
    python = shutil.which("python3") or "/usr/bin/python3"
    text = UNIT.read_text().replace("/opt/trading-bot/.venv/bin/python", python)
    unit = tmp_path / "trading-bot.service"
    unit.write_text(text)
    out = subprocess.run(
        [str(SYSTEMD_ANALYZE), "verify", "--man=false", str(unit)], capture_output=True, text=True, check=False
    )
    problems = [line for line in out.stderr.splitlines() if "trading-bot.service" in line]
    assert out.returncode == 0 and not problems, out.stderr


def test_unit_is_notify_with_watchdog_and_does_not_restart_refusals() -> None:
    values = unit_values(UNIT.read_text())
    assert values["Type"] == ["notify"] and values["NotifyAccess"] == ["main"]
    assert 30 <= int(values["WatchdogSec"][0]) <= 600
    prevent = set(values["RestartPreventExitStatus"][0].split())
    # bad config, a failed registry audit and the venue refusing the keys are never retried
    refusals = {startup.EXIT_CONFIG, startup.EXIT_AUDIT, startup.EXIT_AUTH}
    assert {str(code) for code in refusals} <= prevent
    assert values["Restart"] == ["on-failure"]
    assert values["User"] == ["trading-bot"] and values["StateDirectory"] == ["trading-bot"]
    assert values["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX"]
    assert values["CapabilityBoundingSet"] == [""] and values["MemoryDenyWriteExecute"] == ["true"]
    assert "@system-service" in values["SystemCallFilter"]
    # the optional env file must not be mandatory (a missing file made systemd refuse to start)
    assert all(v.startswith("-") for v in values.get("EnvironmentFile", []))


def test_host_config_puts_every_writable_file_under_the_state_directory() -> None:
    settings = load_settings(ROOT / "deploy" / "config.toml", {})
    assert settings.db_path.is_absolute()
    assert settings.db_path.parent == Path("/var/lib/trading-bot")
    key_file = getattr(settings, "registry_key_file", None)
    assert key_file is None or key_file.parent == settings.db_path.parent
    assert settings.venue.base_url == "https://demo-futures.kraken.com" and not settings.is_live_venue
    values = unit_values(UNIT.read_text())
    assert values["WorkingDirectory"] == ["/var/lib/trading-bot"]


@pytest.mark.parametrize("script", sorted((ROOT / "scripts").glob("*.sh")), ids=lambda p: p.name)
def test_scripts_parse_and_are_strict(script: Path) -> None:
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True, check=False).returncode == 0
    assert "set -euo pipefail" in script.read_text()
    assert "git add -A" not in script.read_text().replace("never runs `git add", "")


def test_gitignore_keeps_secrets_and_keys_out() -> None:
    for name in ("prod.secrets.toml", "secrets.toml", ".env", "registry.key", "deploy.pem"):
        out = subprocess.run(["git", "check-ignore", "-q", name], cwd=ROOT, check=False)
        assert out.returncode == 0, f"{name} is not ignored"


def test_deploy_refuses_the_removed_allow_dirty_flag() -> None:
    out = subprocess.run(
        ["bash", "scripts/deploy.sh", "--allow-dirty"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "DEPLOY_HOST": "nobody@127.0.0.1"},
    )
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "commit what you mean to deploy" in out.stderr


def test_lock_files_match_pyproject() -> None:
    for lock in ("requirements.lock", "requirements-dev.lock"):
        out = subprocess.run(
            ["python3", "scripts/lock_input.py", "--check", lock], cwd=ROOT, capture_output=True, text=True, check=False
        )
        assert out.returncode == 0, out.stderr
        text = (ROOT / lock).read_text()
        pins = [line for line in text.splitlines() if re.match(r"^[a-z0-9]", line)]
        assert pins and all("==" in line for line in pins)
        assert text.count("--hash=sha256:") >= len(pins)


SANDBOXED_DAEMON = """
import ctypes, mmap, runpy, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN (Linux >= 6.3)
    print("NO_MDWE"); sys.exit(0)
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    print("MDWE_NOT_ENFORCED"); sys.exit(1)
except OSError:
    pass
sys.argv = ["scheduler", *sys.argv[1:]]
runpy.run_module("scheduler", run_name="__main__")
"""


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is not installed")
def test_the_daemon_trades_with_no_capabilities_and_memory_deny_write_execute(tmp_path: Path) -> None:
    # What the unit's CapabilityBoundingSet=, NoNewPrivileges= and MemoryDenyWriteExecute= take away, applied to a
    # real paper session (ccxt signing, HTTP, SQLite, threads) with the kernel's own mechanisms.
    out = subprocess.run(
        [
            "setpriv", "--no-new-privs", "--bounding-set=-all", "--inh-caps=-all",
            sys.executable, "-c", SANDBOXED_DAEMON, "--paper", "--duration", "6", "--db", str(tmp_path / "r.db"),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    if "NO_MDWE" in out.stdout:
        pytest.skip("this kernel has no PR_SET_MDWE (Linux < 6.3)")
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert "DAEMON_STARTED" in out.stderr and "DAEMON_STOPPED" in out.stderr
