"""The registry schema (peewee on SQLite). This module is the schema's single definition.

Quantities are integer units (`lifecycle.units`); prices are Decimal stored as text; times are integer epoch
milliseconds (UTC) so that nothing depends on a driver's datetime parsing.
"""

from __future__ import annotations

import peewee as pw

SCHEMA_VERSION = 7

db_proxy = pw.DatabaseProxy()


class BaseModel(pw.Model):
    class Meta:
        database = db_proxy
        legacy_table_names = False


class Position(BaseModel):
    uid = pw.CharField(unique=True, max_length=32)  # stable id used inside client order ids
    symbol_key = pw.CharField(index=True)  # canonical key, e.g. PF_XBTUSD
    venue_symbol = pw.CharField()  # the spelling the venue used when we last saw it
    side = pw.CharField()  # long | short
    state = pw.CharField(index=True)
    origin = pw.CharField()  # strategy | imported
    target_qty_units = pw.BigIntegerField(default=0)  # what the entry intended
    remaining_qty_units = pw.BigIntegerField(default=0)  # entry fills minus exit fills; audited against the ledger
    entry_price = pw.TextField(null=True)  # Decimal as text (average entry)
    stop_price = pw.TextField(null=True)
    take_profit_price = pw.TextField(null=True)
    sl_order_id = pw.CharField(null=True)  # venue order id of the live stop-loss
    tp_order_id = pw.CharField(null=True)
    created_ms = pw.BigIntegerField()
    updated_ms = pw.BigIntegerField()
    closed_ms = pw.BigIntegerField(null=True)  # set exactly when the state becomes terminal


class Order(BaseModel):
    position = pw.ForeignKeyField(Position, backref="orders", on_delete="RESTRICT")
    client_order_id = pw.CharField(unique=True)
    venue_order_id = pw.CharField(null=True, index=True)
    purpose = pw.CharField()  # entry | stop | take_profit | exit
    side = pw.CharField()  # buy | sell
    order_type = pw.CharField()  # market | limit | stop | take_profit
    qty_units = pw.BigIntegerField()
    limit_price = pw.TextField(null=True)
    trigger_price = pw.TextField(null=True)
    status = pw.CharField(index=True)  # intent | open | filled | cancelled | rejected | unknown
    reason = pw.TextField(null=True)  # the venue's status string on rejection
    created_ms = pw.BigIntegerField()
    updated_ms = pw.BigIntegerField()


class Fill(BaseModel):
    """The fill ledger: append-only, one row per venue fill id, hash-chained in insertion order."""

    fill_id = pw.CharField(unique=True)  # the venue's fill id: recording the same fill twice changes nothing
    position = pw.ForeignKeyField(Position, backref="fills", on_delete="RESTRICT")
    client_order_id = pw.CharField(null=True)
    venue_order_id = pw.CharField(null=True)
    side = pw.CharField()  # buy | sell
    is_entry = pw.BooleanField()  # True when the fill adds to the position, False when it reduces it
    qty_units = pw.BigIntegerField()
    price = pw.TextField()
    fill_ms = pw.BigIntegerField()
    recorded_ms = pw.BigIntegerField()
    prev_hash = pw.CharField(max_length=64)
    row_hash = pw.CharField(max_length=64)


class Transition(BaseModel):
    """The append-only transition log, hash-chained in insertion order. `source` is NULL for a creation."""

    position = pw.ForeignKeyField(Position, backref="transitions", on_delete="RESTRICT")
    event = pw.CharField()
    source = pw.CharField(null=True)
    target = pw.CharField()
    cause = pw.TextField()
    at_ms = pw.BigIntegerField()
    prev_hash = pw.CharField(max_length=64)
    row_hash = pw.CharField(max_length=64)


class SchemaVersion(BaseModel):
    version = pw.IntegerField()
    applied_ms = pw.BigIntegerField()


class ChainAnchor(BaseModel):
    """Where a clean audit last found each hash chain (schema version 2): its last row's id and stored hash and
    its row count. Later audits check that history still ends the same way there, which reveals rows deleted
    at the end of a chain (invisible to the chain itself), and re-hash only the rows after it; the periodic full
    audit re-hashes everything. One row per chain, moved forward by each clean audit."""

    chain = pw.CharField(primary_key=True)  # transition | fill
    through_id = pw.BigIntegerField()  # 0 for an empty chain
    through_hash = pw.CharField(max_length=64)
    rows = pw.BigIntegerField()
    verified_ms = pw.BigIntegerField()  # the clean audit that set this anchor
    full_verified_ms = pw.BigIntegerField(null=True)  # the last clean audit that re-hashed every row


