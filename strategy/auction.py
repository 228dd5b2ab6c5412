"""The margin auction: admit the strongest entry candidates while projected margin utilisation stays within the cap.

Projected utilisation = (initial margin in use + margin of the admitted candidates) / margin equity × 100, with
each candidate's margin = size × contract size × entry price / leverage. Candidates are ranked by signal strength
(highest first), then symbol, so equal inputs always give equal outcomes. A candidate that does not fit is
rejected with the numbers; a smaller one further down the list may still fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from lifecycle.values import MarginSnapshot
from strategy.base import Decision


@dataclass(frozen=True)
class Candidate:
    decision: Decision
    contract_size: Decimal = Decimal(1)

    @property
    def symbol(self) -> str:
        return self.decision.symbol

    def notional(self) -> Decimal:
        if self.decision.size is None or self.decision.entry_price is None:
            return Decimal(0)
        return self.decision.size * self.contract_size * self.decision.entry_price


@dataclass(frozen=True)
class Allocation:
    symbol: str
    admitted: bool
    reason: str
    margin_required: Decimal
    projected_util_pct: Decimal  # utilisation if this candidate were admitted
    decision: Decision


class AuctionConfigError(ValueError):
    pass


def allocate(
    candidates: Sequence[Candidate], margin: MarginSnapshot, auction_max_margin_util_pct: Decimal, leverage: Decimal
) -> list[Allocation]:
    if leverage <= 0:
        raise AuctionConfigError(f"leverage must be > 0, got {leverage}; set it to the leverage the account uses")
    if not Decimal(0) < auction_max_margin_util_pct <= Decimal(100):
        raise AuctionConfigError(
            f"auction_max_margin_util_pct must be in (0, 100], got {auction_max_margin_util_pct}; "
            "it must also not exceed max_margin_utilization_pct (THRESHOLD_MISMATCH)"
        )
    ranked = sorted(candidates, key=lambda c: (-c.decision.strength, c.symbol))
    used = margin.initial_margin
    out: list[Allocation] = []
    seen: set[str] = set()
    for c in ranked:
        need = c.notional() / leverage
        d = c.decision
        if margin.margin_equity <= 0:
            out.append(Allocation(c.symbol, False, "no margin equity", need, Decimal(100), d))
            continue
        projected = (used + need) / margin.margin_equity * 100
        if not d.is_entry or need <= 0:
            out.append(Allocation(c.symbol, False, "not an entry with a size and price", need, projected, d))
        elif c.symbol in seen:
            out.append(Allocation(c.symbol, False, "a stronger candidate took this symbol", need, projected, d))
        elif projected > auction_max_margin_util_pct:
            pct = projected.quantize(Decimal("0.01"))
            reason = f"projected utilisation {pct}% > cap {auction_max_margin_util_pct}%"
            out.append(Allocation(c.symbol, False, reason, need, projected, d))
        else:
            used += need
            seen.add(c.symbol)
            out.append(Allocation(c.symbol, True, "admitted", need, projected, d))
    return out
