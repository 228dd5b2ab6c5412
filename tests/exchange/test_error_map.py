"""Error translation by operation and raw status. The exceptions are produced by ccxt's own krakenfutures
error handling (`handle_errors`, `verify_order_action_success`, `handle_http_status_code`), not hand-made."""

from __future__ import annotations

import json

import ccxt
import pytest

from exchange.error_map import REFUSED_STATUSES, Operation, raw_status, translate
from exchange.errors import (
    AuthenticationFailed,
    MalformedResponse,
    OrderNotFound,
    OrderRejected,
    RateLimited,
    UnknownSymbol,
    VenueUnavailable,
)
from lifecycle.values import OrderOutcome

EX = ccxt.krakenfutures()
URL = "http://127.0.0.1:1/derivatives/api/v3/sendorder"


def from_body(code: int, body: str) -> Exception:
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    try:
        EX.handle_errors(code, "reason", URL, "POST", {}, body, parsed, {}, "")
        EX.handle_http_status_code(code, "reason", URL, "POST", body)
    except ccxt.BaseError as exc:
        error: Exception = exc
        return error
    raise AssertionError(f"ccxt raised nothing for {code} {body!r}")


def from_send_status(status: str, method: str = "createOrder") -> Exception:
    try:
        EX.verify_order_action_success(status, method, ["filled"] if method != "cancelOrder" else [])
    except ccxt.BaseError as exc:
        error: Exception = exc
        return error
    raise AssertionError(f"ccxt raised nothing for sendStatus {status}")


def place(exc: BaseException, code: int | None = None, body: str | None = None) -> tuple[OrderOutcome | None, object]:
    t = translate(Operation.PLACE, exc, http_status=code, body=body)
    assert t is not None
    return t.place_outcome, t.error


def test_http_500_server_error_on_sendorder_is_unknown_not_rejected() -> None:
    body = '{"result":"error","error":"Server Error"}'
    exc = from_body(500, body)
    assert type(exc) is ccxt.ExchangeError  # what ccxt says ...
    t = translate(Operation.PLACE, exc, http_status=500, body=body)
    assert t is not None
    assert t.place_outcome is OrderOutcome.UNKNOWN  # ... and what it means
    assert t.venue_failure


def test_market_suspended_is_a_refusal_despite_exchange_not_available() -> None:
    exc = from_send_status("marketSuspended")
    assert isinstance(exc, ccxt.ExchangeNotAvailable)
    outcome, error = place(exc)
    assert outcome is OrderOutcome.REJECTED
    assert isinstance(error, OrderRejected) and error.venue_status == "marketSuspended"


def test_duplicate_client_order_id_is_resolved_by_evidence_not_assumed_accepted() -> None:
    exc = from_send_status("clientOrderIdAlreadyExist")
    assert isinstance(exc, ccxt.InvalidOrder)
    outcome, error = place(exc)
    assert outcome is OrderOutcome.UNKNOWN  # the adapter's evidence lookup decides, as after a timeout
    assert isinstance(error, OrderRejected) and error.venue_status == "clientOrderIdAlreadyExist"


@pytest.mark.parametrize(
    "exc",
    [
        ccxt.RequestTimeout("krakenfutures POST " + URL),
        ccxt.NetworkError("krakenfutures POST " + URL),
        from_body(502, "<html>bad gateway</html>"),
        from_body(503, "Service Unavailable"),
        from_body(500, '{"error":"unknownError"}'),
        ccxt.BadResponse("krakenfutures HTTP 200: the body is not JSON"),
    ],
    ids=["timeout", "network", "502", "503", "unknownError", "garbage"],
)
def test_ambiguous_send_failures_are_unknown(exc: Exception) -> None:
    outcome, error = place(exc)
    assert outcome is OrderOutcome.UNKNOWN
    assert isinstance(error, VenueUnavailable)


@pytest.mark.parametrize(
    "status",
    [
        "insufficientAvailableFunds",
        "wouldNotReducePosition",
        "selfFill",
        "invalidSize",
        "postWouldExecute",
        "iocWouldNotExecute",
        "maxPositionViolation",
        "marketInactive",
    ],
)
def test_every_raising_send_status_that_is_a_refusal_maps_to_rejected(status: str) -> None:
    outcome, error = place(from_send_status(status))
    assert outcome is OrderOutcome.REJECTED
    assert isinstance(error, OrderRejected) and error.venue_status == status


