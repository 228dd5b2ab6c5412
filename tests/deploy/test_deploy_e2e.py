"""The RUNBOOK's install, upgrade, rollback and key-backup procedures, run for real over SSH.

A real sshd on 127.0.0.1 (throwaway keys), a local bare repository as the remote, a temp directory as the droplet
(/opt, /etc, /var/lib moved under it with install.sh's TB_* variables), a real system user created by install.sh,
the venv built by pip from requirements.lock, and the real daemon trading the simulator. systemd is not PID 1 on
CI machines, so `systemctl` is tests/deploy/fake_systemctl.py: it starts the INSTALLED unit's ExecStart as its
User= with its Environment= and waits for READY=1 (Type=notify) like systemd; the unit's sandboxing is checked
separately by systemd-analyze (test_unit.py).

Slow (a venv from the lock, several daemon starts): `.ci/run` runs it with `-m slow tests/deploy`.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.conftest import ROOT, Simulator, Sshd, free_port

pytestmark = pytest.mark.slow

FAKE_SYSTEMCTL = ROOT / "tests" / "deploy" / "fake_systemctl.py"
HOST_PYTHON = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or "python3"


@dataclass(frozen=True)
class Droplet:
    root: Path
    prefix: Path
    etc: Path
    state: Path
    units: Path
    run: Path
    user: str
    remote: Path  # the bare repository both sides use
    workstation: Path

    @property
    def tb_env(self) -> str:
        return (
            f"TB_PREFIX={self.prefix} TB_ETC={self.etc} TB_STATE={self.state} TB_UNIT_DIR={self.units} "
            f"TB_USER={self.user} TB_PYTHON={HOST_PYTHON} TB_SYSTEMCTL='{self.ctl}'"
        )

    @property
    def ctl(self) -> str:
        return f"{HOST_PYTHON} {FAKE_SYSTEMCTL} --unit-dir {self.units} --run-dir {self.run}"

    def log(self) -> str:
        path = self.run / "trading-bot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def head(self) -> str:
        return git(self.prefix, "rev-parse", "HEAD")

    def pid(self) -> int:
        return int((self.run / "trading-bot.pid").read_text())

    def active(self) -> bool:
        return subprocess.run([*self.ctl.split(), "is-active", "--quiet", "trading-bot"]).returncode == 0


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def commit(repo: Path, path: str, text: str, message: str) -> str:
    (repo / path).write_text(text)
    git(repo, "add", path)
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def deploy(
    d: Droplet, sshd: Sshd, *args: str, host: str = "root@127.0.0.1", ssh: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DEPLOY_HOST": host,
        "DEPLOY_SSH": ssh or sshd.ssh,
        "DEPLOY_DIR": str(d.prefix),
        "DEPLOY_ETC": str(d.etc),
        "DEPLOY_HEALTH_TIMEOUT": "60",
    }
    return subprocess.run(
        ["bash", "scripts/deploy.sh", *args], cwd=d.workstation, env=env, capture_output=True, text=True, timeout=900
    )


@pytest.fixture(scope="module")
def droplet(sshd: Sshd, simulator: Simulator) -> Iterator[Droplet]:
    # Outside pytest's 0700 temp tree: the service user must reach its own directories, as on a real host.
    root = Path(tempfile.mkdtemp(prefix="droplet-", dir="/tmp"))
    root.chmod(0o755)
    user = f"tbtest{os.getpid() % 100000}"
    ws = Path(tempfile.mkdtemp(prefix="workstation-", dir="/tmp"))
    d = Droplet(
        root=root,
        prefix=root / "opt" / "trading-bot",
        etc=root / "etc" / "trading-bot",
        state=root / "var" / "lib" / "trading-bot",
        units=root / "etc" / "systemd" / "system",
        run=root / "run",
        user=user,
        remote=root / "remote.git",
        workstation=ws / "trading-bot",
    )
    for parent in (d.prefix.parent, d.etc.parent, d.state.parent):
        parent.mkdir(parents=True, exist_ok=True)
        for p in (parent, *parent.parents):
            if p == Path("/") or p == Path("/tmp"):
                break
            p.chmod(0o755)
    # The workstation: a clone of this commit; the remote: a bare repository on the same machine.
    # (CI may hand us a detached or shallow clone: the workstation gets its own branch either way.)
    subprocess.run(["git", "clone", "-q", str(ROOT), str(d.workstation)], check=True)
    git(d.workstation, "config", "user.email", "deploy-test@example.invalid")
    git(d.workstation, "config", "user.name", "deploy test")
    git(d.workstation, "checkout", "-q", "-B", "release")
    subprocess.run(["git", "init", "-q", "--bare", str(d.remote)], check=True)
    git(d.remote, "config", "receive.shallowUpdate", "true")
    git(d.workstation, "remote", "set-url", "origin", str(d.remote))
    git(d.workstation, "push", "-q", "origin", "release")
    git(d.remote, "symbolic-ref", "HEAD", "refs/heads/release")
    git(d.workstation, "branch", "-q", "--set-upstream-to=origin/release")
    try:
        yield d
    finally:
        subprocess.run([*d.ctl.split(), "stop", "trading-bot"], timeout=120)
        subprocess.run(["userdel", user], capture_output=True)
        subprocess.run(["groupdel", user], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(ws, ignore_errors=True)


def configure(d: Droplet, sim: Simulator) -> None:
    """What the operator does after the first install: point the config at the venue, put the keys in."""
    config = d.etc / "config.toml"
    text = config.read_text().replace("https://demo-futures.kraken.com", sim.base_url)
    config.write_text(text)
    (d.etc / "secrets.toml").write_text(f'[venue]\napi_key = "{sim.api_key}"\napi_secret = "{sim.api_secret}"\n')
    (d.etc / "deploy.env").write_text(
        f"SERVICE_CTL='{d.ctl}'\nSERVICE_LOG='cat {d.run}/trading-bot.log'\nSVC_USER={d.user}\n"
    )


def test_install_upgrade_rollback_and_key_backup_over_ssh(droplet: Droplet, sshd: Sshd, simulator: Simulator) -> None:
    d = droplet
    first = git(d.workstation, "rev-parse", "HEAD")

    # --- bad input before anything: an SSH host that refuses, untracked files, a stale lock -------------------
    closed = sshd.ssh.replace(f"-p {sshd.port}", f"-p {free_port()}")
    refused = deploy(d, sshd, ssh=closed)
    assert refused.returncode == 1
    assert refused.stderr.strip().count("\n") == 0 and "cannot reach root@127.0.0.1 over SSH" in refused.stderr
    assert git(d.remote, "rev-parse", "HEAD") == first  # nothing pushed

    (d.workstation / "notes.txt").write_text("local notes\n")
    (d.workstation / ".env").write_text("TRADER_VENUE__API_KEY=secret\n")  # ignored: never pushed, never refused
    untracked = deploy(d, sshd)
    assert untracked.returncode == 1 and "untracked files (notes.txt)" in untracked.stderr
    assert git(d.remote, "rev-parse", "HEAD") == first
    (d.workstation / "notes.txt").unlink()
    dry = deploy(d, sshd, "--dry-run")
    assert dry.returncode == 0 and "dry run, nothing was executed" in dry.stdout, dry.stderr
    assert git(d.remote, "rev-parse", "HEAD") == first

    # --- RUNBOOK "Install": clone on the host, install.sh, keys, start ------------------------------------------
    clone = sshd.run(f"git clone -q {d.remote} {d.prefix}")
    assert clone.returncode == 0, clone.stderr
    # A lock that was not regenerated after a dependency changed: refused before anything is created.
    stale = sshd.run(
        f"cd {d.prefix} && sed -i 's/^dependencies = \\[/dependencies = [\\n    \"requests\",/' pyproject.toml "
        f"&& {d.tb_env} scripts/install.sh"
    )
    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert stale.stderr.count("\n") == 1 and "does not match" in stale.stderr and "make lock" in stale.stderr
    assert not d.etc.exists() and not (d.prefix / ".venv").exists()
    assert sshd.run(f"git -C {d.prefix} checkout -q pyproject.toml").returncode == 0

    installed = sshd.run(f"{d.tb_env} {d.prefix}/scripts/install.sh")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    entry = pwd.getpwnam(d.user)
    assert entry.pw_shell == "/usr/sbin/nologin"
    assert oct(d.etc.stat().st_mode & 0o777) == "0o750"
    config_stat = (d.etc / "config.toml").stat()
    assert (config_stat.st_uid, config_stat.st_gid, oct(config_stat.st_mode & 0o777)) == (0, entry.pw_gid, "0o640")
    secrets_stat = (d.etc / "secrets.toml").stat()
    assert (secrets_stat.st_uid, oct(secrets_stat.st_mode & 0o777)) == (entry.pw_uid, "0o600")
    assert (d.state.stat().st_uid, oct(d.state.stat().st_mode & 0o777)) == (entry.pw_uid, "0o700")
    assert (d.prefix / ".venv").is_symlink() and (d.prefix / ".venv" / ".complete").exists()
    unit = (d.units / "trading-bot.service").read_text()
    assert f"ExecStart={d.prefix}/.venv/bin/python -m scheduler --config {d.etc}/config.toml" in unit
    assert f'db_path = "{d.state}/position_registry.db"' in (d.etc / "config.toml").read_text()

    # A config the service user cannot read: one line naming the file and the fix.
    (d.etc / "config.toml").chmod(0o600)
    unreadable = sshd.run(f"{d.tb_env} {d.prefix}/scripts/install.sh")
    assert unreadable.returncode == 1
    assert f"config.toml is not readable by {d.user}; run: chgrp" in unreadable.stderr
    (d.etc / "config.toml").chmod(0o640)

    configure(d, simulator)
    started = sshd.run(f"{d.tb_env} {d.prefix}/scripts/install.sh --start")
    assert started.returncode == 0, started.stdout + started.stderr + d.log()
    assert "DAEMON_STARTED" in d.log() and d.active()
    assert "READY=1" in (d.run / "trading-bot.notify").read_text()
    # Bare tools on the host, as the service user, with no variables: the config and secrets are found.
    tool = sshd.run(
        f"cd {d.state} && runuser -u {d.user} -- env TRADER_CONFIG={d.etc}/config.toml "
        f"{d.prefix}/.venv/bin/python -m tools.check_tp_coverage"
    )
    assert tool.returncode == 0, tool.stdout + tool.stderr
    assert f"config: {d.etc}/config.toml (TRADER_CONFIG), secrets from {d.etc}/secrets.toml" in tool.stderr

    # --- RUNBOOK "Upgrade": a good commit deploys, gate passes ---------------------------------------------------
    old_pid = d.pid()
    second = commit(d.workstation, "deploy/NOTES", "second release\n", "second release")
    up = deploy(d, sshd)
    assert up.returncode == 0, up.stdout + up.stderr
    assert f"deployed {second}" in up.stdout and "stand-in for systemctl" in up.stdout
    assert d.head() == second and d.active() and d.pid() != old_pid
    assert "DAEMON_STARTED" in d.log()

    # --- a commit that does not even import: pre-flight refuses it, the running daemon is never touched ---------
    running_pid = d.pid()
    unimportable = commit(
        d.workstation,
        "tools/pre_flight_check.py",
        "import module_that_does_not_exist  # noqa\n" + (d.workstation / "tools" / "pre_flight_check.py").read_text(),
        "an unimportable release",
    )
    pre = deploy(d, sshd)
    assert pre.returncode == 1, pre.stdout + pre.stderr
    assert f"pre-flight failed for {unimportable}" in pre.stderr and "the service was not restarted" in pre.stderr
    assert d.head() == second and d.pid() == running_pid and d.active()
    git(d.workstation, "revert", "--no-edit", "HEAD")

    # --- the registry key file missing on the host: pre-flight refuses, nothing is deployed ---------------------
    key = d.state / "position_registry.db.key"
    key.rename(d.state / "key.away")
    nokey = deploy(d, sshd)
    assert nokey.returncode == 1, nokey.stdout + nokey.stderr
    assert "pre-flight: registry health failed" in nokey.stderr and "position_registry.db.key" in nokey.stderr
    assert d.head() == second and d.pid() == running_pid and d.active()
    (d.state / "key.away").rename(key)

    # --- a commit whose daemon cannot start: the gate fails and the previous commit runs again ------------------
    broken = commit(
        d.workstation,
        "scheduler/__main__.py",
        (d.workstation / "scheduler" / "__main__.py")
        .read_text()
        .replace(
            "    args = parse_args(argv)\n", "    args = parse_args(argv)\n    raise SystemExit(1)  # broken release\n"
        ),
        "a broken release",
    )
    bad = deploy(d, sshd)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert f"deploy of {broken} failed its health gate; rolled back" in bad.stderr
    assert d.head() == second and d.active() and "DAEMON_STARTED" in d.log()

    # --- RUNBOOK "Rollback": back to the release before the current one -----------------------------------------
    back = deploy(d, sshd, "--rollback")
    assert back.returncode == 0, back.stdout + back.stderr
    assert d.head() == first and d.active() and "DAEMON_STARTED" in d.log()
    # the broken commit never reached the host's history
    assert broken not in (d.prefix / ".deploy-history").read_text()

    # --- RUNBOOK "Key backup": the secrets (and the registry key file when configured) leave the host in a tar ---
    registry_key = d.state / "position_registry.db.key"
    assert registry_key.exists(), "the daemon creates the registry key at its first start"
    rel = [str(p.relative_to(d.root)) for p in (d.etc / "secrets.toml", d.etc / "config.toml", registry_key)]
    backup = subprocess.run(
        [*sshd.ssh.split(), "root@127.0.0.1", f"tar -C {d.root} -cf - {' '.join(rel)}"],
        capture_output=True,
        timeout=60,
    )
    assert backup.returncode == 0, backup.stderr
    archive = d.root / "keys-backup.tar"
    archive.write_bytes(backup.stdout)
    with tarfile.open(archive) as tar:
        secrets_member = tar.extractfile(rel[0])
        assert secrets_member is not None and simulator.api_key in secrets_member.read().decode()
        key_member = tar.extractfile(rel[2])
        assert key_member is not None and key_member.read() == registry_key.read_bytes()
