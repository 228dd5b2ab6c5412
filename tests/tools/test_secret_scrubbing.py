"""The runbook tools never print a configured secret, whatever path the text takes to the operator.

The end-to-end tests run each tool as an operator would (`python -m tools.<name>` in a subprocess) with the
API key in the environment, the API secret and the Telegram token in a 0600 secrets file, against a server on
127.0.0.1 that answers every request with a Kraken error echoing those values in the raw and encoded forms a
library's exception text could carry. That text reaches the operator both as the `error:` line and inside the
readiness reports printed on stdout.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lifecycle.clock import FakeClock
from store.registry import Registry
from tools._cli import EXIT_PROBLEMS, _ScrubbingStream, register_secrets, run_tool, scrub

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "h2-live-looking-key-Q7w9Zx3Kp2"
# Bytes chosen so the base64 secret holds '+', '/' and '=': its URL-quoted form differs from the raw one.
API_SECRET = base64.b64encode(b"\xfb\xff\xfe" * 22 + b"h2").decode()
TOKEN = "7123456789:AAH2-fake_telegram_token_Xy9"
SECRETS = (API_KEY, API_SECRET, TOKEN)


def encodings(secret: str) -> dict[str, str]:
    """The forms a library's message could carry a secret in (the ones the tool redactor handles)."""
    raw = secret.encode()
    return {
        "raw": secret,
        "url_quoted": urllib.parse.quote(secret, safe=""),
        "quote_plus": urllib.parse.quote_plus(secret),
        "base64": base64.b64encode(raw).decode(),
        "base64_urlsafe": base64.urlsafe_b64encode(raw).decode(),
        "base64_unpadded": base64.b64encode(raw).decode().rstrip("="),
        "json_escaped": json.dumps(secret)[1:-1],
    }


def leaked_forms(text: str) -> list[str]:
    return [f"{name}:{form}" for s in SECRETS for name, form in encodings(s).items() if form in text]


# --- the redactor itself ----------------------------------------------------------------------------------


def test_secret_forms_differ_so_the_tests_mean_something() -> None:
    assert encodings(API_SECRET)["url_quoted"] != API_SECRET
    assert encodings(TOKEN)["url_quoted"] != TOKEN
    assert encodings(API_SECRET)["base64_unpadded"] != encodings(API_SECRET)["base64"]


@pytest.mark.parametrize("form", sorted(encodings(API_KEY)))
@pytest.mark.parametrize("secret", SECRETS, ids=["api_key", "api_secret", "token"])
def test_scrub_removes_every_encoding(secret: str, form: str) -> None:
    run_tool(lambda argv: 0, [])  # a run starts with a clean redactor
    register_secrets([secret])
    text = f"GET /x?k={encodings(secret)[form]}&n=1 failed"
    cleaned = scrub(text)
    assert encodings(secret)[form] not in cleaned and "***" in cleaned
    assert cleaned.startswith("GET /x?k=") and cleaned.endswith("&n=1 failed")


def test_scrub_leaves_text_without_secrets_alone() -> None:
    run_tool(lambda argv: 0, [], secrets=SECRETS)
    line = "[FAIL] venue_reachable: VenueUnavailable: HTTP 500 -> check venue.base_url"
    assert scrub(line) == line


def test_a_secret_split_across_writes_is_still_scrubbed() -> None:
    run_tool(lambda argv: 0, [], secrets=[API_SECRET])
    target = io.StringIO()
    stream = _ScrubbingStream(target)
    half = len(API_SECRET) // 2
    stream.write("detail: " + API_SECRET[:half])
    stream.flush()
    assert target.getvalue() == ""  # a partial line is held back, so half a secret is never out on its own
    stream.write(API_SECRET[half:] + " end\ntail " + API_SECRET)
    stream.drain()
    assert target.getvalue() == "detail: *** end\ntail ***"


