"""History `quantity` (spec: history/api-public.yml `HistoricalOrder.quantity`, meaning unstated): the parser must
read an order's status right whether Kraken sends the remaining size or the original size."""

from __future__ import annotations

from typing import Any

import pytest

from exchange import kraken_parse as kp
from lifecycle.values import OrderStatus


def _order(quantity: str, filled: str) -> dict[str, Any]:
    return {
        "uid": "6a3f3b5e-0000-4000-8000-000000000001", "accountUid": "a", "tradeable": "PF_XBTUSD",
        "direction": "Buy", "quantity": quantity, "filled": filled, "timestamp": 1, "limitPrice": "60000",
        "orderType": "Limit", "clientId": "cid", "reduceOnly": False, "lastUpdateTimestamp": 2, "spotData": None,
    }  # fmt: skip


def _updated(old: tuple[str, str], new: tuple[str, str]) -> dict[str, Any]:
    body = {"oldOrder": _order(*old), "newOrder": _order(*new), "reason": "x", "reducedQuantity": "0"}
    return {"elements": [{"uid": "e", "timestamp": 5, "event": {"OrderUpdated": body}}], "len": 1}


@pytest.mark.parametrize(
    ("old", "new", "status", "size"),
    [
        # remaining reading: 10 ordered, 6 then 10 filled
        (("10", "0"), ("4", "6"), OrderStatus.OPEN, "10"),
        (("4", "6"), ("0", "10"), OrderStatus.FILLED, "10"),
        # original reading: quantity stays 10
        (("10", "0"), ("10", "6"), OrderStatus.OPEN, "10"),
        (("10", "6"), ("10", "10"), OrderStatus.FILLED, "10"),
        # remaining reading where what is left equals what filled: not to be mistaken for "all filled"
        (("10", "0"), ("5", "5"), OrderStatus.OPEN, "10"),
    ],
)
def test_status_from_an_update_under_both_readings(
    old: tuple[str, str], new: tuple[str, str], status: OrderStatus, size: str
) -> None:
    found = kp.history_order(_updated(old, new), "cid", str, False)
    assert found is not None and found.status is status and str(found.size) == size


def test_an_event_that_cannot_tell_is_filled_only_when_both_readings_agree() -> None:
    edit = _updated(("10", "6"), ("10", "6"))  # no fill in the event: the reading is unknown
    found = kp.history_order(edit, "cid", str, False)
    assert found is not None and found.status is OrderStatus.OPEN
    done = _updated(("0", "10"), ("0", "10"))
    found = kp.history_order(done, "cid", str, False)
    assert found is not None and found.status is OrderStatus.FILLED
