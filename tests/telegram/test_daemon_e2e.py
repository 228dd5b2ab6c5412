"""End to end: `python -m scheduler --config FILE` with a `[telegram]` section whose `api_base_url` points at the
fake Bot API on 127.0.0.1, trading the simulator through the real ccxt client.

What an operator relies on, proved through the daemon's own wiring (`scheduler.startup.telegram_alerts`):
startup sends nothing and leaks no secret; a real alert event reaches every allowed chat; /status and /positions
are answered from the running daemon, strangers are ignored and logged; a Bot API server that dies or answers
500 neither blocks the trading jobs nor the shutdown.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest

from simulator.engine import Simulator
from simulator.margin import initial_rate
from tests.daemon.harness import API_KEY, API_SECRET
from tests.daemon.procs import daemon, live_simulator, write_config
from tests.telegram.conftest import OPERATOR, OPERATOR_CHAT, OPS_GROUP, TOKEN
from tests.telegram.fake_bot_api import FakeBotAPI

XBT = "PF_XBTUSD"
STRANGER = 9999
SECRETS = {"bot token": TOKEN, "token's secret half": TOKEN.split(":")[1], "API key": API_KEY, "API secret": API_SECRET}
# The daemon's own bound on stopping the bot is 10 s (TelegramNotifier.stop) plus a 3 s alert flush.
STOP_BOUND_S = 15.0


class DaemonRun:
    """A running daemon whose merged stdout/stderr is collected line by line on a thread, so the test can wait
    for a line while the process goes on."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self._lines.append(line)

    @property
    def output(self) -> str:
        with self._lock:
            return "".join(self._lines)

    def count(self, text: str) -> int:
        with self._lock:
            return sum(text in line for line in self._lines)

    def wait_for(self, text: str, *, times: int = 1, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if self.count(text) >= times:
                return True
            time.sleep(0.05)
        return self.count(text) >= times

    def stop(self, timeout: float = 60.0) -> tuple[int, float]:
        """SIGTERM, as systemd stops it; returns the exit code and the seconds the daemon took to exit."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        took = time.monotonic() - started
        self._reader.join(10)
        return code, took

    def tail(self) -> str:
        return self.output[-3000:]


def _telegram_config(tmp_path: Path, venue_url: str, fake: FakeBotAPI) -> Path:
    """The daemon's test config plus `[telegram]` pointing at the fake (0600: the daemon refuses a readable token)."""
    config = write_config(tmp_path, venue_url)
    config.write_text(
        config.read_text() + "[telegram]\n"
        f'token = "{TOKEN}"\n'
        f"allowed_chat_ids = [{OPERATOR_CHAT}, {OPS_GROUP}]\n"
        f"allowed_user_ids = [{OPERATOR}]\n"
        f'api_base_url = "{fake.base_url}"\n'
    )
    config.chmod(0o600)
    return config


@contextmanager
def running_daemon(tmp_path: Path, venue_url: str, fake: FakeBotAPI) -> Iterator[DaemonRun]:
    """The daemon with `[telegram]` in its config file (0600, as the daemon demands of a file holding a token),
    up to the point where the bot polls; killed if the test fails before stopping it."""
    run = DaemonRun(daemon(_telegram_config(tmp_path, venue_url, fake), duration=120))
    try:
        assert run.wait_for("DAEMON_STARTED"), run.tail()
        assert "step=telegram" in run.output, run.tail()
        assert fake.wait_for(lambda: "getUpdates" in fake.methods(), timeout=20), "the bot never polled"
        yield run
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait(10)


def assert_no_secret_in(where: str, text: str) -> None:
    for name, secret in SECRETS.items():
        assert secret not in text, f"the {name} leaked into {where}"


def command(fake: FakeBotAPI, chat_id: int, user_id: int, text: str, *, replies_before: int) -> str:
    """Send `text` as `user_id` in `chat_id` and return the bot's reply there."""
    fake.push_command(chat_id, user_id, text)
    assert fake.wait_for(lambda: len(fake.sent_to(chat_id)) > replies_before, timeout=20), f"no reply to {text}"
    return fake.sent_to(chat_id)[replies_before]


def take_most_of_the_margin(sim: Simulator) -> None:
    """A position opened by hand on the venue worth ~90 % of the account's margin: the daemon imports it as an
    orphan, and its health job sees margin utilisation above the 80 % kill-switch threshold. Liquidation would
    need a ~1 % move; the simulator moves ~0.1 % in the seconds a test runs."""
    spec = sim.instruments[XBT]
    rate = initial_rate(spec, sim.leverage_preferences().get(XBT))
    notional = sim.account().margin_equity * Decimal("0.9") / rate
    size = (notional / (sim.quote(XBT).mark * spec.contract_size)).quantize(spec.size_increment)
    sim.open_position_direct(XBT, "long", size)


def test_startup_is_silent_and_commands_are_answered_for_the_allowlist_only(
    tmp_path: Path, fake_api: FakeBotAPI
) -> None:
    with live_simulator(seed=2) as (_sim, venue_url), running_daemon(tmp_path, venue_url, fake_api) as run:
        assert run.wait_for("CYCLE_SUMMARY"), run.tail()  # the daemon has read its venue state once
        assert fake_api.sent == []  # nothing is sent at startup: no greeting, no config echo

        # A stranger in a private chat, then a member of the allowed group who is not an allowed user.
        fake_api.push_command(STRANGER, STRANGER, "/status")
        fake_api.push_command(OPS_GROUP, STRANGER, "/positions", chat_type="supergroup")
        status = command(fake_api, OPERATOR_CHAT, OPERATOR, "/status", replies_before=0)
        positions = command(fake_api, OPERATOR_CHAT, OPERATOR, "/positions", replies_before=1)
        assert run.wait_for("TELEGRAM_UNAUTHORIZED", times=2, timeout=10), run.tail()
        code, _ = run.stop()

    assert code == 0, run.tail()
    assert "Mode: paper" in status and "Kill switch: off" in status, status
    assert "Equity: unknown" not in status, status  # the daemon's last margin snapshot, not a placeholder
    assert positions.startswith(("No open positions.", "Open positions (")), positions
    # Updates are served in order, so the strangers had been dealt with before the operator's reply went out.
    assert fake_api.sent_to(STRANGER) == [] and fake_api.sent_to(OPS_GROUP) == []
    output = run.output
    assert f"TELEGRAM_UNAUTHORIZED chat_id={STRANGER} user_id={STRANGER}" in output
    assert f"TELEGRAM_UNAUTHORIZED chat_id={OPS_GROUP} user_id={STRANGER}" in output
    assert "DAEMON_STOPPED reason=SIGTERM" in output
    assert_no_secret_in("the daemon's output", output)
    assert_no_secret_in("the requests the Bot API received", "\n".join(str(c) for c in fake_api.calls))
    # The token does reach the server, in the URL path: the fake answers 401 to any other token.
    assert "getMe" in fake_api.methods()


def test_a_kill_switch_in_the_daemon_reaches_every_allowed_chat_and_status_agrees(
    tmp_path: Path, fake_api: FakeBotAPI
) -> None:
    with live_simulator(seed=2) as (sim, venue_url), running_daemon(tmp_path, venue_url, fake_api) as run:
        take_most_of_the_margin(sim)
        assert run.wait_for("KILL_SWITCH_ACTIVATED"), run.tail()
        for chat in (OPERATOR_CHAT, OPS_GROUP):
            assert fake_api.wait_for(
                lambda chat=chat: any("KILL_SWITCH_ACTIVATED" in text for text in fake_api.sent_to(chat)), timeout=20
            ), f"no alert in chat {chat}: {fake_api.sent}"
        # The orphan is imported (and committed) before its issue line, on its second sighting.
        assert run.wait_for(f"RECONCILIATION_ISSUE issue=orphaned symbol={XBT}"), run.tail()
        before = len(fake_api.sent_to(OPERATOR_CHAT))
        status = command(fake_api, OPERATOR_CHAT, OPERATOR, "/status", replies_before=before)
        positions = command(fake_api, OPERATOR_CHAT, OPERATOR, "/positions", replies_before=before + 1)
        code, _ = run.stop()

    assert code == 0, run.tail()
    [alert] = [text for text in fake_api.sent_to(OPERATOR_CHAT) if "KILL_SWITCH_ACTIVATED" in text]
    assert alert.startswith("CRITICAL KILL_SWITCH_ACTIVATED") and "reason=margin_critical" in alert, alert
    assert "Kill switch: ACTIVE (margin_critical)" in status, status
    assert f"{XBT} LONG" in positions, positions
    assert_no_secret_in("the daemon's output", run.output)
    assert_no_secret_in("the messages sent", "\n".join(str(p) for p in fake_api.sent))


@pytest.mark.parametrize("outage", ["server_gone", "http_500"])
def test_a_dead_bot_api_neither_blocks_the_jobs_nor_the_shutdown(
    outage: str, tmp_path: Path, fake_api: FakeBotAPI
) -> None:
    with live_simulator(seed=2) as (sim, venue_url), running_daemon(tmp_path, venue_url, fake_api) as run:
        if outage == "server_gone":
            fake_api.stop()
        else:
            fake_api.break_down(500)
        # An alert raised while Telegram is down goes through the daemon's logging into the notifier's queue.
        take_most_of_the_margin(sim)
        assert run.wait_for("KILL_SWITCH_ACTIVATED"), run.tail()
        assert run.wait_for("TELEGRAM_ALERT_FAILED", timeout=30), run.tail()
        cycles = run.count("CYCLE_SUMMARY")
        assert run.wait_for("CYCLE_SUMMARY", times=cycles + 3, timeout=20), run.tail()  # jobs go on
        code, took = run.stop()

    output = run.output
    assert code == 0, run.tail()
    assert took < STOP_BOUND_S, f"the daemon took {took:.1f} s to stop with Telegram down"
    assert "DAEMON_STOPPED reason=SIGTERM" in output
    assert "TELEGRAM_POLL_ERROR" in output  # the bot noticed the outage and logged it, one line per error
    assert "Traceback" not in output and "JOB_FAILED" not in output, run.tail()
    assert_no_secret_in("the daemon's output", output)
    assert not any("KILL_SWITCH_ACTIVATED" in text for text in fake_api.sent_to(OPERATOR_CHAT))


def test_a_refused_startup_pages_every_allowed_chat_before_exiting(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    """Exit 3 (failed registry audit) is not restarted by systemd: the operator must hear about it, and the bot
    is not running yet at that point, so the daemon sends that one alert itself."""
    from tests.daemon.test_startup import corrupt_registry

    with live_simulator(seed=2) as (sim, venue_url):
        config = _telegram_config(tmp_path, venue_url, fake_api)
        corrupt_registry(tmp_path / "registry.db")
        proc = daemon(config, duration=5)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 3, out[-2000:]
        assert sim.order_log == []
    for chat in (OPERATOR_CHAT, OPS_GROUP):
        [alert] = fake_api.sent_to(chat)
        assert "NOT RUNNING (exit 3)" in alert and "remaining_qty_violations=1" in alert
    assert_no_secret_in("the daemon's output", out)
    assert_no_secret_in("the alerts", "\n".join(str(m) for m in fake_api.sent))


def test_a_refused_startup_exits_promptly_when_telegram_is_down(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    from tests.daemon.test_startup import corrupt_registry

    fake_api.break_down(500)
    with live_simulator(seed=2) as (_sim, venue_url):
        config = _telegram_config(tmp_path, venue_url, fake_api)
        corrupt_registry(tmp_path / "registry.db")
        started = time.monotonic()
        proc = daemon(config, duration=5)
        out, _ = proc.communicate(timeout=60)
        took = time.monotonic() - started
    assert proc.returncode == 3, out[-2000:]
    assert "TELEGRAM_ALERT_FAILED" in out and "Traceback" not in out
    assert took < 30, f"a dead Bot API delayed the exit by {took:.0f} s"