def test_run_tool_scrubs_stdout_stderr_and_the_error_line_with_secrets_registered_late(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """As a tool does: the secrets become known only once its settings load, inside `main`."""

    def main(argv: Sequence[str]) -> int:
        register_secrets(SECRETS)
        print(f"report: key {API_KEY} token {TOKEN}")
        sys.stderr.write(f"warning from a library: {encodings(API_SECRET)['url_quoted']}\n")
        raise RuntimeError(f"header APIKey={API_KEY!r} body={json.dumps({'s': API_SECRET})}")

    assert run_tool(main, []) == EXIT_PROBLEMS
    out, err = capsys.readouterr()
    assert not leaked_forms(out + err), out + err
    assert out == "report: key *** token ***\n"
    assert err.splitlines()[-1].startswith("error: unexpected RuntimeError: header APIKey=")


# --- end to end: the tools as the operator runs them --------------------------------------------------------


class _EchoingVenue(BaseHTTPRequestHandler):
    """A Kraken-shaped error answer to every request, carrying the secrets as a careless upstream might."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        echoed = " ".join(
            [
                API_KEY,
                encodings(API_SECRET)["url_quoted"],
                encodings(API_KEY)["base64"],
                f"bot{encodings(TOKEN)['url_quoted']}",
            ]
        )
        body = json.dumps({"result": "error", "error": echoed, "serverTime": datetime.now(UTC).isoformat()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoingVenue)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass(frozen=True)
class Setup:
    config: Path
    secrets_file: Path
    db: Path
    tmp: Path

    def environ(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("TRADER_") and k != "I_UNDERSTAND_LIVE"}
        return {
            **base,
            "PYTHONPATH": str(ROOT),
            "TRADER_VENUE__API_KEY": API_KEY,
            "TRADER_SECRETS_FILE": str(self.secrets_file),
        }


@pytest.fixture
def setup(tmp_path: Path, echo_url: str) -> Setup:
    """Secrets from all three sources: the key from the environment, the rest from a 0600 secrets file."""
    db = tmp_path / "registry.db"
    Registry.open(db, FakeClock(datetime.now(UTC))).close()
    config = tmp_path / "trader.toml"
    config.write_text(
        f'mode = "paper"\ndb_path = "{db}"\nsymbols = ["PF_XBTUSD"]\ntimeframe = "1m"\n'
        f'[venue]\nbase_url = "{echo_url}"\nenable_rate_limit = false\n'
    )
    secrets_file = tmp_path / "secrets.toml"
    secrets_file.write_text(
        f'[venue]\napi_secret = "{API_SECRET}"\n'
        f'[telegram]\ntoken = "{TOKEN}"\nallowed_chat_ids = [1]\nallowed_user_ids = [1]\n'
    )
    secrets_file.chmod(0o600)
    return Setup(config, secrets_file, db, tmp_path)


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


def operator_runs(setup: Setup, tool: str, *args: str, code: str | None = None) -> Run:
    command = ["-c", code, *args] if code is not None else ["-m", f"tools.{tool}", *args]
    proc = subprocess.run(
        [sys.executable, *command], cwd=ROOT, env=setup.environ(), capture_output=True, text=True, timeout=60
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def assert_one_error_line(run: Run) -> str:
    assert "Traceback" not in run.err, run.err
    (line,) = run.err.strip().splitlines()
    assert line.startswith("error: "), line
    return line


ERROR_LINE_TOOLS = {
    "sync_positions": ("--confirm-wait-s", "0"),
    "recover_sl_order_ids": (),
    "check_tp_coverage": (),
    "backfill_historical_data": ("--hours", "1", "--candles", "candles.db"),
}


@pytest.mark.parametrize("tool", sorted(ERROR_LINE_TOOLS))
def test_venue_echo_never_reaches_the_error_line(setup: Setup, tool: str) -> None:
    extra = tuple(a if a != "candles.db" else str(setup.tmp / a) for a in ERROR_LINE_TOOLS[tool])
    run = operator_runs(setup, tool, "--config", str(setup.config), "--db", str(setup.db), *extra)
    assert not leaked_forms(run.out + run.err), run.out + run.err
    line = assert_one_error_line(run)
    assert run.code == EXIT_PROBLEMS and "***" in line, line  # the echo did arrive, scrubbed


@pytest.mark.parametrize("tool", ["check_live_readiness", "pre_flight_check"])
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_venue_echo_never_reaches_the_readiness_report(setup: Setup, tool: str, as_json: bool) -> None:
    """These tools print the venue's failure inside their report on stdout, not as an error line."""
    run = operator_runs(
        setup, tool, "--config", str(setup.config), "--db", str(setup.db), *(["--json"] if as_json else [])
    )
    assert not leaked_forms(run.out + run.err), run.out + run.err
    assert run.code == EXIT_PROBLEMS and run.err == ""
    if as_json:
        checks = {c["name"]: c for c in json.loads(run.out)["checks"]}
        assert not checks["venue_reachable"]["ok"] and "***" in checks["venue_reachable"]["detail"]
    else:
        assert "[FAIL] venue_reachable" in run.out and "***" in run.out


def test_an_unexpected_exception_after_settings_load_is_scrubbed(setup: Setup) -> None:
    """The `error: unexpected ...` branch, in a fresh process, with the secrets known only from the settings."""
    crashing_tool = (
        "import json, sys\n"
        "from tools._cli import make_parser, run_tool\n"
        "from tools._venue import add_common, prepare\n"
        "def main(argv):\n"
        "    env = prepare(add_common(make_parser('crash', 'crash')).parse_args(argv))\n"
        "    key, secret, token = env.settings.secret_values()\n"
        "    print('about to fail with', key)\n"
        "    raise ValueError({'APIKey': key, 'secret': secret, 'url': f'https://api.telegram.org/bot{token}/x'})\n"
        "raise SystemExit(run_tool(main))\n"
    )
    run = operator_runs(setup, "", "--config", str(setup.config), code=crashing_tool)
    assert not leaked_forms(run.out + run.err), run.out + run.err
    line = assert_one_error_line(run)
    assert run.code == EXIT_PROBLEMS and line.startswith("error: unexpected ValueError: ")
    assert run.out == "about to fail with ***\n"


def test_every_tool_loads_settings_through_the_registering_loader() -> None:
    """The scrubbing depends on `tools._venue.load`; a tool reading settings another way would print raw secrets."""
    offenders = [
        p.name
        for p in sorted((ROOT / "tools").glob("*.py"))
        if p.name != "_venue.py" and ("load_settings" in p.read_text() or "settings_from_mapping" in p.read_text())
    ]
    assert offenders == []
    without_run_tool = [
        p.name
        for p in sorted((ROOT / "tools").glob("*.py"))
        if "__main__" in p.read_text() and "raise SystemExit(run_tool(main))" not in p.read_text()
    ]
    assert without_run_tool == []
