"""What the venue-facing tools share: settings from `--config`, the live guard, the venue, the registry.

The order matters and is the point of this module: settings are loaded and the live-key guard is checked
BEFORE anything opens a socket, so a refused run (exit 3) has made no network call
(tests/tools_runbook checks it with a proxy trap).
"""

from __future__ import annotations

import argparse
import dataclasses
import sqlite3
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import peewee as pw

from exchange.errors import VenueError
from exchange.venue import Venue
from lifecycle.clock import Clock, SystemClock, VenueClock, observe_server_time, position_began
from lifecycle.errors import RegistryVersionError
from lifecycle.reconcile import OrderRef
from lifecycle.values import AccountSnapshot, RegistryPosition, VenueFill
from operations.reconciliation import Began, read_inputs
from operations.wiring import ccxt_venue
from settings.config import ConfigError, Settings, load_settings
from settings.discovery import DiscoveryError, discover
from store.db import RegistryOpenError, connect
from store.migrations import current_version
from store.models import ALL_MODELS, SCHEMA_VERSION, V1_MODELS
from store.registry import Registry
from tools._cli import ProblemsFound, UsageError, hold_writer_lock, register_secrets, require_live_ack
from tools._dbfile import describe_sqlite_error, existing_registry_file

if TYPE_CHECKING:
    from exchange.ccxt_venue import CcxtVenue
    from operations.context import DaemonContext

T = TypeVar("T")


def add_common(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """`--config FILE`; `--db` falls back to the config's `db_path` when not given."""
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="daemon config TOML (default: $TRADER_CONFIG, /etc/trading-bot/config.toml, ./config.toml, else the "
        "embedded paper defaults); TRADER_* env vars apply on top",
    )
    parser.set_defaults(db=None)
    return parser


def load(config: Path | None) -> Settings:
    """Settings as the daemon loads them; a bad config is a usage error (exit 2) naming each key.

    Every tool loads its settings here, so this is where their secrets are registered for scrubbing: from now
    on nothing the tool prints (reports, errors, a library's exception text) can show them.
    """
    try:
        found = discover(config)
    except DiscoveryError as exc:
        raise UsageError(str(exc)) from None
    if found.path is not None and found.source != "--config":
        # Which file was found, on stderr (--json output on stdout stays one document).
        print(found.describe(), file=sys.stderr)
    try:
        settings = load_settings(found.path, secrets_path=found.secrets)
    except ConfigError as err:
        raise UsageError("config invalid: " + "; ".join(f"{p.key}: {p.message}" for p in err.problems)) from None
    register_secrets(settings.secret_values())
    return settings


def db_path(args: argparse.Namespace, settings: Settings) -> Path:
    given: Path | None = args.db
    return given if given is not None else settings.db_path


@dataclass(frozen=True)
class ToolEnv:
    settings: Settings
    live: bool


def prepare(args: argparse.Namespace, *, execute: bool = False) -> ToolEnv:
    """Load settings and apply the live guard; nothing here touches the network."""
    settings = load(args.config)
    require_live_ack(settings.is_live_venue, execute)
    return ToolEnv(settings, settings.is_live_venue)


def build_venue(settings: Settings, clock: Clock | None = None) -> CcxtVenue:
    venue = settings.venue
    if venue.base_url is None:
        raise UsageError(
            "venue.base_url is not set: the tools talk to a venue over HTTP. Set it to https://futures.kraken.com"
            " (live), https://demo-futures.kraken.com (demo) or the simulator's http://127.0.0.1:PORT"
        )
    if venue.api_key is None or venue.api_secret is None:
        raise UsageError("venue.api_key and venue.api_secret are required: the tools read private account data")
    return ccxt_venue(venue, clock or SystemClock())


HEALTH_HINT = "run python -m tools.check_db_health --db PATH for the details; restore it from backup if damaged"


MISSING_HINT = "check --db PATH or db_path in the config"


def check_registry_file(path: Path) -> None:
    """Refuse a path that is not a registry file before SQLite opens it: opening would create or damage it."""
    existing_registry_file(path, missing_hint=MISSING_HINT, damaged_hint=HEALTH_HINT)


@contextmanager
def registry_errors(path: Path) -> Iterator[None]:
    """SQLite failures on the registry (locked, corrupted, a foreign schema) as one operator line."""
    try:
        yield
    except RegistryOpenError as exc:
        raise ProblemsFound(f"cannot open registry {path}: {exc}") from None
    except RegistryVersionError as exc:
        raise ProblemsFound(f"{path}: {exc}") from None
    except (pw.DatabaseError, sqlite3.DatabaseError) as exc:  # raw cursors raise sqlite3's own errors
        raise ProblemsFound(describe_sqlite_error(path, exc, HEALTH_HINT)) from None


def open_registry(
    path: Path,
    clock: Clock,
    *,
    must_exist: bool = True,
    role: str = "a tool with --execute",
    key_file: Path | None = None,
) -> Registry:
    """The registry for writing, with its writer lock held for the rest of the run. Without `must_exist` a missing
    file is created, but only in an existing folder. `key_file`: the daemon's `registry_key_file` (default
    `<db>.key`), so a keyed registry is written with its key."""
    if must_exist or path.exists():
        check_registry_file(path)
    elif not path.parent.is_dir():
        raise UsageError(f"cannot create registry {path}: folder {path.parent} does not exist; check --db PATH")
    hold_writer_lock(path, role)
    with registry_errors(path):
        return Registry.open(path, clock, key_file=key_file)


