"""The simulated instrument list: linear `PF_*USD` perpetuals with Kraken's own precision fields."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


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

    @property
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


DEFAULT_INSTRUMENTS: tuple[InstrumentSpec, ...] = (
    InstrumentSpec("PF_XBTUSD", "BTC", Decimal(1), 4, Decimal(65000)),
    InstrumentSpec("PF_ETHUSD", "ETH", Decimal("0.1"), 3, Decimal(3200), volatility=Decimal("0.0002")),
    InstrumentSpec("PF_SOLUSD", "SOL", Decimal("0.01"), 2, Decimal(150), volatility=Decimal("0.00025")),
    InstrumentSpec(
        "PF_XRPUSD",
        "XRP",
        Decimal("0.0001"),
        0,
        Decimal("0.6"),
        initial_margin=Decimal("0.04"),
        maintenance_margin=Decimal("0.02"),
        volatility=Decimal("0.00025"),
    ),
    InstrumentSpec("PF_LTCUSD", "LTC", Decimal("0.01"), 1, Decimal(80), volatility=Decimal("0.0002")),
    InstrumentSpec(
        "PF_ADAUSD",
        "ADA",
        Decimal("0.000001"),
        0,
        Decimal("0.45"),
        initial_margin=Decimal("0.05"),
        maintenance_margin=Decimal("0.025"),
        volatility=Decimal("0.0003"),
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
    ),
    InstrumentSpec("PF_LINKUSD", "LINK", Decimal("0.001"), 1, Decimal(15), volatility=Decimal("0.00025")),
)
