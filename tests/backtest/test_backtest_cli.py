"""python -m tools.backtest: a run over a real candle file, and every bad input refused in one line (exit 2),
with nothing written."""

from __future__ import annotations

import json
import socket
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from tests.backtest.series import walk, write_store
from tools import backtest as tool
from tools._cli import run_tool

PNG = b"\x89PNG\r\n\x1a\n"


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = run_tool(tool.main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return write_store(
        tmp_path / "candles.db", {"PF_XBTUSD": walk(180, seed=3), "PF_ETHUSD": walk(180, seed=4, start=Decimal(3000))}
    )


def test_json_report_registry_and_plot(tmp_path: Path, store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kept, plot = tmp_path / "run.db", tmp_path / "equity.png"
    code, out, err = cli(
        capsys, "--candles", str(store), "--symbols", "PF_XBTUSD,ETHUSD", "--timeframe", "1h", "--json",
        "--registry", str(kept), "--plot", str(plot), "--fees", "0.001",
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    assert doc["audit"] == "registry audit clean" and doc["problems"] == []
    assert doc["bars"] == 180 and doc["fee_rate"] == "0.001"
    assert doc["trades"] + doc["open_positions"] >= 2
    assert Decimal(doc["net_pnl"]) == Decimal(doc["final_equity"]) - Decimal(doc["starting_usd"])
    for key in ("max_drawdown", "win_rate_pct", "profit_factor", "average_r", "exposure_pct", "buy_and_hold_pct"):
        assert key in doc
    assert kept.stat().st_size > 0
    assert plot.read_bytes()[:8] == PNG


def test_text_report(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "--candles", str(store), "--symbols", "PF_XBTUSD", "--timeframe", "1h")
    assert code == 0, err
    assert "net PnL" in out and "buy and hold" in out and "registry audit clean; last reconciliation clean" in out
    assert err == ""  # the daemon's event lines (warnings among them) stay out of the report...
    code, out, err = cli(capsys, "--candles", str(store), "--symbols", "PF_XBTUSD", "--timeframe", "1h", "--events")
    assert code == 0 and "DECISION_TRACE" in err  # ...unless asked for


def _gappy(tmp_path: Path) -> Path:
    bars = walk(120, seed=2)
    return write_store(tmp_path / "gappy.db", {"PF_XBTUSD": bars[:50] + bars[53:]})


def _registry_like(tmp_path: Path) -> Path:
    path = tmp_path / "registry.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE position (id INTEGER PRIMARY KEY)")
    return path


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"tcp://127.0.0.1:{port}"


def _files(folder: Path) -> list[str]:
    # Reading a WAL-mode SQLite file read-only may leave its empty -wal/-shm beside it (SQLite's own, harmless;
    # docs/tools.md): those are not files the backtest wrote.
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(("-wal", "-shm")))


BAD: dict[str, tuple[list[str], str]] = {
    "gaps": (["--candles", "{gappy}", "--symbols", "PF_XBTUSD"], "3 missing bar(s) in 1 gap(s)"),
    "empty range": (["--from", "2030-01-01", "--to", "2030-02-01"], "no PF_XBTUSD 1h bars"),
    "from after to": (["--from", "2026-01-09", "--to", "2026-01-06"], "is after --to"),
    "bad time": (["--from", "yesterday"], "not an ISO date"),
    "unknown symbol": (["--symbols", "FOO"], "unknown symbol 'FOO'"),
    "not simulated": (["--symbols", "PF_BCHUSD"], "not a simulated instrument"),
    "unknown timeframe": (["--timeframe", "2h"], "unknown timeframe '2h'"),
    "text file": (["--candles", "{text}"], "is not a SQLite database"),
    "registry file": (["--candles", "{registry}"], "is not a candle store"),
    "missing file": (["--candles", "{missing}"], "does not exist"),
    "registry exists": (["--registry", "{text}"], "exists already"),
    "plot not png": (["--plot", "{dir}/x.jpg"], "name it FILE.png"),
    "bad grid key": (["--grid", "colour=red"], "unknown parameter 'colour'"),
    "bad grid value": (["--grid", "channel_bars=0,20"], "channel_bars='0'"),
    "workers without grid": (["--workers", "2"], "run a --grid"),
    "unreachable cluster": (
        ["--grid", "channel_bars=20", "--cluster", "{cluster}", "--cluster-timeout", "1"],
        "cannot reach the Dask",
    ),
    "fees out of range": (["--fees", "0.5"], "--fees"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_exit_2_nothing_written(
    case: str, tmp_path: Path, store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, expected = BAD[case]
    text = tmp_path / "notes.txt"
    text.write_text("not candles\n")
    names = {
        "gappy": str(_gappy(tmp_path)) if case == "gaps" else "",
        "text": str(text),
        "registry": str(_registry_like(tmp_path)),
        "missing": str(tmp_path / "nope.db"),
        "dir": str(tmp_path),
        "cluster": _closed_port() if case == "unreachable cluster" else "",
    }
    before = _files(tmp_path)
    args = ["--candles", str(store), "--symbols", "PF_XBTUSD", "--timeframe", "1h"]
    args += [a.format(**names) for a in argv]
    code, out, err = cli(capsys, *args)
    assert code == 2, (out, err)
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert expected in err
    assert "Traceback" not in err
    assert _files(tmp_path) == before, "a refused run wrote a file"


def test_allow_gaps_runs_over_the_hole(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "--candles", str(_gappy(tmp_path)), "--symbols", "PF_XBTUSD", "--timeframe", "1h",
                         "--allow-gaps", "--json")  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["bars"] == 120  # the three missing hours are stepped through at the last close


def test_config_sets_the_risk_and_the_symbols(tmp_path: Path, store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "trader.toml"
    config.write_text(
        'symbols = ["PF_ETHUSD"]\ntimeframe = "1h"\n[risk]\nrisk_per_trade_pct = 0.25\ntake_profit_r = 1.5\n'
        "atr_stop_multiple = 3\n"
    )
    config.chmod(0o600)
    code, out, err = cli(capsys, "--candles", str(store), "--config", str(config), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["params"]["risk_per_trade_pct"] == "0.25"
    assert doc["params"]["take_profit_r"] == "1.5" and doc["params"]["atr_stop_multiple"] == "3"
    assert doc["bars"] == 180  # PF_ETHUSD, the config's only symbol, at the config's timeframe
