"""Kraken's account-log answer (`{"logs": [AccountLogEntry, ...]}`) as `lifecycle.account_log.AccountLogEntry`."""

from __future__ import annotations

from collections.abc import Callable

from exchange import kraken_parse as kp
from lifecycle.account_log import AccountLogEntry


def entries(payload: object, key: Callable[[str], str]) -> list[AccountLogEntry]:
    out: list[AccountLogEntry] = []
    for raw in kp.require(payload, "logs", list, "account-log"):
        what = f"account-log[{raw.get('id')!r}]"
        contract = raw.get("contract")
        execution = raw.get("execution")
        out.append(
            AccountLogEntry(
                entry_id=int(raw["id"]),
                time=kp.when(raw.get("date"), f"{what}.date"),
                info=str(raw.get("info") or ""),
                cash=str(raw.get("asset") or "").lower() == "usd",
                symbol=key(str(contract).upper()) if contract else None,
                fill_id=str(execution) if execution else None,
                fee=kp.opt_dec(raw.get("fee"), f"{what}.fee"),
                realized_funding=kp.opt_dec(raw.get("realized_funding"), f"{what}.realized_funding"),
            )
        )
    return sorted(out, key=lambda e: e.entry_id)
