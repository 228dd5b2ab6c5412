"""Authentication (issue 9 §2): a refused key stops the daemon at startup with its own exit code (4); after
startup, repeated auth failures lock private calls (the breaker counts them as failures, never successes), halt
entries with KILL_SWITCH_ACTIVATED reason=auth_failed, and a successful private probe releases both.

Reproduced first: with a wrong secret the daemon started (`complete=false`), logged JOB_FAILED every cycle,
tripped nothing and kept calling private endpoints."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from exchange.breaker import AuthLocked, BreakerState, CircuitBreaker
from exchange.errors import AuthenticationFailed, CircuitOpen, OrderRejected, VenueUnavailable
from lifecycle.clock import FakeClock, SystemClock
from lifecycle.killswitch import AUTH_FAILED, KillSwitch
from simulator.engine import SimConfig, Simulator
from simulator.server import SimulatorServer
from tests.daemon.harness import API_KEY, API_SECRET
from tests.daemon.procs import daemon, write_config

PRIVATE = ("accounts", "openpositions", "openorders", "fills", "sendorder", "cancelorder", "editorder", "history")


def auth_error() -> AuthenticationFailed:
    return AuthenticationFailed("authenticationError")


def fail_private(breaker: CircuitBreaker) -> None:
    breaker.before_call(private=True)
    breaker.record_answer(auth_error())


def test_three_consecutive_auth_failures_lock_private_calls_but_not_public_ones() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(clock, auth_threshold=3, open_seconds=60)
    for _ in range(3):
        assert not breaker.auth_locked
        fail_private(breaker)
    assert breaker.auth_locked
    with pytest.raises(AuthLocked, match="NOT sent"):
        breaker.before_call(private=True)
    breaker.before_call(private=False)  # tickers and candles go on
    breaker.record_success()
    assert breaker.auth_locked  # a public success proves nothing about the key


def test_after_the_lock_one_private_probe_goes_through_and_its_success_unlocks() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(clock, auth_threshold=2, open_seconds=60)
    fail_private(breaker)
    fail_private(breaker)
    clock.advance(61)
    breaker.before_call(private=True)  # the probe
    with pytest.raises(AuthLocked):
        breaker.before_call(private=True)  # a second caller while the probe is in flight
    breaker.record_answer(auth_error())  # the probe failed: locked again for another 60 s
    assert breaker.auth_locked
    with pytest.raises(AuthLocked):
        breaker.before_call(private=True)
    clock.advance(61)
    breaker.before_call(private=True)
    breaker.record_success()
    assert not breaker.auth_locked
    breaker.before_call(private=True)
    breaker.record_success()


def test_an_auth_failure_counts_as_a_failure_never_as_a_success() -> None:
    """Before: an auth error was 'a coherent answer' and reset the failure count."""
    breaker = CircuitBreaker(FakeClock(), failure_threshold=5, auth_threshold=100)
    for _ in range(4):
        breaker.before_call()
        breaker.record(VenueUnavailable("503"))
    breaker.before_call()
    breaker.record(auth_error())
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpen):
        breaker.before_call()


def test_a_rejection_is_still_a_success() -> None:
    breaker = CircuitBreaker(FakeClock(), failure_threshold=2)
    breaker.before_call()
    breaker.record(VenueUnavailable("503"))
    breaker.before_call()
    breaker.record(OrderRejected("insufficient funds"))
    assert breaker.consecutive_failures == 0 and breaker.state is BreakerState.CLOSED


def test_the_kill_switch_follows_the_auth_lock() -> None:
    from decimal import Decimal

    ks = KillSwitch(Decimal(80), Decimal(5), 2)
    [on] = ks.observe_auth(True, "locked")
    assert (on.kind, on.reason) == ("activated", AUTH_FAILED) and not ks.allows_new_entries
    assert ks.observe_auth(True, "still") == []
    [off] = ks.observe_auth(False, "probe ok")
    assert (off.kind, off.reason) == ("released", AUTH_FAILED) and ks.allows_new_entries


@contextmanager
def served(seed: int) -> Iterator[tuple[Simulator, SimulatorServer]]:
    now = SystemClock().now()
    sim = Simulator(SimConfig(seed=seed, history_minutes=120), clock=FakeClock(now))
    stop = threading.Event()

    def pace() -> None:
        while not stop.wait(1.0):
            sim.advance(1.0)

    pacer = threading.Thread(target=pace, daemon=True)
    with SimulatorServer(sim, api_key=API_KEY, api_secret=API_SECRET) as server:
        pacer.start()
        try:
            yield sim, server
        finally:
            stop.set()
            pacer.join(timeout=2)


def private_calls(sim: Simulator, since: int = 0) -> int:
    return sum(1 for r in list(sim.request_log)[since:] if any(p in r.path for p in PRIVATE))


def test_a_refused_key_at_startup_exits_4_with_one_line(tmp_path: Path) -> None:
    with served(seed=21) as (sim, server):
        server.api_key = "revoked-key"
        proc = daemon(write_config(tmp_path, server.base_url), duration=8)
        out, _ = proc.communicate(timeout=60)
        calls = private_calls(sim)
    assert proc.returncode == 4, out[-3000:]
    [line] = [x for x in out.splitlines() if x.startswith("trading daemon:")]
    assert "startup refused at step auth" in line and "api_key" in line
    assert "DAEMON_STARTED" not in out and "JOB_FAILED" not in out and "Traceback" not in out
    assert calls == 1  # the one probe; nothing after it
    assert API_SECRET not in out


def test_a_key_revoked_while_running_halts_entries_and_stops_private_calls(tmp_path: Path) -> None:
    with served(seed=22) as (sim, server):
        proc = daemon(write_config(tmp_path, server.base_url), duration=14)
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:
            lines.append(line)
            if "DAEMON_STARTED" in line:
                break
        server.api_key = "revoked-key"
        for line in proc.stdout:
            lines.append(line)
            if "KILL_SWITCH_ACTIVATED reason=auth_failed" in line:
                break
        locked_at = len(sim.request_log)
        time.sleep(6)  # a dozen job cycles at 1 s intervals, well inside the 60 s lock
        after_lock = private_calls(sim, locked_at)
        server.api_key = API_KEY
        rest, _ = proc.communicate(timeout=60)
    out = "".join(lines) + rest
    assert "KILL_SWITCH_ACTIVATED reason=auth_failed" in out, out[-3000:]
    assert after_lock == 0, f"{after_lock} private calls while locked out"
    assert "Traceback" not in out
