"""Translate ccxt exceptions into our typed venue errors, by OPERATION and the venue's raw status.

The ccxt class alone misleads (measured on ccxt 4.5.90, see docs/venue.md):
- HTTP 500 "Server Error" on sendorder raises plain `ExchangeError`, yet the order may exist -> UNKNOWN.
- `sendStatus: marketSuspended` raises `ExchangeNotAvailable` (a NetworkError), yet the venue refused -> REJECTED.
- `clientOrderIdAlreadyExist` raises `DuplicateOrderId` (an InvalidOrder): an order of ours carried the id once
  (open, filled or cancelled) -> UNKNOWN, resolved by the evidence lookup like any ambiguous send.
So the raw status is read first (from ccxt's "failed due to <status>" message or the JSON error body), then
the class, and the default for an order placement is always UNKNOWN: "rejected" must be proven.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import InvalidOperation
from enum import StrEnum

import ccxt

from exchange.errors import (
    AuthenticationFailed,
    MalformedResponse,
    OrderNotFound,
    OrderRejected,
    RateLimited,
    UnknownSymbol,
    VenueError,
    VenueUnavailable,
)
from lifecycle.values import OrderOutcome


class Operation(StrEnum):
    READ = "read"
    PLACE = "place order"
    CANCEL = "cancel order"
    EDIT = "edit order"


# Kraken statuses/error codes that prove the venue refused the request without acting on it.
REFUSED_STATUSES: frozenset[str] = frozenset(
    {
        # sendStatus values ccxt raises for
        "invalidOrderType",
        "invalidSide",
        "invalidSize",
        "invalidPrice",
        "insufficientAvailableFunds",
        "selfFill",
        "tooManySmallOrders",
        "maxPositionViolation",
        "marketSuspended",
        "marketInactive",
        "clientOrderIdTooLong",
        "outsidePriceCollar",
        "postWouldExecute",
        "iocWouldNotExecute",
        "wouldNotReducePosition",
        "orderForEditNotAStop",
        # sendStatus values ccxt does NOT raise for (silent rejections)
        "wouldCauseLiquidation",
        "clientOrderIdTooBig",
        "wouldIncreasePriceDislocation",
        "marketIsPostOnly",
        "tooManyOrders",
        "fixedLeverageTooHigh",
        "clientOrderIdInvalid",
        "wouldProcessAfterSpecifiedTime",
        "requiredArgumentMissing",
        "rejected",
        # error-envelope codes that are refusals
        "insufficientFunds",
        "INSUFFICIENT_MARGIN",
        "invalidArgument",
        "invalidAmount",
        "invalidUnit",
        "invalidAccount",
        "Bad Request",
        "contractNotFound",
        "marketUnavailable",
        "accountInactive",
    }
)

# Error-envelope codes that say the venue broke mid-request: an order may or may not exist.
AMBIGUOUS_STATUSES: frozenset[str] = frozenset({"Server Error", "unknownError", "Json Parse Error", "Unavailable"})

ORDER_EXISTS_STATUS = "clientOrderIdAlreadyExist"
NOT_FOUND_STATUSES: frozenset[str] = frozenset({"notFound", "filled", "orderForEditNotFound"})

_FAILED_DUE_TO = re.compile(r"failed due to (\S+)")
_MAX_DETAIL = 300

_AUTH_ADVICE = (
    "check the Kraken Futures API key and secret (trading permission, not revoked, IP allow-list); "
    "not retried: repeated invalid-key calls lock the key"
)


@dataclass(frozen=True)
class Translation:
    error: VenueError
    venue_failure: bool  # counts toward the API circuit breaker
    # PLACE only: what the failure proves about the order. None means "raise `error`" (nothing was placed).
    place_outcome: OrderOutcome | None = None
    raw_status: str | None = None


def raw_status(exc: BaseException, body: str | None = None) -> str | None:
    """Kraken's own status string: from ccxt's `... failed due to <status>` or the JSON error body."""
    match = _FAILED_DUE_TO.search(str(exc))
    if match:
        return match.group(1)
    for text in (body, _body_from_message(str(exc))):
        status = _status_from_body(text)
        if status:
            return status
    return None


def _body_from_message(message: str) -> str | None:
    # ccxt's krakenfutures feedback is "krakenfutures <body>"
    start = message.find("{")
    return message[start:] if start >= 0 else None


def _status_from_body(body: str | None) -> str | None:
    if not body:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, str) and error:
        return error
    errors = data.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        message = errors[0].get("message")
        if isinstance(message, str) and message:
            return message
    return None


def _is_auth(exc: BaseException, status: str | None) -> bool:
    return isinstance(exc, ccxt.AuthenticationError | binascii.Error) or status == "authenticationError"


def _is_rate_limit(exc: BaseException, status: str | None) -> bool:
    return isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection) or status == "apiLimitExceeded"


def _is_parse_failure(exc: BaseException) -> bool:
    # ccxt's parsers crash on malformed payloads with plain Python errors
    return isinstance(
        exc, ccxt.BadResponse | KeyError | TypeError | ValueError | AttributeError | IndexError | InvalidOperation
    ) and not isinstance(exc, binascii.Error)


def translate(
    op: Operation,
    exc: BaseException,
    *,
    http_status: int | None = None,
    body: str | None = None,
    redact: Callable[[str], str] = lambda s: s,
) -> Translation | None:
    """Map one failure of `op`. Returns None for exceptions that are not about the venue (our own bugs)."""
    if isinstance(exc, VenueError):
        return Translation(exc, venue_failure=False)
    if not isinstance(exc, ccxt.BaseError) and not _is_parse_failure(exc) and not isinstance(exc, binascii.Error):
        return None
    status = raw_status(exc, body)
    where = f"{op.value}: venue status {status or '-'}, HTTP {http_status or '-'}, {type(exc).__name__}"
    detail = redact(str(exc))[:_MAX_DETAIL]

    def msg(what: str) -> str:  # the venue's status code is raw venue text too
        return redact(f"{what} ({where}): {detail}")

    if _is_auth(exc, status):
        text = "the API secret is not valid base64" if isinstance(exc, binascii.Error) else "authentication failed"
        return Translation(AuthenticationFailed(msg(f"{text}; {_AUTH_ADVICE}"), venue_status=status), False)
    if op is Operation.PLACE:
        return _translate_place(exc, status, msg)
    if _is_rate_limit(exc, status):
        return Translation(
            RateLimited(msg("rate limited by the venue; back off and retry later"), venue_status=status), True
        )
    if op is Operation.READ:
        return _translate_read(exc, status, msg)
    return _translate_order_action(op, exc, status, msg)


def _translate_place(exc: BaseException, status: str | None, msg: Callable[[str], str]) -> Translation:
    if isinstance(exc, ccxt.DuplicateOrderId) or status == ORDER_EXISTS_STATUS:
        # The id is taken (Kraken: globally unique, filled and cancelled orders included). Some order of ours
        # carried it once; whether it is live, filled, cancelled or gone from every source only the evidence
        # lookup can say, so this is an unknown outcome to resolve, never "accepted" on its own.
        return Translation(
            OrderRejected(
                msg(f"{ORDER_EXISTS_STATUS}: the client order id was used before on the venue"),
                venue_status=ORDER_EXISTS_STATUS,
            ),
            venue_failure=False,
            place_outcome=OrderOutcome.UNKNOWN,
            raw_status=ORDER_EXISTS_STATUS,
        )
    if status in REFUSED_STATUSES:
        return Translation(
            OrderRejected(msg(f"the venue refused the order: {status}"), venue_status=status),
            venue_failure=False,
            place_outcome=OrderOutcome.REJECTED,
            raw_status=status,
        )
    if _is_rate_limit(exc, status):
        # Kraken's limiter answers before the matching engine sees the order: nothing was placed
        return Translation(
            RateLimited(
                msg("rate limited; the order was not placed, retry later with the same client order id"),
                venue_status=status,
            ),
            venue_failure=True,
            raw_status=status,
        )
    if isinstance(exc, ccxt.InvalidNonce):
        return Translation(
            VenueUnavailable(msg("nonce refused (clock or key reuse?); the order was not placed"), venue_status=status),
            venue_failure=True,
            raw_status=status,
        )
    definitive = ccxt.InvalidOrder | ccxt.BadRequest | ccxt.InsufficientFunds | ccxt.NotSupported
    if status not in AMBIGUOUS_STATUSES and isinstance(exc, definitive):
        reason = status or type(exc).__name__
        return Translation(
            OrderRejected(msg(f"the venue refused the order: {reason}"), venue_status=reason),
            venue_failure=False,
            place_outcome=OrderOutcome.REJECTED,
            raw_status=reason,
        )
    # timeouts, 5xx, garbage, connection drops: the request may have been processed
    return Translation(
        VenueUnavailable(
            msg("order outcome unknown; resolve by client order id, never re-send blindly"), venue_status=status
        ),
        venue_failure=True,
        place_outcome=OrderOutcome.UNKNOWN,
        raw_status=status,
    )


def _translate_read(exc: BaseException, status: str | None, msg: Callable[[str], str]) -> Translation:
    if _is_parse_failure(exc):
        return Translation(MalformedResponse(msg("the venue's answer could not be parsed"), venue_status=status), True)
    if isinstance(exc, ccxt.BadSymbol) or status == "contractNotFound":
        return Translation(UnknownSymbol(msg("not a tradeable instrument on this venue"), venue_status=status), False)
    if isinstance(exc, ccxt.OrderNotFound):
        return Translation(OrderNotFound(msg("the venue does not know this order now"), venue_status=status), False)
    return Translation(
        VenueUnavailable(msg("the venue did not answer usefully; retry later"), venue_status=status), True
    )


def _translate_order_action(
    op: Operation, exc: BaseException, status: str | None, msg: Callable[[str], str]
) -> Translation:
    if isinstance(exc, ccxt.OrderNotFound) or status in NOT_FOUND_STATUSES:
        return Translation(
            OrderNotFound(
                msg(
                    "the venue does not know this open order (cancelled, filled or never placed); "
                    "check fills and history"
                ),
                venue_status=status,
            ),
            False,
        )
    definitive = ccxt.InvalidOrder | ccxt.BadRequest | ccxt.InsufficientFunds | ccxt.NotSupported
    if status in REFUSED_STATUSES or (status not in AMBIGUOUS_STATUSES and isinstance(exc, definitive)):
        reason = status or type(exc).__name__
        return Translation(
            OrderRejected(msg(f"the venue refused to {op.value.split()[0]}: {reason}"), venue_status=reason), False
        )
    if _is_parse_failure(exc):
        return Translation(
            MalformedResponse(msg("the venue's answer could not be parsed; re-read the order"), venue_status=status),
            True,
        )
    # a cancel or an absolute edit can be repeated safely once the venue answers again
    return Translation(
        VenueUnavailable(msg("the venue did not answer usefully; retry later"), venue_status=status), True
    )
