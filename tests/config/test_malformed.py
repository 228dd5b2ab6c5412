"""Every malformed configuration: exit 2, the key named, no traceback, no secret echoed (real subprocess)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.config.corpus import CASES, KEY, SECRET, SENTINELS, Case

ROOT = Path(__file__).resolve().parents[2]


def _leak_forms(secret: str) -> set[str]:
    return {secret, urllib.parse.quote(secret, safe=""), base64.b64encode(secret.encode()).decode()}


def _prepare(case: Case, tmp_path: Path) -> tuple[list[str], dict[str, str]] | None:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("TRADER_")}
    env.update(case.env)
    path = tmp_path / "trader.toml"
    if case.toml is not None:
        path.write_text(case.toml, encoding="utf-8")
        path.chmod(0o600)
    if case.special == "missing":
        path = tmp_path / "nope.toml"
    elif case.special == "directory":
        path = tmp_path / "a_dir.toml"
        path.mkdir()
    elif case.special == "fifo":
        path = tmp_path / "pipe.toml"
        os.mkfifo(path)
    elif case.special == "binary":
        path.write_bytes(b'mode = "\xff\xfe"\n')
    elif case.special == "unreadable":
        path.chmod(0o000)
        if os.access(path, os.R_OK):
            return None  # running as root: a chmod 000 file is still readable (directory/FIFO/non-UTF-8 cover it)
    elif case.special == "world_readable":
        path.chmod(0o644)
    elif case.special.startswith("secrets_"):
        secrets = tmp_path / "secrets.toml"
        if case.special != "secrets_missing":
            bad = case.special == "secrets_bad_value"
            value = KEY if bad else SECRET  # KEY is not valid base64 (odd length)
            secrets.write_text(f'[venue]\napi_key = "{KEY}"\napi_secret = "{value}"\n', encoding="utf-8")
            secrets.chmod(0o640 if case.special == "secrets_group_readable" else 0o600)
        env["TRADER_SECRETS_FILE"] = str(secrets)
    return [sys.executable, "-m", "settings.config", "--check", str(path)], env


def _run(case: Case, tmp_path: Path) -> subprocess.CompletedProcess[str] | None:
    prepared = _prepare(case, tmp_path)
    if prepared is None:
        return None
    argv, env = prepared
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str] | None]:
    # One interpreter per case, several at a time: the corpus stays a real end-to-end check and still fast.
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {c.name: pool.submit(_run, c, tmp_path_factory.mktemp(c.name)) for c in CASES}
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_malformed_config_exits_2_naming_the_key(
    case: Case, results: dict[str, subprocess.CompletedProcess[str] | None]
) -> None:
    proc = results[case.name]
    if proc is None:
        pytest.skip("running as root: a chmod 000 file is still readable (directory/FIFO/non-UTF-8 cover it)")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert case.key in proc.stderr, output
    assert "Traceback" not in output
    for sentinel in SENTINELS:
        for form in _leak_forms(sentinel):
            assert form not in output, f"secret echoed in: {output}"
    for line in proc.stderr.splitlines():
        assert line.startswith(("config error: ", "THRESHOLD_MISMATCH ")), line


def test_corpus_is_large_and_distinct() -> None:
    assert len(CASES) >= 50
    assert len({c.name for c in CASES}) == len(CASES)


def test_threshold_mismatch_emits_the_event(results: dict[str, subprocess.CompletedProcess[str] | None]) -> None:
    proc = results["threshold_mismatch"]
    assert proc is not None and proc.returncode == 2
    assert "THRESHOLD_MISMATCH auction_max_margin_util=90 max_margin_utilization_pct=80" in proc.stderr


def test_valid_file_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text('symbols = ["PF_SOLUSD"]\n[risk]\natr_stop_multiple = 3\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("TRADER_")}
    proc = subprocess.run(
        [sys.executable, "-m", "settings.config", "--check", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "config OK" in proc.stdout and "symbols=PF_SOLUSD" in proc.stdout
