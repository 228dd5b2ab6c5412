"""Flex (multi-collateral) account arithmetic, as Kraken's `accounts.flex` reports it: USD plus optional other
currencies held as collateral at their mark, less a haircut.

Pure functions over positions, open orders and prices, so the engine and the tests share one definition.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from simulator.instruments import InstrumentSpec
from simulator.models import SimOrder, SimPosition


@dataclass(frozen=True)
class Holding:
    """A non-USD collateral currency: `value` at its mark in USD, `collateral` = value × (1 − haircut)."""

    currency: str
    quantity: Decimal
    value: Decimal
    collateral: Decimal


@dataclass(frozen=True)
class AccountState:
    usd: Decimal  # USD collateral: deposits + realised PnL - fees ± funding
    pnl: Decimal  # unrealised PnL of open positions at mark
    unrealized_funding: Decimal
    initial_margin: Decimal
    initial_margin_with_orders: Decimal
    maintenance_margin: Decimal
    holdings: tuple[Holding, ...] = ()

    @property
    def balance_value(self) -> Decimal:
        return self.usd + sum((h.value for h in self.holdings), Decimal(0))

    @property
    def portfolio_value(self) -> Decimal:
        return self.balance_value + self.pnl

    @property
    def collateral_value(self) -> Decimal:
        return self.usd + sum((h.collateral for h in self.holdings), Decimal(0))  # USD has no haircut

    @property
    def total_unrealized(self) -> Decimal:
        return self.pnl + self.unrealized_funding

    @property
    def margin_equity(self) -> Decimal:
        return self.collateral_value + self.total_unrealized

    @property
    def available_margin(self) -> Decimal:
        # Kraken: marginEquity minus initial margin. Open orders reserve margin too, which is what stops a bot
        # from stacking entries, so the simulator subtracts the with-orders figure.
        return self.margin_equity - self.initial_margin_with_orders


def initial_rate(spec: InstrumentSpec, max_leverage: Decimal | None) -> Decimal:
    """The first tier's initial rate, or 1 / max leverage when higher: what a position below the second tier
    pays per USD of notional."""
    if max_leverage is not None and max_leverage > 0:
        return max(spec.initial_margin, Decimal(1) / max_leverage)
    return spec.initial_margin


def tiered(spec: InstrumentSpec, notional: Decimal, *, maintenance: bool = False) -> Decimal:
    """Margin on `notional` USD of position under the instrument's tiers, each rate applying to the part of the
    position inside its band (how Kraken's `marginLevels` read for a linear contract; the band arithmetic is
    our reading, the spec gives only the levels)."""
    tiers = spec.margin_tiers
    total = Decimal(0)
    for i, tier in enumerate(tiers):
        upper = tiers[i + 1].from_notional if i + 1 < len(tiers) else None
        if notional <= tier.from_notional:
            break
        part = (notional if upper is None else min(notional, upper)) - tier.from_notional
        total += part * (tier.maintenance if maintenance else tier.initial)
    return total


def initial_margin(spec: InstrumentSpec, notional: Decimal, max_leverage: Decimal | None) -> Decimal:
    """Tiered initial margin, or the position's notional over a chosen max leverage when that is more."""
    tiered_im = tiered(spec, notional)
    if max_leverage is not None and max_leverage > 0:
        return max(tiered_im, notional / max_leverage)
    return tiered_im


def compute_account(
    balance: Decimal,
    positions: Iterable[SimPosition],
    open_orders: Iterable[SimOrder],
    marks: Mapping[str, Decimal],
    specs: Mapping[str, InstrumentSpec],
    leverage: Mapping[str, Decimal],
    holdings: tuple[Holding, ...] = (),
) -> AccountState:
    pnl = Decimal(0)
    im = Decimal(0)
    mm = Decimal(0)
    exposure: dict[str, Decimal] = {}
    held_notional: dict[str, Decimal] = {}
    for pos in positions:
        spec = specs[pos.symbol]
        mark = marks[pos.symbol]
        notional = abs(pos.size) * mark * spec.contract_size
        pnl += pos.size * (mark - pos.entry_price) * spec.contract_size
        im += initial_margin(spec, notional, leverage.get(pos.symbol))
        mm += tiered(spec, notional, maintenance=True)
        exposure[pos.symbol] = pos.size
        held_notional[pos.symbol] = notional
    adding: dict[str, Decimal] = {}
    for order in open_orders:
        if order.reduce_only:
            continue
        spec = specs[order.symbol]
        held = exposure.get(order.symbol, Decimal(0))
        # The part of an order that would reduce the current position needs no extra margin.
        increasing = order.remaining if held * order.sign >= 0 else max(Decimal(0), order.remaining - abs(held))
        price = order.limit_price or order.stop_price or marks[order.symbol]
        adding[order.symbol] = adding.get(order.symbol, Decimal(0)) + increasing * price * spec.contract_size
    order_im = Decimal(0)
    for symbol, extra in adding.items():
        spec, lev, held_usd = specs[symbol], leverage.get(symbol), held_notional.get(symbol, Decimal(0))
        # orders margin at the tier the position would reach if they filled
        order_im += initial_margin(spec, held_usd + extra, lev) - initial_margin(spec, held_usd, lev)
    return AccountState(balance, pnl, Decimal(0), im, im + order_im, mm, holdings)
