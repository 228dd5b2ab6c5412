"""The simulated instrument list: linear `PF_*USD` perpetuals with Kraken's own precision fields."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property

TIER_BOUNDS = (Decimal(0), Decimal(500_000), Decimal(2_000_000), Decimal(5_000_000), Decimal(10_000_000),
               Decimal(30_000_000))  # fmt: skip
TIER_RATES = (Decimal("0.02"), Decimal("0.04"), Decimal("0.1"), Decimal("0.2"), Decimal("0.3"), Decimal("0.5"))


@dataclass(frozen=True)
class MarginTier:
    from_notional: Decimal  # USD of position (`numNonContractUnits`) from which these rates apply
    initial: Decimal
    maintenance: Decimal


@dataclass(frozen=True)
class InstrumentSpec:
    symbol: str  # Kraken id, e.g. PF_XBTUSD (upper case, as Kraken's instruments endpoint serves it)
    base: str  # ccxt's unified base (XBT is BTC)
    tick_size: Decimal
    contract_value_trade_precision: int  # sizes are multiples of 10**-cvtp
    start_price: Decimal
    initial_margin: Decimal = Decimal("0.02")  # first margin level: 50x max leverage
    maintenance_margin: Decimal = Decimal("0.01")
    contract_size: Decimal = Decimal(1)
    volatility: Decimal = Decimal("0.00015")  # std-dev of the return over one second
    max_position_size: Decimal = Decimal(1_000_000)  # contracts; Kraken's instrument `maxPositionSize`
    tier_scale: Decimal = Decimal(1)  # margin tier bounds relative to PF_XBTUSD's (smaller markets: smaller tiers)

    @cached_property  # read for every position at every price step (the margin check): computed once
    def margin_tiers(self) -> tuple[MarginTier, ...]:
        """Kraken's tiered `marginLevels` (PF_XBTUSD in the spec's InstrumentsExample: from 0, 500k, 2M, 5M, 10M
        and 30M USD of position, initial 2, 4, 10, 20, 30, 50 %, maintenance half of it), scaled by this
        instrument's first level and `tier_scale`."""
        base = self.initial_margin / TIER_RATES[0]
        return tuple(
            MarginTier(
                bound * self.tier_scale,
                min(Decimal(1), rate * base),
                min(Decimal(1), rate * base) * self.maintenance_margin / self.initial_margin,
            )
            for bound, rate in zip(TIER_BOUNDS, TIER_RATES, strict=True)
        )

    @cached_property  # read at every price step (synthetic volume) and every order check
    def size_increment(self) -> Decimal:
        return Decimal(1).scaleb(-self.contract_value_trade_precision)

    @property
    def max_leverage(self) -> Decimal:
        return Decimal(1) / self.initial_margin

    def round_price(self, price: Decimal) -> Decimal:
        """Nearest tick (ties to even): how a path price becomes a quotable one."""
        ticks = (price / self.tick_size).to_integral_value()
        return (ticks * self.tick_size).quantize(self.tick_size)

    def is_on_tick(self, price: Decimal) -> bool:
        return price % self.tick_size == 0

    def is_size_step(self, size: Decimal) -> bool:
        return size % self.size_increment == 0


SMALL_TIERS = Decimal("0.1")  # alt-coin tiers start at a tenth of XBT's bounds

DEFAULT_INSTRUMENTS: tuple[InstrumentSpec, ...] = (
    InstrumentSpec("PF_XBTUSD", "BTC", Decimal(1), 4, Decimal(65000)),
    InstrumentSpec(
        "PF_ETHUSD", "ETH", Decimal("0.1"), 3, Decimal(3200), volatility=Decimal("0.0002"), tier_scale=Decimal("0.5")
    ),
    InstrumentSpec(
        "PF_SOLUSD", "SOL", Decimal("0.01"), 2, Decimal(150), volatility=Decimal("0.00025"), tier_scale=SMALL_TIERS
    ),
    InstrumentSpec(
        "PF_XRPUSD",
        "XRP",
        Decimal("0.0001"),
        0,
        Decimal("0.6"),
        initial_margin=Decimal("0.04"),
        maintenance_margin=Decimal("0.02"),
        volatility=Decimal("0.00025"),
        tier_scale=SMALL_TIERS,
    ),
    InstrumentSpec(
        "PF_LTCUSD", "LTC", Decimal("0.01"), 1, Decimal(80), volatility=Decimal("0.0002"), tier_scale=SMALL_TIERS
    ),
    InstrumentSpec(
        "PF_ADAUSD",
        "ADA",
        Decimal("0.000001"),
        0,
        Decimal("0.45"),
        initial_margin=Decimal("0.05"),
        maintenance_margin=Decimal("0.025"),
        volatility=Decimal("0.0003"),
        tier_scale=SMALL_TIERS,
    ),
    InstrumentSpec(
        "PF_DOGEUSD",
        "DOGE",
        Decimal("0.000001"),
        0,
        Decimal("0.15"),
        initial_margin=Decimal("0.05"),
        maintenance_margin=Decimal("0.025"),
        volatility=Decimal("0.0003"),
        tier_scale=SMALL_TIERS,
    ),
    InstrumentSpec(
        "PF_LINKUSD", "LINK", Decimal("0.001"), 1, Decimal(15), volatility=Decimal("0.00025"), tier_scale=SMALL_TIERS
    ),
)