class ChainSeal(BaseModel):
    """Which key keys the hash chains (schema version 4, `store.keys`): per chain, the last row written before the
    registry was keyed (0: keyed from its start), the key's public id, when, and a keyed MAC over them; and the
    keyed MAC of the chain's current anchor. Without the key nobody can move the boundary or an anchor."""

    chain = pw.CharField(primary_key=True)  # transition | fill
    keyed_after = pw.BigIntegerField()
    key_id = pw.CharField()
    enrolled_ms = pw.BigIntegerField()
    signature = pw.CharField(max_length=64)
    anchor_signature = pw.CharField(max_length=64, null=True)


class EntryPause(BaseModel):
    """The operator's pause of new entries (schema version 3): one row per /pause or /resume, never edited, so the
    state survives a restart and says who asked; the newest row is the state. Exits and protection ignore it."""

    paused = pw.BooleanField()
    by = pw.TextField()  # who asked, e.g. "telegram user 7 in chat 1111"
    at_ms = pw.BigIntegerField()


class AccountCharge(BaseModel):
    """A fee or funding entry of the venue's account log (schema version 5), one row per log entry id, so reading
    the log twice changes nothing. `amount` is the account's change (a fee is negative). `position` is NULL until
    the row is attributed: by its fill id for a fee, by symbol and time for funding (operations.account_log)."""

    entry_id = pw.BigIntegerField(unique=True)
    kind = pw.CharField()  # fee | funding
    amount = pw.TextField()  # Decimal as text
    at_ms = pw.BigIntegerField(index=True)
    symbol_key = pw.CharField(null=True)
    fill_id = pw.CharField(null=True, index=True)
    position = pw.ForeignKeyField(Position, null=True, backref="charges", on_delete="RESTRICT")
    recorded_ms = pw.BigIntegerField()


class EntryDecision(BaseModel):
    """The price a strategy decided to enter at (schema version 6), one row per strategy position, written with its
    intent. A market entry has no limit price, so this is what its slippage is measured from (the re-anchoring of
    the stop in `operations.entry` and `monitor_trade_execution`). Never edited; imported positions have none."""

    position = pw.ForeignKeyField(Position, unique=True, backref="decisions", on_delete="RESTRICT")
    decision_price = pw.TextField()  # Decimal as text
    at_ms = pw.BigIntegerField()


class UnownedFill(BaseModel):
    """A venue fill no position can own, recorded when the fill door first met it (schema version 7): a fill of one
    of our orders whose position is closed (a stray the close could not cancel) or one on a symbol we hold that no
    rule books (the part of a hand's trade beyond the position it closed: `qty` is that part, the closing part is
    in the ledger under the same fill id). One row per fill id, never edited. The record is the
    evidence that the fill was seen and reported (UNOWNED_FILL); joint J3 `unbooked_fills` counts only fills in
    neither the ledger nor here, and the exposure such a fill moved is reconciliation's (an orphan)."""

    fill_id = pw.CharField(unique=True)
    symbol_key = pw.CharField()
    side = pw.CharField()  # buy | sell
    qty = pw.TextField()  # Decimal as text
    price = pw.TextField()  # Decimal as text
    fill_ms = pw.BigIntegerField()
    client_order_id = pw.CharField(null=True)
    venue_order_id = pw.CharField(null=True)
    position_uid = pw.CharField(null=True)  # the closed position whose order filled (a stray), else NULL
    reason = pw.TextField()
    recorded_ms = pw.BigIntegerField()


class AccountLogCursor(BaseModel):
    """How far the account log has been read (schema version 5): the highest entry id seen, fee or not."""

    name = pw.CharField(primary_key=True)  # "account_log"
    last_entry_id = pw.BigIntegerField()
    updated_ms = pw.BigIntegerField()


V1_MODELS: tuple[type[BaseModel], ...] = (Position, Order, Fill, Transition, SchemaVersion)
"""The tables schema version 1 created (frozen: migration 1 must build the same schema forever)."""
ALL_MODELS: tuple[type[BaseModel], ...] = (
    *V1_MODELS,
    ChainAnchor,
    EntryPause,
    ChainSeal,
    AccountCharge,
    AccountLogCursor,
    EntryDecision,
    UnownedFill,
)
