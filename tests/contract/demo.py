"""Run the contract checks against a real Kraken Futures server (Kraken's demo environment by default).

    KRAKEN_DEMO_API_KEY=... KRAKEN_DEMO_API_SECRET=... python -m tests.contract.demo [--base-url URL] [--probe]

Reads every endpoint of `tests.contract.checks.READ_CHECKS` and validates the answers against our models of
Kraken's schemas. `--probe` also asks the server the questions only a real server can answer (docs/venue.md, "What
we verified against Kraken's spec"): it places far-from-market orders of the minimum size on the account, edits
and cancels them, and prints what the server said. Use it on the demo environment only.

Exit codes: 0 every answer matched the schemas, 1 some did not (each mismatch is printed), 2 usage or
configuration (missing keys, bad URL). Keys come from the environment only and are never printed.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import os
import sys
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import ccxt

from exchange.ccxt_venue import DEMO_BASE_URL, LIVE_BASE_URL, api_urls
from tests.contract.checks import READ_CHECKS, problems

KEY_ENV, SECRET_ENV = "KRAKEN_DEMO_API_KEY", "KRAKEN_DEMO_API_SECRET"


def client(base_url: str, key: str, secret: str, *, rate_limit: bool = True) -> Any:
    # ccxt's spacing on (a real server's budget is shared with whatever else uses the key)
    ex = ccxt.krakenfutures({"apiKey": key, "secret": secret, "timeout": 10000, "enableRateLimit": rate_limit})
    ex.urls["api"].update(api_urls(base_url))
    ex.options["maxRetriesOnFailure"] = 0
    return ex


def run_checks(ex: Any, out: Callable[[str], None]) -> int:
    failures = 0
    for check in READ_CHECKS:
        try:
            payload = check.call(ex)
        except ccxt.BaseError as exc:
            out(f"ERROR {check.name}: {type(exc).__name__}")
            failures += 1
            continue
        found = problems(check.model, payload)
        out(f"{'OK   ' if not found else 'FAIL '} {check.name}")
        for line in found[:20]:
            out(f"        {line}")
        failures += bool(found)
    return failures


def _answer(fn: Callable[[], Any]) -> str:
    try:
        raw = fn()
    except ccxt.BaseError as exc:
        return f"raised {type(exc).__name__}: {str(exc)[:160]}"
    status = raw.get("sendStatus") or raw.get("editStatus") or raw.get("cancelStatus") or raw
    return str(status.get("status") if isinstance(status, dict) else status)[:160]


def run_probes(ex: Any, out: Callable[[str], None]) -> None:
    """Questions the spec leaves to the server; each answer is printed for docs/venue.md."""
    ticker = ex.publicGetTickersSymbol({"symbol": "PF_XBTUSD"})["ticker"]
    far = int(float(ticker["markPrice"]) * 0.5)
    size = 0.0001
    cid = f"contract-probe-{uuid.uuid4().hex[:12]}"
    sent = ex.privatePostSendorder(
        {"orderType": "lmt", "symbol": "PF_XBTUSD", "side": "buy", "size": size, "limitPrice": far, "cliOrdId": cid}
    )
    oid = sent["sendStatus"].get("order_id")
    out(f"probe place far limit: {sent['sendStatus'].get('status')}")
    out("probe qtyMode default (RELATIVE) on an unfilled order, size 0.0002: " + _answer(
        lambda: ex.privatePostEditorder({"orderId": oid, "size": 0.0002})))  # fmt: skip
    out("probe cancel: " + _answer(lambda: ex.privatePostCancelorder({"order_id": oid})))
    out("probe reuse of a cancelled order's cliOrdId (spec: globally unique): " + _answer(
        lambda: ex.privatePostSendorder({"orderType": "lmt", "symbol": "PF_XBTUSD", "side": "buy", "size": size,
                                         "limitPrice": far, "cliOrdId": cid})))  # fmt: skip
    stop = ex.privatePostSendorder(
        {"orderType": "stp", "symbol": "PF_XBTUSD", "side": "buy", "size": size, "stopPrice": int(far * 3.5),
         "triggerSignal": "mark", "cliOrdId": cid + "-stp"}
    )  # fmt: skip
    sid = stop["sendStatus"].get("order_id")
    out(f"probe place far stop: {stop['sendStatus'].get('status')}")
    out("probe edit of a stop with size only (spec: stopPrice required): " + _answer(
        lambda: ex.privatePostEditorder({"orderId": sid, "size": 0.0002})))  # fmt: skip
    out("probe edit of a stop with size and stopPrice: " + _answer(
        lambda: ex.privatePostEditorder({"orderId": sid, "size": 0.0002, "stopPrice": int(far * 3.5),
                                         "qtyMode": "ABSOLUTE"})))  # fmt: skip
    out("probe cancel stop: " + _answer(lambda: ex.privatePostCancelorder({"order_id": sid})))
    first = ex.historyGetOrders({"count": 1})
    token = first.get("continuationToken")
    if token:
        snake = ex.historyGetOrders({"count": 1, "continuation_token": token})
        camel = ex.historyGetOrders({"count": 1, "continuationToken": token})
        page1 = [e.get("uid") for e in first.get("elements", [])]
        out(f"probe history paging: continuation_token moves on: {[e.get('uid') for e in snake['elements']] != page1}; "
            f"continuationToken moves on: {[e.get('uid') for e in camel['elements']] != page1}")  # fmt: skip
    triggers = ex.historyGetTriggers({"count": 20})
    kinds = sorted({k for e in triggers.get("elements", []) for k in e.get("event", {})})
    out(f"probe trigger history event kinds after the stop edit: {kinds}")


def main(
    argv: list[str],
    environ: dict[str, str] | None = None,
    out: Callable[[str], None] = print,
    *,
    rate_limit: bool = True,
) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.contract.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default=DEMO_BASE_URL, help=f"default {DEMO_BASE_URL}")
    parser.add_argument("--probe", action="store_true", help="also place, edit and cancel tiny far orders (demo)")
    args = parser.parse_args(argv)
    env: Mapping[str, str] = os.environ if environ is None else environ
    key, secret = env.get(KEY_ENV, ""), env.get(SECRET_ENV, "")
    if not key or not secret:
        out(f"contract demo: set {KEY_ENV} and {SECRET_ENV} (Kraken demo keys) in the environment")
        return 2
    try:
        base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        out(f"contract demo: {SECRET_ENV} is not valid base64; copy it again from the demo key page")
        return 2
    if not args.base_url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        out(f"contract demo: --base-url must be an https URL (or a local simulator), got {args.base_url!r}")
        return 2
    if args.probe and args.base_url.rstrip("/") == LIVE_BASE_URL:
        out("contract demo: --probe places orders; it is refused against live Kraken (use the demo environment)")
        return 2
    ex = client(args.base_url, key, secret, rate_limit=rate_limit)
    failures = run_checks(ex, out)
    if args.probe:
        run_probes(ex, out)
    out(f"contract demo: {len(READ_CHECKS) - failures} of {len(READ_CHECKS)} endpoints match Kraken's schemas")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
