#!/usr/bin/env python3
"""A stand-in for `systemctl` where systemd is not PID 1 (containers, CI): it runs the INSTALLED unit file.

    fake_systemctl.py --unit-dir DIR --run-dir DIR {daemon-reload|enable|restart|stop|is-active} [--quiet] NAME

`restart` reads DIR/NAME.service as systemd would for the parts that decide whether the daemon starts:
`User=`, `WorkingDirectory=`, `Environment=`, `EnvironmentFile=` (a leading `-` makes it optional),
`ExecStart=`, `Type=notify` with `WatchdogSec=`. It stops the previous process (SIGTERM, then waits), starts the new
one detached with $NOTIFY_SOCKET pointing at a socket it listens on, and, like systemd with Type=notify, returns
0 only once the process sent READY=1 (1 if it exited first or TimeoutStartSec passed). It keeps listening in the
background for WATCHDOG=1 pings and records them in RUN/NAME.notify. What it does NOT do: the sandboxing
directives (ProtectSystem=, SystemCallFilter=, ...), which tests/deploy/test_unit.py checks with systemd-analyze.
The process's stdout and stderr go to RUN/NAME.log (truncated at each start, so the log is the current process's).
Standard library only: it runs with the host's python3.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def parse_unit(path: Path) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")) or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values.setdefault(key.strip(), []).append(value.strip())
    return values


def environment(unit: dict[str, list[str]]) -> dict[str, str]:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    for item in unit.get("Environment", []):
        for word in shlex.split(item):
            key, _, value = word.partition("=")
            env[key] = value
    for name in unit.get("EnvironmentFile", []):
        optional = name.startswith("-")
        path = Path(name.lstrip("-"))
        if not path.exists():
            if optional:
                continue
            raise SystemExit(f"fake_systemctl: EnvironmentFile {path} is missing")
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.lstrip().startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                env[key.strip()] = value.strip().strip('"')
    return env


def pid_of(run: Path, name: str) -> int | None:
    try:
        pid = int((run / f"{name}.pid").read_text())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    # A zombie (exited, not reaped: our detached children are reparented) counts as dead.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None
    return None if state == "Z" else pid


def stop(run: Path, name: str, timeout: float = 90.0) -> None:
    pid = pid_of(run, name)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_of(run, name) is not None:
        time.sleep(0.1)
    if pid_of(run, name) is not None:
        os.kill(pid, signal.SIGKILL)
    for listener in run.glob(f"{name}.listener.pid"):
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(listener.read_text()), signal.SIGTERM)


def start(unit_dir: Path, run: Path, name: str) -> int:
    unit = parse_unit(unit_dir / f"{name}.service")
    env = environment(unit)
    argv = shlex.split(unit["ExecStart"][-1])
    cwd = unit.get("WorkingDirectory", ["/"])[-1]
    user = unit.get("User", ["root"])[-1]
    notify = unit.get("Type", ["simple"])[-1] == "notify"
    sock_path = run / f"{name}.notify.sock"
    sock_path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    os.chmod(sock_path, 0o777)  # noqa: S103 - the service user must be able to send to it
    env["NOTIFY_SOCKET"] = str(sock_path)
    if "WatchdogSec" in unit:
        env["WATCHDOG_USEC"] = str(int(float(unit["WatchdogSec"][-1]) * 1_000_000))
    entry = pwd.getpwnam(user)
    log = (run / f"{name}.log").open("wb")
    os.chown(run / f"{name}.log", entry.pw_uid, entry.pw_gid)

    def demote() -> None:
        os.setgid(entry.pw_gid)
        os.initgroups(user, entry.pw_gid)
        os.setuid(entry.pw_uid)
        os.umask(0o077)

    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=demote if os.getuid() == 0 and entry.pw_uid != 0 else None,
    )
    (run / f"{name}.pid").write_text(str(proc.pid))
    record = run / f"{name}.notify"
    record.write_text("")
    timeout = float(unit.get("TimeoutStartSec", ["90"])[-1])
    sock.settimeout(0.2)
    deadline = time.monotonic() + timeout
    ready = not notify
    while not ready and time.monotonic() < deadline:
        if proc.poll() is not None:
            print(f"fake_systemctl: {name} exited with {proc.returncode} before READY=1", file=sys.stderr)
            return 1
        try:
            message = sock.recv(4096).decode()
        except TimeoutError:
            continue
        with record.open("a") as out:
            out.write(message.replace("\n", " ") + "\n")
        ready = "READY=1" in message.splitlines()
    if not ready:
        print(f"fake_systemctl: {name} sent no READY=1 within {timeout:g}s", file=sys.stderr)
        return 1
    # Keep receiving the watchdog pings in a detached child, as systemd would.
    listener = os.fork()
    if listener == 0:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)  # let the caller's (ssh's) pipes close
        sock.settimeout(None)
        while True:
            message = sock.recv(4096).decode()
            with record.open("a") as out:
                out.write(f"{time.time():.3f} " + message.replace("\n", " ") + "\n")
    (run / f"{name}.listener.pid").write_text(str(listener))
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="fake_systemctl")
    parser.add_argument("--unit-dir", type=Path, required=True)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("command")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("name", nargs="?", default="trading-bot")
    args = parser.parse_intermixed_args(argv)
    name = args.name.removesuffix(".service")
    args.run_dir.mkdir(parents=True, exist_ok=True)
    if args.command in ("daemon-reload", "enable"):
        return 0
    if args.command == "stop":
        stop(args.run_dir, name)
        return 0
    if args.command == "restart":
        stop(args.run_dir, name)
        return start(args.unit_dir, args.run_dir, name)
    if args.command == "is-active":
        active = pid_of(args.run_dir, name) is not None
        if not args.quiet:
            print("active" if active else "inactive")
        return 0 if active else 3
    print(f"fake_systemctl: unsupported command {args.command}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
