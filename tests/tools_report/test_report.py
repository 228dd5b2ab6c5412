"""`python -m tools.report` as an operator runs it: a real subprocess over a real registry file."""

from __future__ import annotations

import io
import os
import pty
import stat
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image

from lifecycle.clock import FakeClock
from operations.equity_plot import LOSS_COLOUR, WIN_COLOUR
from store.registry import Registry
from tests.accounting.test_accounting_properties import T0
from tests.accounting.test_trades_registry import _book, write_book
from tests.tools_runbook.conftest import ROOT, Run, run_tool


def report(*args: str) -> Run:
    return run_tool("report", *args)


@pytest.fixture
def three_trades(tmp_path: Path) -> Iterator[Path]:
    """Two wins and a loss a day apart each, and one position still open."""
    path = tmp_path / "reg.db"
    clock = FakeClock(T0)
    reg = Registry.open(path, clock)
    write_book(reg, clock, _book("long", [("buy", True, "1", "100", 0), ("sell", False, "1", "130", 5)], "90"),
               stop_purpose=True)  # fmt: skip
    write_book(reg, clock, _book("short", [("sell", True, "2", "100", 1440), ("buy", False, "2", "110", 1500)], "105"))
    write_book(
        reg, clock, _book("long", [("buy", True, "0.5", "200", 2880), ("sell", False, "0.5", "260", 2900)], "180")
    )
    write_book(reg, clock, _book("long", [("buy", True, "1", "100", 4000)], "90"))
    reg.close()
    yield path


def _components(mask: np.ndarray) -> int:
    """Connected regions of True pixels (4-neighbour flood fill): one per drawn marker."""
    seen = np.zeros_like(mask, dtype=bool)
    count = 0
    for y, x in zip(*np.nonzero(mask), strict=True):
        if seen[y, x]:
            continue
        count += 1
        stack = [(int(y), int(x))]
        while stack:
            cy, cx = stack.pop()
            if not (0 <= cy < mask.shape[0] and 0 <= cx < mask.shape[1]) or seen[cy, cx] or not mask[cy, cx]:
                continue
            seen[cy, cx] = True
            stack += [(cy + 1, cx), (cy - 1, cx), (cy, cx + 1), (cy, cx - 1)]
    return count


def _colour_mask(pixels: np.ndarray, hex_colour: str) -> np.ndarray:
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]) / 255
    mask: np.ndarray = np.all(np.abs(pixels[:, :, :3] - rgb) < 0.02, axis=2)
    return mask


def test_report_json_csv_and_plot(three_trades: Path, tmp_path: Path) -> None:
    csv_path, png_path = tmp_path / "trades.csv", tmp_path / "equity.png"
    run = report("--db", str(three_trades), "--gross", "--json", "--csv", str(csv_path), "--plot", str(png_path))
    assert run.code == 0, run.err
    doc = run.json()
    s = doc["summary"]
    # +30, then short 2 @ 100 covered @ 110: -20, then +0.5 x 60 = +30
    assert (s["trades"], s["wins"], s["losses"], s["net_trades"], s["net_window"]) == (3, 2, 1, "40.00", "40.00")
    assert (s["max_drawdown"], s["profit_factor"], s["win_rate"]) == ("20.00", "3.0000", "0.6667")
    # R: 30 / (|100 - 90| x 1) = 3; the short -20 / (|100 - 105| x 2) = -2; 30 / (|200 - 180| x 0.5) = 3
    assert s["average_r"] == "1.3333"
    assert [d["net"] for d in doc["daily"]] == ["30.00", "-20.00", "30.00"]
    # Saturday and Sunday are ISO week 48, Monday 2026-11-30 week 49; all in November
    assert doc["weekly"] == [{"week": "2026-W48", "net": "10.00"}, {"week": "2026-W49", "net": "30.00"}]
    assert doc["monthly"] == [{"month": "2026-11", "net": "40.00"}]
    assert [t["reason"] for t in doc["trades"]] == ["stop", "strategy_exit", "strategy_exit"]
    assert doc["fees_recorded"] is False
    assert doc["written"] == [str(csv_path), str(png_path)]

    lines = csv_path.read_text().splitlines()
    assert lines[0].startswith("closed,uid,symbol,side,qty,entry,exit,realised,fees,funding,net,r,reason,held")
    assert [line.split(",")[10] for line in lines[1:]] == ["30.00", "-20.00", "30.00"]

    data = png_path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    pixels = image.imread(io.BytesIO(data), format="png")
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert _components(_colour_mask(pixels, WIN_COLOUR)) == 2
    assert _components(_colour_mask(pixels, LOSS_COLOUR)) == 1


def test_a_window_selects_trades_by_close_and_text_is_plain_off_a_terminal(three_trades: Path) -> None:
    run = report("--db", str(three_trades), "--gross", "--since", "2026-11-29", "--until", "2026-12-01T00:00Z")
    assert run.code == 0, run.err
    assert "Trades" in run.out and "┃" not in run.out  # no rich box drawing into a pipe
    assert "net PnL (trades)    10.00" in run.out  # -20 + 30
    assert "2026-11-28" not in run.out
    monthly = report("--db", str(three_trades), "--gross", "--period", "month")
    assert monthly.code == 0 and "Realised net PnL per UTC month (USD)" in monthly.out
    assert "\n2026-11  40.00\n" in monthly.out


