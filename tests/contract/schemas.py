"""Kraken Futures' published response schemas, as our own pydantic models (facts, not copies of the spec).

Source: Kraken's OpenAPI files in the public repository `krakenfx/api-specs`, branch `feature/openapi-spec`:
`futures-rest/trading/public.yml` (v3, with `trading/_schemas.yml`), `futures-rest/history/api-public.yml` (v3,
with `history/_schemas.yml`), `futures-rest/charts/api-public.yml` (v1). Each model names the file and the schema
it encodes. What each model checks: required fields present, JSON numbers where the spec says `number`, strings
where it says `string` (decimal strings in history and charts), enums, nullability. Extra fields are allowed
(the spec does not forbid them). Where the spec contradicts itself the model says so and accepts what Kraken's
own example shows.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

Num = StrictInt | StrictFloat  # `type: number`: a JSON number, never a string
DecimalString = Annotated[StrictStr, Field(pattern=r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")]  # `format: decimal`
Millis = StrictInt  # `TimestampMilliseconds`


class Spec(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


# ---------------------------------------------------------------------- trading/public.yml (derivatives v3)
class SuccessResponse(Spec):
    """trading/public.yml `SuccessResponse` = `ResultSuccess` + `ServerTime`."""

    result: Literal["success"]
    serverTime: StrictStr


class ErrorResponse(Spec):
    """trading/public.yml `ErrorResponse` = `error` (+ optional `errors`) + `ResultError` + `ServerTime`."""

    result: Literal["error"]
    serverTime: StrictStr
    error: StrictStr


class MarginLevel(Spec):
    """trading/public.yml `MarginLevel`: initial and maintenance margin required; the tier bound is `contracts`
    (inverse) or `numNonContractUnits` (linear), each nullable."""

    initialMargin: Num
    maintenanceMargin: Num
    contracts: StrictInt | None = None
    numNonContractUnits: Num | None = None


class Instrument(Spec):
    """trading/public.yml `Instrument`: required `tradeable`, `symbol`, `tradfi`; `type` enum."""

    symbol: StrictStr
    tradeable: StrictBool
    tradfi: StrictBool
    type: Literal["flexible_futures", "futures_inverse", "futures_vanilla"] | None = None
    tickSize: Num | None = None
    contractSize: Num | None = None
    contractValueTradePrecision: Num | None = None
    marginLevels: list[MarginLevel] | None = None
    retailMarginLevels: list[MarginLevel] | None = None
    maxPositionSize: Num | None = None
    postOnly: StrictBool | None = None


class InstrumentsResponse(SuccessResponse):
    instruments: list[Instrument]


class MarketTicker(Spec):
    """trading/public.yml `MarketTicker`: required symbol, tag, pair, markPrice, volumeQuote, openInterest,
    suspended, indexPrice, postOnly."""

    symbol: StrictStr
    tag: Literal["perpetual", "month", "quarter", "semiannual"]
    pair: StrictStr
    markPrice: Num
    volumeQuote: Num
    openInterest: Num
    suspended: StrictBool
    indexPrice: Num
    postOnly: StrictBool
    last: Num | None = None
    bid: Num | None = None
    ask: Num | None = None
    fundingRate: Num | None = None


class TickersResponse(SuccessResponse):
    tickers: list[MarketTicker]


class TickerResponse(SuccessResponse):
    ticker: MarketTicker


class OpenPositionJson(Spec):
    """trading/_schemas.yml `OpenPositionJson`: required symbol, side, size, price, fillTime, unrealizedFunding
    (nullable)."""

    symbol: StrictStr
    side: Literal["long", "short"]
    size: Num
    price: Num
    fillTime: StrictStr
    unrealizedFunding: Num | None
    pnlCurrency: Literal["USD", "EUR", "GBP", "USDC", "USDT", "BTC", "ETH"] | None = None
    maxFixedLeverage: Num | None = None


class OpenPositionsResponse(SuccessResponse):
    openPositions: list[OpenPositionJson]


class OpenOrderJson(Spec):
    """trading/public.yml `OpenOrderJson`: `orderType` is `lmt`, `stop` or `take_profit` (not `stp`)."""

    order_id: StrictStr
    status: Literal["untouched", "partiallyFilled"]
    side: Literal["buy", "sell"]
    orderType: Literal["lmt", "stop", "take_profit"]
    symbol: StrictStr
    filledSize: Num
    reduceOnly: StrictBool
    receivedTime: StrictStr
    lastUpdateTime: StrictStr
    cliOrdId: StrictStr | None = None
    limitPrice: Num | None = None
    stopPrice: Num | None = None
    unfilledSize: Num | None = None
    triggerSignal: Literal["mark", "last", "spot"] | None = None


class OpenOrdersResponse(SuccessResponse):
    openOrders: list[OpenOrderJson]


class FillJson(Spec):
    """trading/public.yml `FillJson`: required fill_id, symbol, side, order_id, size, price, fillTime,
    fillType."""

    fill_id: StrictStr
    symbol: StrictStr
    side: Literal["buy", "sell"]
    order_id: StrictStr
    size: Num
    price: Num
    fillTime: StrictStr
    fillType: Literal[
        "maker",
        "taker",
        "liquidation",
        "assignor",
        "assignee",
        "takerAfterEdit",
        "unwindBankrupt",
        "unwindCounterparty",
    ]
    cliOrdId: StrictStr | None = None


class FillsResponse(SuccessResponse):
    fills: list[FillJson]


class FlexCurrency(Spec):
    """trading/public.yml `FlexCurrencyBalance` without `currency`: the schema says `currencies` is an array of
    these, but Kraken's own `AccountsExample` (and ccxt) has an object keyed by currency; the example's form."""

    quantity: Num
    value: Num
    collateral: Num
    available: Num


class FlexAccountBalance(Spec):
    """trading/public.yml `FlexAccountBalance`: every account-wide margin figure required, all numbers."""

    currencies: dict[str, FlexCurrency]
    initialMargin: Num
    initialMarginWithOrders: Num
    maintenanceMargin: Num
    balanceValue: Num
    portfolioValue: Num
    collateralValue: Num
    pnl: Num
    unrealizedFunding: Num
    totalUnrealized: Num
    totalUnrealizedAsMargin: Num
    availableMargin: Num
    marginEquity: Num


class Accounts(Spec):
    """trading/public.yml `/accounts`: `cash` and `flex` always present."""

    cash: dict[str, object]
    flex: FlexAccountBalance


class AccountsResponse(SuccessResponse):
    accounts: Accounts


class OrderJson(Spec):
    """trading/public.yml `OrderJson` (the order inside PLACE, EXECUTION, EDIT and CANCEL events): every field
    required, `limitPrice` a number."""

    orderId: StrictStr
    cliOrdId: StrictStr | None
    type: Literal["lmt", "ioc", "post", "liquidation", "assignment", "stp", "unwind", "block", "fok"]
    symbol: StrictStr
    side: Literal["buy", "sell"]
    quantity: Num
    filled: Num
    limitPrice: Num
    reduceOnly: StrictBool
    timestamp: StrictStr
    lastUpdateTimestamp: StrictStr


class OrderTriggerJson(Spec):
    """trading/public.yml `OrderTriggerJson` (the `orderTrigger` of a PLACE event for a stop or take-profit)."""

    uid: StrictStr
    clientId: StrictStr | None
    type: Literal["lmt", "ioc", "post", "liquidation", "assignment", "stp", "unwind", "fok"]
    symbol: StrictStr
    side: Literal["buy", "sell"]
    quantity: Num | None
    limitPrice: Num | None
    triggerPrice: Num | None
    triggerSide: Literal["trigger_above", "trigger_below"] | None
    triggerSignal: Literal["mark_price", "last_price", "spot_price"] | None
    reduceOnly: StrictBool
    timestamp: StrictStr
    lastUpdateTimestamp: StrictStr


class PlaceEvent(Spec):
    """trading/public.yml `PlaceEvent`."""

    type: Literal["PLACE"]
    order: OrderJson
    reducedQuantity: Num | None


class PlaceTriggerEvent(Spec):
    """trading/public.yml `PlaceTriggerEvent`."""

    type: Literal["PLACE"]
    orderTrigger: OrderTriggerJson


class ExecuteEvent(Spec):
    """trading/public.yml `ExecuteEvent`."""

    type: Literal["EXECUTION"]
    executionId: StrictStr
    price: Num
    amount: Num
    orderPriorEdit: OrderJson | None
    orderPriorExecution: OrderJson
    takerReducedQuantity: Num | None


class EditEvent(Spec):
    """trading/public.yml `EditEvent`: `old` and `new` are `OrderJson`."""

    type: Literal["EDIT"]
    old: OrderJson
    new: OrderJson
    reducedQuantity: Num | None


class CancelEvent(Spec):
    """trading/public.yml `CancelEvent`."""

    type: Literal["CANCEL"]
    uid: StrictStr
    order: OrderJson | None


class CancelTriggerEvent(Spec):
    """trading/public.yml `CancelTriggerEvent`: a cancelled stop or take-profit comes as `orderTrigger`."""

    type: Literal["CANCEL"]
    uid: StrictStr
    orderTrigger: OrderTriggerJson | None


# `OrderEvent` oneOf
OrderEvent = PlaceEvent | PlaceTriggerEvent | ExecuteEvent | EditEvent | CancelEvent | CancelTriggerEvent


class CachedOrderJson(Spec):
    """trading/public.yml `CachedOrderJson` (the order of `orders/status`): `algoId` among the required."""

    type: Literal["TRIGGER_ORDER", "ORDER"]
    orderId: StrictStr
    cliOrdId: StrictStr | None
    symbol: StrictStr
    side: StrictStr
    quantity: Num | None
    filled: Num | None
    limitPrice: Num | None
    reduceOnly: StrictBool
    timestamp: StrictStr
    lastUpdateTimestamp: StrictStr
    algoId: StrictStr | None
    priceTriggerOptions: dict[str, object] | None
    triggerTime: StrictStr | None


class OrderStatusDetailsJson(Spec):
    """trading/public.yml `OrderStatusDetailsJson`: `status` is `OrderStatusJson` (no PARTIALLY_FILLED in it)."""

    order: CachedOrderJson
    status: Literal[
        "ENTERED_BOOK", "FULLY_EXECUTED", "REJECTED", "CANCELLED", "TRIGGER_PLACED", "TRIGGER_ACTIVATION_FAILURE"
    ]
    updateReason: StrictStr | None
    error: StrictStr | None


class OrdersStatusResponse(SuccessResponse):
    orders: list[OrderStatusDetailsJson]


SEND_STATUSES = Literal[
    "placed", "partiallyFilled", "filled", "cancelled", "edited", "marketSuspended", "marketInactive",
    "invalidPrice", "invalidSize", "tooManySmallOrders", "insufficientAvailableFunds", "wouldCauseLiquidation",
    "clientOrderIdAlreadyExist", "clientOrderIdTooBig", "maxPositionViolation", "outsidePriceCollar",
    "wouldIncreasePriceDislocation", "notFound", "orderForEditNotAStop", "orderForEditNotFound",
    "postWouldExecute", "iocWouldNotExecute", "selfFill", "wouldNotReducePosition", "marketIsPostOnly",
    "tooManyOrders", "fixedLeverageTooHigh", "clientOrderIdInvalid", "cannotEditTriggerPriceOfTrailingStop",
    "cannotEditLimitPriceOfTrailingStop", "wouldProcessAfterSpecifiedTime",
]  # fmt: skip


class SendOrderJson(Spec):
    """trading/public.yml `SendOrderJson`: `status` (its enum) required; `orderEvents` a list."""

    status: SEND_STATUSES
    orderEvents: list[OrderEvent] | None = None
    order_id: StrictStr | None = None
    receivedTime: StrictStr | None = None
    cliOrdId: StrictStr | None = None


class SendOrderResponse(SuccessResponse):
    sendStatus: SendOrderJson


class EditOrderStatus(Spec):
    """trading/public.yml `EditOrderStatus`: `status` (its enum) and `orderEvents` required."""

    status: Literal[
        "edited", "invalidSize", "invalidPrice", "insufficientAvailableFunds", "selfFill", "tooManySmallOrders",
        "outsidePriceCollar", "postWouldExecute", "wouldNotReducePosition", "orderForEditNotFound",
        "orderForEditNotAStop",
    ]  # fmt: skip
    orderEvents: list[OrderEvent]
    orderId: StrictStr | None = None


class EditOrderResponse(SuccessResponse):
    editStatus: EditOrderStatus


class CancelOrderStatusJson(Spec):
    """trading/public.yml `CancelOrderStatusJson`: `status` in cancelled, filled, notFound."""

    status: Literal["cancelled", "filled", "notFound"]
    orderEvents: list[OrderEvent] | None = None
    order_id: StrictStr | None = None
    receivedTime: StrictStr | None = None


class CancelOrderResponse(SuccessResponse):
    cancelStatus: CancelOrderStatusJson


class BatchInstructionResult(Spec):
    """trading/public.yml `BatchInstructionResult`: `status` and `orderEvents` required. Its status enum spells
    `clientOrderIdTooLong` where `SendOrderJson` says `clientOrderIdTooBig` (the spec disagrees with itself)."""

    status: Literal[
        "placed", "edited", "cancelled", "invalidOrderType", "invalidSide", "invalidSize", "invalidPrice",
        "insufficientAvailableFunds", "selfFill", "tooManySmallOrders", "marketSuspended", "marketInactive",
        "clientOrderIdAlreadyExist", "clientOrderIdTooLong", "outsidePriceCollar", "postWouldExecute",
        "iocWouldNotExecute",
    ]  # fmt: skip
    orderEvents: list[OrderEvent]
    order_id: StrictStr | None = None
    order_tag: StrictStr | None = None
    dateTimeReceived: StrictStr | None = None


class BatchOrderResponse(SuccessResponse):
    batchStatus: list[BatchInstructionResult]


class CancelAllOrdersStatusJson(Spec):
    """trading/public.yml `CancelAllOrdersStatusJson`: every field required. Its events are `CancelEvent`s; a
    cancelled stop is accepted as `CancelTriggerEvent` too (how `cancelorder` reports one)."""

    cancelOnly: StrictStr
    cancelledOrders: list[dict[str, object]]
    orderEvents: list[CancelEvent | CancelTriggerEvent]
    receivedTime: StrictStr
    status: Literal["noOrdersToCancel", "cancelled"]


class CancelAllOrdersResponse(SuccessResponse):
    cancelStatus: CancelAllOrdersStatusJson


class DeadManSwitchStatusJson(Spec):
    """trading/public.yml `DeadManSwitchStatusJson`."""

    currentTime: StrictStr
    triggerTime: StrictStr


class DeadManSwitchResponse(SuccessResponse):
    status: DeadManSwitchStatusJson


class LeveragePreference(Spec):
    """trading/public.yml `LeveragePreference`."""

    symbol: StrictStr
    maxLeverage: Num


class LeveragePreferencesResponse(SuccessResponse):
    leveragePreferences: list[LeveragePreference]


# ---------------------------------------------------------------------- history/api-public.yml (history v3)
class HistoricalOrder(Spec):
    """history/api-public.yml `HistoricalOrder`: decimals are strings; `orderType` enum; `spotData` required
    (nullable)."""

    uid: StrictStr
    accountUid: StrictStr
    tradeable: StrictStr
    direction: Literal["Buy", "Sell"]
    quantity: DecimalString
    filled: DecimalString
    timestamp: Millis
    limitPrice: DecimalString
    orderType: Literal["Limit", "IoC", "Post", "Market", "Liquidation", "Assignment", "Unwind"]
    clientId: StrictStr
    reduceOnly: StrictBool
    lastUpdateTimestamp: Millis
    spotData: StrictStr | None


class TriggerOptions(Spec):
    """history/api-public.yml `TriggerOptions`: triggerPrice (decimal string), signal and side enums;
    `trailingStopOptions` and `limitPriceOffset` required (null when the trigger has none)."""

    triggerPrice: DecimalString
    triggerSignal: Literal["MarkPrice", "LastPrice", "SpotPrice"]
    triggerSide: Literal["Above", "Below"]
    trailingStopOptions: dict[str, object] | None
    limitPriceOffset: dict[str, object] | None


class HistoricalTrigger(Spec):
    """history/api-public.yml `HistoricalTrigger`."""

    uid: StrictStr
    accountId: Num
    accountUid: StrictStr
    tradeable: StrictStr
    direction: Literal["Buy", "Sell"]
    quantity: DecimalString
    timestamp: Millis
    limitPrice: DecimalString
    orderType: StrictStr
    clientId: StrictStr
    reduceOnly: StrictBool
    lastUpdateTimestamp: Millis
    triggerOptions: TriggerOptions


class OrderPlacedEvent(Spec):
    """history/api-public.yml `OrderPlaced`."""

    order: HistoricalOrder
    reason: StrictStr
    reducedQuantity: StrictStr


class OrderUpdatedEvent(Spec):
    """history/api-public.yml `OrderUpdated`: `reducedQuantity` is a decimal string."""

    oldOrder: HistoricalOrder
    newOrder: HistoricalOrder
    reason: StrictStr
    reducedQuantity: DecimalString


class OrderRejectedEvent(Spec):
    """history/api-public.yml `OrderRejected`: `orderError` required."""

    order: HistoricalOrder
    orderError: StrictStr
    reason: StrictStr


class OrderCancelledEvent(Spec):
    """history/api-public.yml `OrderCancelled`."""

    order: HistoricalOrder
    reason: StrictStr


class HistoricalOrderEvent(Spec):
    """history/api-public.yml `HistoricalOrderEvent`: exactly one of these keys."""

    OrderPlaced: OrderPlacedEvent | None = None
    OrderUpdated: OrderUpdatedEvent | None = None
    OrderRejected: OrderRejectedEvent | None = None
    OrderCancelled: OrderCancelledEvent | None = None


class TriggerWithReasonEvent(Spec):
    """history/api-public.yml `TriggerPlaced` / `TriggerCancelled`."""

    order: HistoricalTrigger
    reason: StrictStr


class TriggerActivatedEvent(Spec):
    order: HistoricalTrigger


class TriggerUpdatedEvent(Spec):
    """history/api-public.yml `TriggerUpdated` (the event `OrderTriggerUpdated`)."""

    oldOrderTrigger: HistoricalTrigger
    newOrderTrigger: HistoricalTrigger
    reason: StrictStr


class HistoricalTriggerEvent(Spec):
    OrderTriggerPlaced: TriggerWithReasonEvent | None = None
    OrderTriggerCancelled: TriggerWithReasonEvent | None = None
    OrderTriggerActivated: TriggerActivatedEvent | None = None
    OrderTriggerUpdated: TriggerUpdatedEvent | None = None


class HistoricalOrderElement(Spec):
    uid: StrictStr
    timestamp: Millis
    event: HistoricalOrderEvent


class HistoricalTriggerElement(Spec):
    uid: StrictStr
    timestamp: Millis
    event: HistoricalTriggerEvent


class OrdersHistory(Spec):
    """history/api-public.yml `/orders` answer: `len` and `elements` required; `continuationToken` an opaque
    (base64) string when there is more."""

    len: StrictInt
    elements: list[HistoricalOrderElement]
    accountUid: StrictStr | None = None
    continuationToken: StrictStr | None = None


class TriggersHistory(Spec):
    len: StrictInt
    elements: list[HistoricalTriggerElement]
    accountUid: StrictStr | None = None
    continuationToken: StrictStr | None = None


class HistoricalExecution(Spec):
    """history/api-public.yml `HistoricalExecution`: both orders in full, decimals as strings,
    `makerOrderData`/`takerOrderData` required (nullable)."""

    uid: StrictStr
    makerOrder: HistoricalOrder
    takerOrder: HistoricalOrder
    timestamp: Millis
    quantity: DecimalString
    price: DecimalString
    markPrice: DecimalString
    limitFilled: StrictBool
    usdValue: DecimalString
    makerOrderData: dict[str, object] | None
    takerOrderData: dict[str, object] | None


class HistoricalExecutionDetails(Spec):
    """history/api-public.yml `HistoricalExecutionDetails`: `takerReducedQuantity` a string ("sometimes empty")."""

    execution: HistoricalExecution
    takerReducedQuantity: StrictStr


class HistoricalExecutionEvent(Spec):
    Execution: HistoricalExecutionDetails


class HistoricalExecutionElement(Spec):
    uid: StrictStr
    timestamp: Millis
    event: HistoricalExecutionEvent


class ExecutionsHistory(Spec):
    """history/api-public.yml `/executions` answer."""

    len: StrictInt
    elements: list[HistoricalExecutionElement]
    accountUid: StrictStr | None = None
    continuationToken: StrictStr | None = None


INFO = Literal[
    "futures trade", "futures liquidation", "futures assignor", "futures assignee", "futures unwind counterparty",
    "futures unwind bankrupt", "covered liquidation", "funding rate change", "conversion", "interest payment",
    "transfer", "cross-exchange transfer", "kfee applied", "subaccount transfer", "settlement", "admin transfer",
]  # fmt: skip


class AccountLogEntry(Spec):
    """history/_schemas.yml `AccountLogEntry`: every field of its `required` list, numbers nullable where the
    schema allows, `id` ≥ 1."""

    asset: StrictStr
    booking_uid: StrictStr
    collateral: StrictStr | None
    contract: StrictStr | None
    date: StrictStr
    execution: StrictStr | None
    fee: Num | None
    funding_rate: Num | None
    id: Annotated[StrictInt, Field(ge=1)]
    info: INFO
    margin_account: StrictStr
    mark_price: Num | None
    new_average_entry_price: Num | None
    new_balance: Num
    old_average_entry_price: Num | None
    old_balance: Num
    realized_funding: Num | None
    realized_pnl: Num | None
    trade_price: Num | None
    conversion_spread_percentage: Num | None
    liquidation_fee: Num | None


class AccountLog(Spec):
    """history/api-public.yml `/account-log` answer: `accountUid` and `logs` required."""

    accountUid: StrictStr
    logs: list[AccountLogEntry]


# ---------------------------------------------------------------------- charts/api-public.yml (charts v1)
class Candlestick(Spec):
    """charts/api-public.yml `Candlestick`: `time` epoch ms; prices big-decimal strings; `volume` a number."""

    time: Millis
    open: DecimalString
    high: DecimalString
    low: DecimalString
    close: DecimalString
    volume: Num


class CandlesResponse(Spec):
    """charts/api-public.yml `CandlesResponse`: `candles` and `more_candles` required."""

    candles: list[Candlestick]
    more_candles: StrictBool
