"""Parameter sweeps: the cartesian grid, local worker processes and a Dask LocalCluster on 127.0.0.1 give the
same rows as one process, each row reproducible from its parameters alone."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from backtest import grid
from backtest.params import Params, ParamsError
from backtest.run import Spec
from settings.config import load_settings
from tests.backtest.series import walk, write_store
from tools import backtest as tool
from tools._cli import run_tool


def base_spec() -> Spec:
    settings = load_settings(None)
    return Spec({"PF_XBTUSD": tuple(walk(130, seed=21))}, "1h", Params.from_settings(settings), settings)


def test_the_grid_is_the_cartesian_product_checked_up_front() -> None:
    sets = grid.parse(["channel_bars=10,20", "take_profit_r=none,2,3"])
    assert len(sets) == 6
    assert {"channel_bars": "20", "take_profit_r": "none"} in sets
    with pytest.raises(ParamsError, match="twice"):
        grid.parse(["atr_bars=7", "atr_bars=14"])
    with pytest.raises(ParamsError, match="atr_stop_multiple='-1'"):
        grid.parse(["atr_stop_multiple=1,-1"])
    with pytest.raises(ParamsError, match="expected key=v1,v2"):
        grid.parse(["channel_bars"])


def test_two_workers_give_the_rows_of_one_process() -> None:
    specs = grid.specs_for(base_spec(), grid.parse(["channel_bars=10,20", "take_profit_r=1"]))
    one = grid.run_local(specs, 1)
    two = grid.run_local(specs, 2)
    assert two == one
    assert all(row["problems"] == [] for row in one)
    assert len({json.dumps(row, sort_keys=True, default=str) for row in one}) == 2, "the parameters changed nothing"
    # Each row is its parameters' own backtest: rerunning one set alone gives the same figures.
    alone = grid.task(grid.specs_for(base_spec(), [{"channel_bars": "20", "take_profit_r": "1"}])[0])
    assert alone in one
    ranked = grid.rank(one, "net_pnl")
    assert [Decimal(str(r["net_pnl"])) for r in ranked] == sorted(
        (Decimal(str(r["net_pnl"])) for r in one), reverse=True
    )


def test_a_dask_local_cluster_runs_the_same_task() -> None:
    distributed = pytest.importorskip("distributed")
    specs = grid.specs_for(base_spec(), grid.parse(["channel_bars=10,20"]))
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        rows = grid.run_cluster(specs, cluster.scheduler_address)
    assert rows == grid.run_local(specs, 1)


def test_cli_sweep_ranks_one_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = write_store(tmp_path / "candles.db", {"PF_XBTUSD": walk(130, seed=21)})
    code = run_tool(
        tool.main,
        ["--candles", str(store), "--symbols", "PF_XBTUSD", "--timeframe", "1h", "--json",
         "--grid", "channel_bars=10,20", "take_profit_r=2", "--workers", "2", "--rank", "max_drawdown_pct"],
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    assert doc["rank"] == "max_drawdown_pct" and len(doc["rows"]) == 2
    assert [r["params"]["channel_bars"] for r in doc["rows"]] != [] and all(r["problems"] == [] for r in doc["rows"])
    drawdowns = [Decimal(r["max_drawdown_pct"]) for r in doc["rows"]]
    assert drawdowns == sorted(drawdowns)
