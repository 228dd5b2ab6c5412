"""The equity-curve picture (`--plot FILE.png`): the account's mark-to-market equity beside buy-and-hold.

matplotlib with the Agg backend: a file, no display needed.
"""

from __future__ import annotations

from pathlib import Path

from backtest.run import Result


def equity_png(result: Result, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # matplotlib's date numbers: days since its default epoch, 1970-01-01 UTC
    times = [p.time.timestamp() / 86400 for p in result.equity]
    equity = [float(p.equity) for p in result.equity]  # floats only for drawing; every figure stays Decimal
    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=100)
    try:
        ax.plot(times, equity, label="backtest equity (mark to market, after fees)", linewidth=1.2)
        ax.plot(times, [float(p.hold) for p in result.equity], linestyle="--", linewidth=1,
                label="buy and hold (equal weight, from the first close)")  # fmt: skip
        ax.xaxis_date()
        ax.set_ylabel("USD")
        ax.set_title(f"{', '.join(sorted(result.first_close))}: {result.bars} bars")
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
        fig.autofmt_xdate()
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
