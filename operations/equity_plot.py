"""The equity-curve picture: realised equity over time, the drawdown from the running peak shaded, one marker per
closed trade (green above zero, red below). PNG bytes in memory, so a caller writes the file only when everything
else has succeeded, and the Telegram bot can send the same bytes.

matplotlib with the Agg backend, chosen explicitly: no display, no GUI toolkit, the same output on a server.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

import matplotlib
from matplotlib import dates
from matplotlib.figure import Figure

from lifecycle.accounting import EquityPoint, TradeRecord

# A Figure built without pyplot renders through Agg anyway; naming it also keeps any later pyplot import off a
# display.
matplotlib.use("Agg")

# Pure, saturated colours that nothing else in the picture uses, so a test can count markers by colour.
WIN_COLOUR = "#00c800"
LOSS_COLOUR = "#e00000"
MARKER_SIZE = 60


def _num(when: Sequence[datetime]) -> list[float]:
    # matplotlib's date numbers (days since its epoch); date2num is untyped in its stubs
    return [float(x) for x in dates.date2num(list(when))]  # type: ignore[no-untyped-call]


def _level_at(curve: Sequence[EquityPoint], when: datetime) -> float:
    level = 0.0
    for point in curve:
        if point.time > when:
            break
        level = float(point.equity)
    return level


def equity_png(curve: Sequence[EquityPoint], trades: Sequence[TradeRecord], *, title: str) -> bytes:
    """The picture as PNG bytes. The curve starts at 0 at its first event (cumulative realised net PnL, USD)."""
    figure = Figure(figsize=(10, 5), dpi=100)
    ax = figure.add_subplot(1, 1, 1)
    if curve:
        # The last level holds after the last event: drawn on to a small margin, so a final drop shows its shading.
        span = curve[-1].time - curve[0].time
        end = curve[-1].time + max(span * 0.03, timedelta(minutes=1))
        times = _num([curve[0].time, *(p.time for p in curve), end])
        levels = [0.0, *(float(p.equity) for p in curve), float(curve[-1].equity)]
        peaks: list[float] = []
        peak = 0.0
        for level in levels:
            peak = max(peak, level)
            peaks.append(peak)
        ax.step(times, levels, where="post", color="#1f4e9c", linewidth=1.5, label="realised equity (USD)")
        ax.fill_between(times, levels, peaks, step="post", color="#9c9c9c", alpha=0.35, label="drawdown")
    closed = [t for t in trades if t.closed is not None]
    for colour, group in (
        (WIN_COLOUR, [t for t in closed if t.net > Decimal(0)]),
        (LOSS_COLOUR, [t for t in closed if t.net <= Decimal(0)]),
    ):
        if group:
            when = [t.closed for t in group if t.closed is not None]
            xs = _num(when)
            ys = [_level_at(curve, x) for x in when]
            ax.scatter(xs, ys, s=MARKER_SIZE, c=colour, edgecolors="none", zorder=3)
    ax.xaxis_date()
    ax.axhline(0.0, color="#505050", linewidth=0.8)
    ax.set_title(title)
    ax.set_ylabel("USD")
    ax.grid(True, alpha=0.3)
    if curve:
        ax.legend(loc="best")
    figure.autofmt_xdate()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