def test_insufficient_margin_in_a_500_errors_list_is_a_refusal() -> None:
    body = '{"errors":[{"code":92,"message":"INSUFFICIENT_MARGIN"}]}'
    outcome, _ = place(from_body(500, body), 500, body)
    assert outcome is OrderOutcome.REJECTED


@pytest.mark.parametrize(
    ("code", "body"), [(429, '{"result":"error","error":"apiLimitExceeded"}'), (200, '{"error":"apiLimitExceeded"}')]
)
def test_rate_limits_raise_rate_limited_for_every_operation(code: int, body: str) -> None:
    exc = from_body(code, body)
    for op in Operation:
        t = translate(op, exc, http_status=code, body=body)
        assert t is not None and isinstance(t.error, RateLimited), op
        assert t.place_outcome is None and t.venue_failure


def test_authentication_errors_are_typed_and_never_breaker_failures() -> None:
    for exc in (from_body(401, '{"error":"authenticationError"}'), from_body(401, "unauthorized")):
        for op in Operation:
            t = translate(op, exc)
            assert t is not None and isinstance(t.error, AuthenticationFailed)
            assert not t.venue_failure and t.place_outcome is None
            assert "not retried" in str(t.error)


def test_reads() -> None:
    def read(exc: Exception) -> object:
        t = translate(Operation.READ, exc)
        assert t is not None
        return t.error

    assert isinstance(read(ccxt.BadResponse("garbage")), MalformedResponse)
    assert isinstance(read(KeyError("openOrders")), MalformedResponse)
    assert isinstance(read(from_body(200, '{"error":"contractNotFound"}')), UnknownSymbol)
    assert isinstance(read(from_body(503, "down")), VenueUnavailable)
    assert isinstance(read(from_body(500, '{"error":"Server Error"}')), VenueUnavailable)


def test_cancel_and_edit_not_found_and_refusals() -> None:
    for status, op in (
        ("notFound", Operation.CANCEL),
        ("filled", Operation.CANCEL),
        ("orderForEditNotFound", Operation.EDIT),
    ):
        t = translate(op, from_send_status(status, "cancelOrder" if op is Operation.CANCEL else "editOrder"))
        assert t is not None and isinstance(t.error, OrderNotFound) and t.error.venue_status == status
    t = translate(Operation.EDIT, from_send_status("orderForEditNotAStop", "editOrder"))
    assert t is not None and isinstance(t.error, OrderRejected) and not t.venue_failure
    t = translate(Operation.CANCEL, ccxt.RequestTimeout("t"))
    assert t is not None and isinstance(t.error, VenueUnavailable) and t.error.retry_safe


def test_our_own_bugs_are_not_translated() -> None:
    assert translate(Operation.PLACE, RuntimeError("bug")) is None


def test_raw_status_sources() -> None:
    assert raw_status(from_send_status("selfFill")) == "selfFill"
    assert raw_status(ccxt.ExchangeError("x"), '{"error":"Server Error"}') == "Server Error"
    assert raw_status(from_body(400, '{"errors":[{"code":11,"message":"invalid order type"}]}')) == "invalid order type"
    assert raw_status(ccxt.ExchangeError("no body here")) is None
    assert "wouldCauseLiquidation" in REFUSED_STATUSES  # a silent rejection ccxt never raises for


def test_messages_are_redacted() -> None:
    secret = "S3CRETSECRETSECRET"
    exc = ccxt.ExchangeError(f"krakenfutures echo {secret}")
    t = translate(Operation.READ, exc, redact=lambda s: s.replace(secret, "<redacted>"))
    assert t is not None
    assert secret not in str(t.error) and "<redacted>" in str(t.error)


def test_the_venue_status_is_redacted_too() -> None:
    """The status string comes from the response body, apart from the exception text: it passes the redactor."""
    secret = "S3CRETSECRETSECRET"
    exc = ccxt.ExchangeError("krakenfutures: no json in this message")
    t = translate(Operation.READ, exc, body='{"error":"' + secret + '"}', redact=lambda s: s.replace(secret, "~"))
    assert t is not None
    assert raw_status(exc, '{"error":"' + secret + '"}') == secret
    assert secret not in str(t.error) and "venue status ~" in str(t.error)
