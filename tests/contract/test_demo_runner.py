"""`python -m tests.contract.demo`, the command an operator with demo keys runs, exercised against the simulator
(the same checks and probes, on 127.0.0.1), plus its refusals of bad input."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator

import pytest

from lifecycle.clock import FakeClock
from simulator.engine import SimConfig, Simulator
from simulator.server import SimulatorServer
from tests.contract.checks import READ_CHECKS
from tests.contract.demo import KEY_ENV, SECRET_ENV, main

KEY = "demo-key"
SECRET = base64.b64encode(os.urandom(64)).decode()


@pytest.fixture
def server() -> Iterator[SimulatorServer]:
    sim = Simulator(SimConfig(seed=4, history_minutes=30), clock=FakeClock())
    with SimulatorServer(sim, api_key=KEY, api_secret=SECRET) as srv:
        yield srv


def test_checks_and_probes_against_the_simulator(server: SimulatorServer) -> None:
    lines: list[str] = []
    env = {KEY_ENV: KEY, SECRET_ENV: SECRET}
    code = main(["--base-url", server.base_url, "--probe"], env, lines.append, rate_limit=False)
    text = "\n".join(lines)
    assert code == 0, text
    assert f"{len(READ_CHECKS)} of {len(READ_CHECKS)} endpoints match" in text
    assert "reuse of a cancelled order's cliOrdId (spec: globally unique): clientOrderIdAlreadyExist" in text
    assert "edit of a stop with size only (spec: stopPrice required): raised BadRequest" in text
    assert "edit of a stop with size and stopPrice: edited" in text
    assert "continuation_token moves on: True; continuationToken moves on: False" in text
    assert "OrderTriggerUpdated" in text
    assert SECRET not in text


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        ([], {}, f"set {KEY_ENV} and {SECRET_ENV}"),
        ([], {KEY_ENV: KEY, SECRET_ENV: "not base64!"}, "is not valid base64"),
        (["--base-url", "ftp://x"], {KEY_ENV: KEY, SECRET_ENV: SECRET}, "--base-url must be an https URL"),
        (["--base-url", "https://futures.kraken.com", "--probe"], {KEY_ENV: KEY, SECRET_ENV: SECRET}, "refused"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv: list[str], env: dict[str, str], expected: str) -> None:
    lines: list[str] = []
    assert main(argv, env, lines.append) == 2
    assert len(lines) == 1 and expected in lines[0]
    assert SECRET not in lines[0] and "not base64!" not in lines[0]
