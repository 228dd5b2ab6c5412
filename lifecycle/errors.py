"""Typed errors of the lifecycle engine. Each message names what is wrong and what the operator can do."""

from __future__ import annotations

from collections.abc import Iterable


class LifecycleError(Exception):
    """Base of every error raised by the lifecycle engine (machine, registry, symbols, migrations)."""


class IllegalTransition(LifecycleError):
    """An event the spec does not allow from the position's current state."""

    def __init__(self, position_uid: str, state: str, event: str, legal: Iterable[str] = (), detail: str = "") -> None:
        self.position_uid = position_uid
        self.state = state
        self.event = event
        self.legal = tuple(legal)
        legal_txt = ", ".join(self.legal) if self.legal else "none (terminal state)"
        msg = f"position {position_uid} in {state} cannot take {event}; legal here: {legal_txt}"
        if detail:
            msg = f"{msg} ({detail})"
        super().__init__(msg)


class GuardFailed(IllegalTransition):
    """A legal edge of the spec whose condition is false for the position's facts (e.g. entry_filled, no fills)."""

    def __init__(
        self, position_uid: str, state: str, event: str, condition: str, facts: str, legal: Iterable[str] = ()
    ) -> None:
        self.condition = condition
        super().__init__(position_uid, state, event, legal, detail=f"condition {condition} is false: {facts}")


class IllegalOrderTransition(LifecycleError):
    """An order row asked to move along an edge the spec's order lifecycle (specs.lifecycle.ORDER_TRANSITIONS)
    does not have, e.g. a filled order back to open. Nothing is written."""


class UnknownPosition(LifecycleError, LookupError):
    def __init__(self, uid: str) -> None:
        self.uid = uid
        super().__init__(f"no position with uid {uid!r} in the registry; list positions with the status command")


class MalformedSymbol(LifecycleError, ValueError):
    def __init__(self, symbol: object, reason: str) -> None:
        self.symbol = symbol
        super().__init__(
            f"malformed symbol {symbol!r}: {reason}. Accepted forms: Kraken ids PF_XBTUSD / PI_XBTUSD / "
            "FF_XBTUSD_260925 / FI_XBTUSD_260925 (any case), ccxt unified BTC/USD:USD / BTC/USD:BTC / "
            "BTC/USD:USD-260925, or a bare pair XBTUSD / BTCUSD (linear perpetual); quote must be USD"
        )


class UnknownSymbol(LifecycleError, ValueError):
    def __init__(self, symbol: str, key: str, close: Iterable[str]) -> None:
        self.symbol = symbol
        self.key = key
        self.close = tuple(close)
        hint = f"; did you mean {', '.join(self.close)}?" if self.close else "; check the venue's instrument list"
        super().__init__(f"symbol {symbol!r} (key {key}) is not a known instrument{hint}")


class OverfillError(LifecycleError):
    """An exit fill larger than the position's remaining quantity: recording it would make the ledger negative."""


class RegistryVersionError(LifecycleError):
    """The registry database's schema version is not one this code can use."""
