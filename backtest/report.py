"""The money view of one backtest: per-trade figures from `lifecycle.accounting` (the one accounting module) over
the daemon's own position books (`operations.trades.load_books`, as `tools.report` and Telegram read them), the
account's mark-to-market equity curve, and buy-and-hold over the same bars beside them.

Fees and funding are what the engine booked in its account log, read into the registry by the daemon's
account-log job (once a simulated day and at the run's end, backtest.run) and attributed by its rules
(`store.charges`): a fee to the position of the fill it books, funding to the position that carried the symbol
into the funding instant.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from decimal import Decimal

from backtest.run import Result
from lifecycle.accounting import Summary, summarise, trade_record, unrealised

ZERO = Decimal(0)
_EXACT = decimal.Context(prec=50)


@dataclass(frozen=True)
class Report:
    start: str
    end: str
    bars: int
    starting_usd: Decimal
    final_equity: Decimal
    net_pnl: Decimal  # final equity - starting equity: closed trades, fees and what is still open at the last mark
    closed: Summary
    open_positions: int
    fees: Decimal
    funding: Decimal
    max_drawdown: Decimal
    max_drawdown_pct: Decimal
    exposure_pct: Decimal
    buy_and_hold_pct: Decimal
    buy_and_hold_usd: Decimal
    return_pct: Decimal
    fee_rate: Decimal

    def as_dict(self) -> dict[str, object]:
        c = self.closed
        return {
            "start": self.start,
            "end": self.end,
            "bars": self.bars,
            "starting_usd": _q(self.starting_usd),
            "final_equity": _q(self.final_equity),
            "net_pnl": _q(self.net_pnl),
            "return_pct": _q(self.return_pct),
            "trades": c.trades,
            "open_positions": self.open_positions,
            "wins": c.wins,
            "losses": c.losses,
            "win_rate_pct": None if c.win_rate is None else _q(c.win_rate * 100),
            "profit_factor": None if c.profit_factor is None else _q(c.profit_factor),
            "average_r": None if c.average_r is None else _q(c.average_r),
            "closed_net_pnl": _q(c.net),
            "fees": _q(self.fees),
            "fee_rate": str(self.fee_rate),
            "funding": _q(self.funding),
            "max_drawdown": _q(self.max_drawdown),
            "max_drawdown_pct": _q(self.max_drawdown_pct),
            "exposure_pct": _q(self.exposure_pct),
            "buy_and_hold_pct": _q(self.buy_and_hold_pct),
            "buy_and_hold_usd": _q(self.buy_and_hold_usd),
        }

    def lines(self) -> list[str]:
        d = self.as_dict()
        return [
            f"period          {self.start} .. {self.end} ({self.bars} bars)",
            f"trades          {d['trades']} closed ({d['wins']} won, {d['losses']} lost), {d['open_positions']} open",
            f"net PnL         {d['net_pnl']} USD ({d['return_pct']} %), fees {d['fees']} at {self.fee_rate}/fill,"
            f" funding {d['funding']}",
            f"max drawdown    {d['max_drawdown']} USD ({d['max_drawdown_pct']} %)",
            f"win rate        {_or_dash(d['win_rate_pct'])} %   profit factor {_or_dash(d['profit_factor'])}"
            f"   average R {_or_dash(d['average_r'])}",
            f"exposure        {d['exposure_pct']} % of bars",
            f"buy and hold    {d['buy_and_hold_pct']} % ({d['buy_and_hold_usd']} USD, equal weight, no fees)",
        ]


def build(result: Result) -> Report:
    records = [trade_record(b) for b in result.books]
    closed = [r for r, b in zip(records, result.books, strict=True) if b.closed is not None]
    peak = result.starting_usd
    worst = ZERO
    worst_pct = ZERO
    for point in result.equity:
        peak = max(peak, point.equity)
        if peak - point.equity > worst:
            worst = peak - point.equity
            worst_pct = _EXACT.divide(worst * 100, peak)
    final = result.equity[-1].equity if result.equity else result.starting_usd
    exposed = sum(1 for p in result.equity if p.exposed)
    returns = [_EXACT.divide(result.last_close[s], result.first_close[s]) - 1 for s in result.first_close]
    hold = _EXACT.divide(sum(returns, ZERO), Decimal(len(returns))) if returns else ZERO
    return Report(
        start=result.start.isoformat(),
        end=result.end.isoformat(),
        bars=result.bars,
        starting_usd=result.starting_usd,
        final_equity=final,
        net_pnl=final - result.starting_usd,
        closed=summarise(closed, worst),
        open_positions=len(records) - len(closed),
        fees=sum((r.fees for r in records), ZERO),
        funding=sum((r.funding for r in records), ZERO),
        max_drawdown=worst,
        max_drawdown_pct=worst_pct,
        exposure_pct=_EXACT.divide(Decimal(exposed * 100), Decimal(len(result.equity))) if result.equity else ZERO,
        buy_and_hold_pct=hold * 100,
        buy_and_hold_usd=hold * result.starting_usd,
        return_pct=_EXACT.divide((final - result.starting_usd) * 100, result.starting_usd),
        fee_rate=result.fee_rate,
    )


def open_value(result: Result, marks: dict[str, Decimal]) -> Decimal:
    """Realised minus fees plus funding of every position, plus the open ones' PnL at `marks`: what the account
    gained, from the ledger alone."""
    total = ZERO
    for b in result.books:
        total += trade_record(b).net
        if b.closed is None:
            total += unrealised(b, marks[b.symbol])
    return total


def _q(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01"), rounding=decimal.ROUND_HALF_EVEN))


def _or_dash(value: object) -> str:
    return "-" if value is None else str(value)
