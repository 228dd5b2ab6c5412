"""The read-only contract checks: one raw call through the real ccxt client per endpoint, validated against the
model of Kraken's schema (tests/contract/schemas.py). Shared by the simulator's contract tests and by the demo
run (`python -m tests.contract.demo`), so both check exactly the same things."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from tests.contract import schemas as S


@dataclass(frozen=True)
class Check:
    name: str
    call: Callable[[Any], Any]
    model: type[BaseModel]


def _ohlcv(ex: Any) -> Any:
    return ex.chartsGetPriceTypeSymbolInterval({"price_type": "trade", "symbol": "PF_XBTUSD", "interval": "1h"})


READ_CHECKS: tuple[Check, ...] = (
    Check("instruments", lambda ex: ex.publicGetInstruments(), S.InstrumentsResponse),
    Check("tickers", lambda ex: ex.publicGetTickers(), S.TickersResponse),
    Check("tickers/PF_XBTUSD", lambda ex: ex.publicGetTickersSymbol({"symbol": "PF_XBTUSD"}), S.TickerResponse),
    Check("charts trade 1h", _ohlcv, S.CandlesResponse),
    Check("accounts", lambda ex: ex.privateGetAccounts(), S.AccountsResponse),
    Check("openpositions", lambda ex: ex.privateGetOpenpositions(), S.OpenPositionsResponse),
    Check("openorders", lambda ex: ex.privateGetOpenorders(), S.OpenOrdersResponse),
    Check("fills", lambda ex: ex.privateGetFills(), S.FillsResponse),
    Check("orders/status", lambda ex: ex.privateGetOrdersStatus(), S.OrdersStatusResponse),
    Check("history orders", lambda ex: ex.historyGetOrders({"count": 100}), S.OrdersHistory),
    Check("history triggers", lambda ex: ex.historyGetTriggers({"count": 100}), S.TriggersHistory),
    Check("history executions", lambda ex: ex.historyGetExecutions({"count": 100}), S.ExecutionsHistory),
    Check("account-log", lambda ex: ex.historyGetAccountLog({"count": 100}), S.AccountLog),
)


def problems(model: type[BaseModel], payload: Any) -> list[str]:
    """One line per schema violation, `path: message` (empty when the payload conforms)."""
    try:
        model.model_validate(payload)
    except ValidationError as exc:
        return [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
    return []