def _nothing_written(tmp_path: Path, before: set[str]) -> None:
    # SQLite itself may leave an empty -wal/-shm beside a WAL database it read; the report writes nothing else.
    assert {p.name for p in tmp_path.iterdir() if not p.name.endswith(("-wal", "-shm"))} == before


@pytest.mark.parametrize(
    ("case", "args", "message"),
    [
        ("since_after_until", ["--gross", "--since", "2026-12-02", "--until", "2026-12-01"], "is not before --until"),
        ("no_fee_rows", [], "no fee or funding rows"),
        ("bad_date", ["--since", "yesterday"], "is not a date or time"),
        ("bad_period", ["--gross", "--period", "year"], "invalid choice"),
        ("plot_folder_missing", ["--gross", "--plot", "{tmp}/nowhere/x.png"], "does not exist"),
        ("plot_not_png", ["--gross", "--plot", "{tmp}/x.jpg"], "name the file *.png"),
        ("empty_window", ["--gross", "--since", "2030-01-01"], "no trade closed"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    three_trades: Path, tmp_path: Path, case: str, args: list[str], message: str
) -> None:
    before = {p.name for p in tmp_path.iterdir()}
    csv_path = tmp_path / "t.csv"
    run = report("--db", str(three_trades), "--csv", str(csv_path), *(a.format(tmp=tmp_path) for a in args))
    assert run.code == 2, (case, run.out, run.err)
    assert run.out == "" and len(run.err.strip().splitlines()) == 1 and message in run.err, run.err
    _nothing_written(tmp_path, before)


def test_a_plot_path_only_the_write_finds_unwritable_leaves_the_csv_unwritten(
    three_trades: Path, tmp_path: Path
) -> None:
    """/proc passes the up-front checks, even for root, and refuses the file: the CSV staged before it is removed."""
    before = {p.name for p in tmp_path.iterdir()}
    run = report("--db", str(three_trades), "--gross", "--csv", str(tmp_path / "t.csv"), "--plot", "/proc/x.png")
    # root passes the up-front check and meets the refusal at the write; anyone else is refused up front
    expected = "nothing was written" if os.geteuid() == 0 else "is not writable"
    assert run.code == 2 and expected in run.err and len(run.err.strip().splitlines()) == 1, run.err
    _nothing_written(tmp_path, before)
    assert not Path("/proc/x.png").exists()


def test_an_unwritable_plot_path_writes_nothing(three_trades: Path, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes into a read-only folder (the /proc case above covers root)")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        before = {p.name for p in tmp_path.iterdir()}
        run = report("--db", str(three_trades), "--gross", "--csv", str(tmp_path / "t.csv"),
                     "--plot", str(locked / "x.png"))  # fmt: skip
        assert run.code == 2 and "is not writable" in run.err and len(run.err.strip().splitlines()) == 1
        _nothing_written(tmp_path, before)
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(stat.S_IRWXU)


def test_an_empty_registry_is_one_line_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    Registry.open(path, FakeClock(T0)).close()
    size = path.stat().st_size
    run = report("--db", str(path), "--gross", "--plot", str(tmp_path / "x.png"))
    assert run.code == 2 and "holds no trade yet" in run.err and len(run.err.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists() and path.stat().st_size == size


def test_a_missing_registry_is_refused_without_creating_it(tmp_path: Path) -> None:
    run = report("--db", str(tmp_path / "nope.db"), "--gross")
    assert run.code == 2 and "does not exist" in run.err
    assert not (tmp_path / "nope.db").exists()


def test_numbers_are_decimal_exact(tmp_path: Path) -> None:
    """0.1 + 0.2 style amounts: a float sum would show 0.30000000000000004 somewhere; the report must not."""
    path = tmp_path / "reg.db"
    clock = FakeClock(T0)
    reg = Registry.open(path, clock)
    for i in range(3):
        write_book(reg, clock, _book("long", [("buy", True, "0.1", "100.1", i * 10), ("sell", False, "0.1", "100.2",
                                                                                      i * 10 + 1)], "99"))  # fmt: skip
    reg.close()
    run = report("--db", str(path), "--gross", "--json")
    assert run.code == 0, run.err
    assert run.json()["summary"]["net_trades"] == str(Decimal("0.03"))


def test_a_terminal_gets_rich_tables(three_trades: Path) -> None:
    """On a terminal the same report is drawn with rich (box-drawing tables); the figures are the same."""
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADER_")}
    env.update(PYTHONPATH=str(ROOT), COLUMNS="160", TERM="xterm")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.report", "--db", str(three_trades), "--gross"],
        cwd=ROOT, env=env, stdout=slave, stderr=subprocess.PIPE, text=False,
    )  # fmt: skip
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the terminal's other end closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.wait(60) == 0
    text = b"".join(chunks).decode()
    assert "┃" in text or "│" in text  # rich's tables
    assert "Summary (USD)" in text and "40.00" in text and "Traceback" not in text