def daemon_context(
    settings: Settings, registry: Registry, venue: Venue, clock: Clock, stop_pct: Decimal
) -> DaemonContext:
    """The daemon's own job context, so the tools place stops with the protect job's code, not a second copy."""
    from operations.context import DaemonContext
    from operations.wiring import limits_from, safety_from, strategy_from

    keys = tuple(settings.symbols)
    limits = dataclasses.replace(limits_from(settings, keys), default_stop_pct=stop_pct)
    return DaemonContext(
        registry=registry,
        venue=venue,
        clock=clock,
        limits=limits,
        instruments=venue.instruments(),
        strategy=strategy_from(settings),
        safety=safety_from(settings),
    )


@contextmanager
def read_registry(path: Path) -> Iterator[pw.SqliteDatabase]:
    """The registry opened read-only with the models bound: the read-only tools never write, not even a WAL."""
    check_registry_file(path)
    with registry_errors(path):
        db = connect(path, readonly=True)
        try:
            _require_readable_schema(db, path)
            with db.bind_ctx(list(ALL_MODELS)):
                yield db
        finally:
            db.close()


def _require_readable_schema(db: pw.SqliteDatabase, path: Path) -> None:
    """A registry this code can read: its version recorded and the code's own, its tables present. An older file is
    refused, not read: a read-only tool never writes, so it cannot migrate, and its queries name tables a later
    schema added (the daemon of this release migrates the file at its next start)."""
    version = current_version(db)
    if version > SCHEMA_VERSION:
        raise ProblemsFound(
            f"{path} is at schema version {version}, newer than this code ({SCHEMA_VERSION}): use the release that"
            " wrote it"
        )
    if 0 < version < SCHEMA_VERSION:
        raise ProblemsFound(
            f"{path} is at schema version {version}, older than this code ({SCHEMA_VERSION}): the daemon of this"
            " release migrates it at its next start (a read-only tool never writes); run this tool again after that"
        )
    missing = sorted({m._meta.table_name for m in V1_MODELS} - set(db.get_tables()))
    if missing:
        raise ProblemsFound(f"{path} is not a registry (no table {', '.join(missing)}): check --db PATH")


def tool_clock() -> VenueClock:
    """A tool's clock, as the daemon's: the venue's time once a snapshot anchored it (`venue_snapshot`), the host's
    before. Rows a tool writes with --execute and every window it judges read it, so a skewed host clock cannot set
    them apart from the daemon's."""
    return VenueClock(SystemClock())


def venue_snapshot(venue: Venue, clock: Clock, since: datetime | None) -> AccountSnapshot:
    """One venue snapshot (fills from `since`); its server time anchors `clock` when that is a `VenueClock`."""
    snap = venue_call("venue snapshot", lambda: venue.snapshot(since))
    observe_server_time(clock, snap.server_time)
    return snap


def venue_call(what: str, fn: Callable[[], T]) -> T:
    """One venue read; a venue failure becomes one operator line naming what failed."""
    try:
        return fn()
    except VenueError as exc:
        raise ProblemsFound(f"{what} failed: {type(exc).__name__}: {exc}") from None


@contextmanager
def registry_reader(path: Path, clock: Clock) -> Iterator[Registry]:
    """The registry opened read-only as a `Registry`, so the tools read it through the daemon's own queries."""
    with read_registry(path) as db:
        yield Registry(db, clock)


@dataclass(frozen=True)
class RegistryInputs:
    """The pure reconciliation's registry side, read without writing (an absent file is an empty registry)."""

    positions: tuple[RegistryPosition, ...]
    orders: dict[str, OrderRef]
    known_fill_ids: frozenset[str]
    """Which of the fills the caller named the fill door has judged (`Registry.fill_ids_judged`: an indexed lookup of
    just those ids, as the daemon does, never the whole ledger)."""


def registry_inputs(path: Path, clock: Clock, fills: Sequence[VenueFill] = ()) -> RegistryInputs:
    """`operations.reconciliation.read_inputs`, the daemon's reading, on the registry file opened read-only; each
    position dated by the daemon's rule (`lifecycle.clock.position_began`) on `clock`; `fills`: the venue fills whose
    ids to look up in the ledger."""
    if not path.exists():
        return RegistryInputs((), {}, frozenset())
    with registry_reader(path, clock) as reg:
        return inputs_of(reg, began_by(reg, clock), fills)


def inputs_of(reg: Registry, began: Began, fills: Sequence[VenueFill] = ()) -> RegistryInputs:
    """`registry_inputs` on a registry the caller has open, its positions dated by `began` (`began_by`)."""
    positions, orders = read_inputs(reg, began)
    known = frozenset(reg.fill_ids_judged([f.fill_id for f in fills])) if fills else frozenset()
    return RegistryInputs(tuple(positions), orders, known)


def began_by(reg: Registry, clock: Clock) -> Began:
    """When each position began, by the daemon's one rule, read from `reg`: each position's first fill read once, as
    `DaemonContext.created_of` does (a tool's reading and its joint invariants date the same positions)."""
    first: dict[str, datetime | None] = {}

    def began(uid: str, created: datetime) -> datetime:
        if uid not in first:
            first[uid] = reg.first_fill_time(uid)
        return position_began(created, first[uid], clock.now())

    return began


def known_fill_ids(path: Path, fills: Sequence[VenueFill]) -> frozenset[str]:
    """Which of these venue fills the registry has judged (`Registry.fill_ids_judged`; for a caller that read the
    registry's side before the venue's snapshot: `operations.sync.confirm`)."""
    if not path.exists() or not fills:
        return frozenset()
    with registry_reader(path, SystemClock()) as reg:
        return frozenset(reg.fill_ids_judged([f.fill_id for f in fills]))
