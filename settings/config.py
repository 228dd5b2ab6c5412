"""The daemon's one settings model, loaded from a TOML file plus `TRADER_*` environment variables.

Precedence, highest first: environment, secrets file (`TRADER_SECRETS_FILE`), config file, model defaults.
Sections are deep-merged key by key, so `TRADER_RISK__ATR_STOP_MULTIPLE=3` changes one key of the file's
`[risk]` table and keeps the rest. Every problem becomes a `ConfigProblem(key, message)` naming the dotted key
and what is expected; no message ever repeats the offending value, because that value may be a secret.

`python -m settings.config --check FILE` validates a file the way the daemon does and exits 2 on any problem.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextvars
import os
import re
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)
from pydantic_settings.sources.utils import parse_env_vars

from lifecycle.errors import MalformedSymbol
from lifecycle.events import Ev, emit
from lifecycle.symbols import canonical_key
from settings.secrets_guard import permission_problem

ENV_PREFIX = "TRADER_"
ENV_DELIMITER = "__"
SECRETS_FILE_ENV = "TRADER_SECRETS_FILE"
CONFIG_FILE_ENV = "TRADER_CONFIG"  # which file to load (settings/discovery.py), not a setting
EXIT_CONFIG = 2
PAPER_DEFAULTS_FILE = Path(__file__).resolve().parent.parent / "config" / "paper.toml"
LIVE_HOST = "futures.kraken.com"
DEMO_HOST = "demo-futures.kraken.com"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
SECRET_PATHS: tuple[tuple[str, str], ...] = (("venue", "api_key"), ("venue", "api_secret"), ("telegram", "token"))
# Marks a cross-field problem raised from a validator whose error location pydantic cannot point at.
_KEYED = "@"


def _keyed(problems: list[tuple[str, str]]) -> ValueError:
    return ValueError("\n".join(f"{_KEYED}{key}: {message}" for key, message in problems))


def _split_list(value: Any) -> Any:
    # Env vars are strings; `PF_XBTUSD,PF_ETHUSD` reads better than a JSON array in a systemd unit.
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class _Section(BaseModel):
    # allow_inf_nan=False: "nan" would otherwise fail as "less than or equal to 86400", which misleads.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True, allow_inf_nan=False)


class BreakerSettings(_Section):
    failure_threshold: int = Field(default=5, ge=1, le=100)
    open_seconds: float = Field(default=60.0, ge=1, le=3600)


class VenueSettings(_Section):
    base_url: str | None = None
    api_key: SecretStr | None = Field(default=None, min_length=16, max_length=512)
    api_secret: SecretStr | None = Field(default=None, min_length=16, max_length=1024)
    timeout_ms: int = Field(default=10_000, ge=1_000, le=120_000)
    enable_rate_limit: bool = True
    breaker: BreakerSettings = BreakerSettings()

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        expected = "must be an http(s) URL such as https://futures.kraken.com or http://127.0.0.1:PORT"
        try:
            parts = urlsplit(value.strip())
            parts.port  # noqa: B018 - raises on a port that is not a number in 0..65535
        except ValueError:
            raise ValueError(f"is not a valid URL (check the host and port); {expected}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(expected)
        if not re.fullmatch(r"(?:[^@]*@)?(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d+)?", parts.netloc):
            raise ValueError(f"has a host name with characters a host name cannot have; {expected}")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials; put them in venue.api_key / venue.api_secret")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("must be the server root only (scheme://host[:port]); the API paths are added by ccxt")
        if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
            raise ValueError("plain http is only allowed to 127.0.0.1/localhost; use https for a remote server")
        return f"{parts.scheme}://{parts.netloc}"

    @field_validator("api_key")
    @classmethod
    def _no_surrounding_space(cls, value: SecretStr | None) -> SecretStr | None:
        # Kraken keys have no spaces; a pasted key with a trailing newline fails authentication much later.
        if value is not None and value.get_secret_value() != value.get_secret_value().strip():
            raise ValueError("has spaces or a line break at the start or end; copy the key again without them")
        return value

    @field_validator("api_secret")
    @classmethod
    def _check_base64(cls, value: SecretStr | None) -> SecretStr | None:
        # ccxt signs with base64decode(secret) and dies with a bare binascii.Error on anything else.
        if value is not None:
            try:
                base64.b64decode(value.get_secret_value(), validate=True)
            except (binascii.Error, ValueError):
                raise ValueError(
                    "must be the base64 private key exactly as Kraken shows it (it does not decode as base64; "
                    "look for missing characters, spaces or quotes)"
                ) from None
        return value

    @property
    def host(self) -> str | None:
        return urlsplit(self.base_url).hostname if self.base_url else None


class IntervalSettings(_Section):
    """Seconds between runs of each scheduled job."""

    tick: float = Field(default=60.0, ge=1, le=86_400)
    reconcile: float = Field(default=60.0, ge=1, le=86_400)
    protect: float = Field(default=30.0, ge=1, le=86_400)
    health: float = Field(default=300.0, ge=1, le=86_400)
    # The health job's registry audit re-hashes every chained row at most this long after the last time it did;
    # in between it re-hashes only the rows after the chain anchors (docs/audit.md).
    full_audit: float = Field(default=86_400.0, ge=60, le=30 * 86_400)


class RiskSettings(_Section):
    """Percentages are of account equity, in percent units (80 means 80 %)."""

    risk_per_trade_pct: Decimal = Field(default=Decimal("1"), gt=0, le=10)
    max_margin_utilization_pct: Decimal = Field(default=Decimal("80"), gt=0, le=100)
    auction_max_margin_util: Decimal = Field(default=Decimal("70"), gt=0, le=100)
    kill_switch_hysteresis_pct: Decimal = Field(default=Decimal("5"), ge=0, le=50)
    kill_switch_release_cycles: int = Field(default=2, ge=1, le=100)
    atr_stop_multiple: Decimal = Field(default=Decimal("2"), gt=0, le=20)
    take_profit_r: Decimal | None = Field(default=None, gt=0, le=20)
    # An entry that fills further from the decision price than this many R (R = the planned entry-to-stop distance)
    # is exited at once instead of carrying more risk than planned; below it the stop is re-anchored to the fill.
    max_entry_slippage_r: Decimal = Field(default=Decimal("0.5"), ge=0, le=10)
    # A stop further than this below a long's entry (above a short's) is not one anyone planned: never sent, and
    # reported by the audit. Beyond the entry on the profit side a stop risks no loss and is not bounded.
    max_stop_distance_pct: Decimal = Field(default=Decimal("25"), gt=0, le=90)

    @model_validator(mode="after")
    def _release_point_positive(self) -> RiskSettings:
        if self.kill_switch_hysteresis_pct >= self.max_margin_utilization_pct:
            raise _keyed(
                [
                    (
                        "kill_switch_hysteresis_pct",
                        "must be below max_margin_utilization_pct, or the margin kill switch could never release",
                    )
                ]
            )
        return self


class ProtectSettings(_Section):
    """How protective orders are maintained (lifecycle.protection)."""

    # Stop placements per position per hour before protection stops retrying and escalates (STOP_CHURN_LIMIT).
    max_replacements_per_hour: int = Field(default=6, ge=1, le=100)
    # A position whose stop level the market has already crossed: report it (`unprotectable`) or exit it at once
    # with a reduce-only market order (`exit`). A stop is never sent where it would fill at once.
    on_crossed_stop: Literal["unprotectable", "exit"] = "unprotectable"
    # Where an adopted position's stop goes when it arrives without one: this far beyond the worse of entry and mark.
    default_stop_pct: Decimal = Field(default=Decimal("2"), gt=0, le=50)


class PaperSettings(_Section):
    seed: int = Field(default=0, ge=0, le=2**63 - 1)
    # Simulated seconds per real second for the embedded simulator (`--speed` overrides it).
    speed: float = Field(default=60.0, ge=0.1, le=10_000)
    starting_usd: Decimal = Field(default=Decimal("10000"), gt=0, le=Decimal("1000000000"))
    faults: bool = False


class MetricsSettings(_Section):
    """The optional Prometheus endpoint (scheduler/metrics.py), always bound to 127.0.0.1."""

    enabled: bool = False
    port: int = Field(default=9464, ge=1024, le=65_535)


class StreamSettings(_Section):
    """The order stream (exchange/stream.py, docs/stream.md): Kraken's private websocket feeds through ccxt.pro.
    REST polling stays on either way; the stream only makes fills arrive within about a second."""

    enabled: bool = True
    max_silence_s: float = Field(default=15.0, gt=0, le=600)  # no message (heartbeats included) this long: a gap
    degraded_after_s: float = Field(default=120.0, gt=0, le=86_400)  # down this long: STREAM_LAG alert, pre-flight


class CandleSettings(_Section):
    """The candle store the strategy reads (store/candles.py, operations/candles.py): closed candles kept in their
    own SQLite file, so each tick asks the venue only for the candles that closed since the newest stored one."""

    enabled: bool = True
    # None: `candles.db` in the registry's folder, the file `backfill_historical_data` fills by default when run
    # from there. Never the registry itself (refused at startup).
    path: Path | None = None


class LogSettings(_Section):
    format: Literal["kv", "json"] = "kv"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # a routine (all-zero) reconciliation or clean audit line is printed on change or every this many (scheduler.quiet)
    quiet_cycles: int = Field(default=10, ge=1, le=100_000)

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class TelegramSettings(_Section):
    token: SecretStr = Field(min_length=20, max_length=256)
    allowed_chat_ids: Annotated[tuple[int, ...], NoDecode] = ()
    allowed_user_ids: Annotated[tuple[int, ...], NoDecode] = ()
    # The Bot API server: Telegram's own, or a self-hosted telegram-bot-api. The bot adds /bot<token>/<method>.
    api_base_url: str = "https://api.telegram.org"

    _split = field_validator("allowed_chat_ids", "allowed_user_ids", mode="before")(_split_list)

    @field_validator("api_base_url")
    @classmethod
    def _check_api_url(cls, value: str) -> str:
        # No message quotes the value: an operator may paste the whole .../bot<token> URL here by mistake.
        try:
            parts = urlsplit(value.strip())
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            raise ValueError(
                "is not a valid URL; expected https://HOST[:PORT], e.g. https://api.telegram.org"
            ) from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "must be an http(s) URL: https://api.telegram.org (the default) or a self-hosted Bot API server "
                "such as https://HOST[:PORT] (plain http only for 127.0.0.1/localhost)"
            )
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError("must be scheme://host[:port][/path] with no credentials, query or fragment")
        if not re.fullmatch(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d+)?", parts.netloc):
            raise ValueError("has a host name with characters a host name cannot have; expected HOST[:PORT]")
        if re.search(r"(?i)/bot(?:/|\d|$)|\d+(?::|%3A)[A-Za-z0-9_-]{20,}", parts.path):
            raise ValueError(
                "must not contain /bot or the token; give the server only (e.g. https://api.telegram.org): "
                "the daemon adds /bot<token> itself, and the token belongs in telegram.token"
            )
        if not re.fullmatch(r"(/[A-Za-z0-9._~-]+)*/?", parts.path):
            raise ValueError("may only have a plain path prefix (letters, digits and -._~ between slashes)")
        if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
            raise ValueError(
                "plain http is only allowed to 127.0.0.1/localhost (the token travels in every request); use https"
            )
        return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"

    @field_validator("token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        if not re.fullmatch(r"\d+:[A-Za-z0-9_-]{20,}", value.get_secret_value()):
            raise ValueError("must look like <digits>:<letters> (the token BotFather gave you)")
        return value

    @model_validator(mode="after")
    def _allowlists(self) -> TelegramSettings:
        # In a group the chat id matches every member, so both lists are needed to name who may command the bot.
        missing = [
            (name, "must list at least one id when telegram.token is set (an empty allowlist would obey anyone)")
            for name in ("allowed_chat_ids", "allowed_user_ids")
            if not getattr(self, name)
        ]
        if missing:
            raise _keyed(missing)
        return self


@dataclass(frozen=True)
class _LoadContext:
    environ: Mapping[str, str]
    file_data: dict[str, Any]


_CONTEXT: contextvars.ContextVar[_LoadContext | None] = contextvars.ContextVar("config_load", default=None)


class _MappingEnvSource(EnvSettingsSource):
    """The env source reading an injected mapping instead of os.environ (tests, `load_settings(environ=...)`)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_DELIMITER,
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,
    )

    mode: Literal["paper", "live"] = "paper"
    db_path: Path = Path("position_registry.db")
    # The key that keys the registry's hash chains and signs its anchors (store.keys): outside the registry file,
    # created 0600 at the first start. None: `<db_path>.key`. Back it up apart from the registry (docs/audit.md).
    registry_key_file: Path | None = None
    symbols: Annotated[tuple[str, ...], NoDecode] = Field(default=("PF_XBTUSD", "PF_ETHUSD"), min_length=1)
    timeframe: Literal["1m", "5m", "15m", "30m", "1h", "4h", "12h", "1d", "1w"] = "1h"
    venue: VenueSettings = VenueSettings()
    intervals: IntervalSettings = IntervalSettings()
    risk: RiskSettings = RiskSettings()
    protect: ProtectSettings = ProtectSettings()
    paper: PaperSettings = PaperSettings()
    log: LogSettings = LogSettings()
    metrics: MetricsSettings = MetricsSettings()
    stream: StreamSettings = StreamSettings()
    candles: CandleSettings = CandleSettings()
    telegram: TelegramSettings | None = None

    _split = field_validator("symbols", mode="before")(_split_list)

    @field_validator("db_path")
    @classmethod
    def _db_path_names_a_file(cls, value: Path) -> Path:
        if str(value).strip() in ("", "."):
            raise ValueError("is empty; give the registry file's path, e.g. /var/lib/trader/position_registry.db")
        if not re.fullmatch(r"[A-Za-z0-9._/+@~-]+", str(value)):
            raise ValueError(
                "may only contain letters, digits, '/' and . _ - + @ ~ (no spaces, quotes, control characters or "
                "NUL); e.g. /var/lib/trading-bot/position_registry.db"
            )
        if value.is_dir():
            raise ValueError("is a directory; give the registry file's path inside it, e.g. DIR/position_registry.db")
        return value

    @field_validator("symbols")
    @classmethod
    def _canonical_symbols(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # Stored as canonical keys: every lookup in the daemon goes through the key, whatever the operator typed.
        seen: dict[str, str] = {}
        for symbol in value:
            try:
                key = canonical_key(symbol)
            except MalformedSymbol as exc:
                raise ValueError(str(exc)) from None
            if key in seen:
                raise ValueError(f"{symbol!r} and {seen[key]!r} are the same instrument; list it once")
            seen[key] = symbol
        return tuple(seen)

    @model_validator(mode="after")
    def _mode_matches_venue(self) -> Settings:
        problems: list[tuple[str, str]] = []
        if self.mode == "live":
            for name in ("base_url", "api_key", "api_secret"):
                if getattr(self.venue, name) is None:
                    problems.append((f"venue.{name}", 'is required when mode = "live"'))
        elif self.venue.host is not None and _is_real_kraken(self.venue.host):
            problems.append(
                (
                    "mode",
                    f'is "paper" but venue.base_url is the real Kraken; set mode = "live" to trade real money, '
                    f"or use https://{DEMO_HOST}",
                )
            )
        if problems:
            raise _keyed(problems)
        return self

    @property
    def is_live_venue(self) -> bool:
        """Real money: the production Kraken host with keys. Tools demand I_UNDERSTAND_LIVE=1 when True."""
        venue = self.venue
        return bool(venue.host and _is_real_kraken(venue.host) and venue.api_key and venue.api_secret)

    def secret_values(self) -> tuple[str, ...]:
        """The raw secrets, for registering with the log redaction filter. Never log the result."""
        found = [self.venue.api_key, self.venue.api_secret, self.telegram.token if self.telegram else None]
        return tuple(s.get_secret_value() for s in found if s is not None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        context = _CONTEXT.get()
        if context is None:
            return (init_settings, env_settings)
        return (
            init_settings,
            _MappingEnvSource(settings_cls, context.environ),
            InitSettingsSource(settings_cls, context.file_data),
        )


def _is_real_kraken(host: str) -> bool:
    return host != DEMO_HOST and (host == LIVE_HOST or host.endswith(".kraken.com"))


# --------------------------------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class ConfigProblem:
    key: str
    message: str


class ConfigError(Exception):
    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.key}: {p.message}" for p in problems))


def format_config_errors(err: ConfigError) -> str:
    """One line per problem: `config error: <dotted key>: <what is expected>`."""
    return "\n".join(f"config error: {p.key}: {p.message}" for p in err.problems)


def _loc_to_key(loc: Sequence[int | str]) -> str:
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return key


def _fields_at(loc: Sequence[int | str]) -> list[str]:
    model: Any = Settings
    for part in loc:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = _model_of(field.annotation)
    return sorted(getattr(model, "model_fields", {}))


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _translate(error: Mapping[str, Any]) -> list[ConfigProblem]:
    loc = [p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
    key = _loc_to_key(loc)
    kind, msg, ctx = error["type"], str(error["msg"]), error.get("ctx") or {}
    if kind == "value_error":
        msg = msg.removeprefix("Value error, ")
        if msg.startswith(_KEYED):
            problems = []
            for line in msg.splitlines():
                sub, _, text = line.removeprefix(_KEYED).partition(": ")
                problems.append(ConfigProblem(f"{key}.{sub}" if key else sub, text))
            return problems
    elif kind == "missing":
        msg = "is required"
    elif kind == "extra_forbidden":
        valid = _fields_at(loc[:-1])
        msg = "unknown setting (check the spelling" + (f"; valid here: {', '.join(valid)})" if valid else ")")
    elif kind == "too_short":
        unit = "characters" if ctx.get("field_type") in ("Value", "String") else "item(s)"
        msg = f"must have at least {ctx.get('min_length')} {unit}"
    elif kind == "too_long":
        unit = "characters" if ctx.get("field_type") in ("Value", "String") else "item(s)"
        msg = f"must have at most {ctx.get('max_length')} {unit}"
    elif kind == "model_type":
        msg = "must be a table/section"
    return [ConfigProblem(key, msg)]


def _annotate_env(
    problems: list[ConfigProblem], environ: Mapping[str, str], already_reported: set[str]
) -> list[ConfigProblem]:
    """Name the variable a bad value came from; skip problems `_unknown_env` already reported by name."""
    names = {k.upper() for k in environ}
    nested_keys = {p.key.split("[")[0] for p in problems if "[" in p.key}
    out = []
    for p in problems:
        if p.key in nested_keys and p.message.startswith("must have at least"):
            continue  # the bad items are reported one by one; "too short" on the remainder only confuses
        parts = re.split(r"[.\[]", p.key)
        for depth in range(len(parts), 0, -1):
            var = ENV_PREFIX + ENV_DELIMITER.join(parts[:depth]).upper()
            if var in names:
                if var not in already_reported:
                    out.append(ConfigProblem(p.key, f"{p.message} (value from environment variable {var})"))
                break
        else:
            out.append(p)
    return out


# ---------------------------------------------------------------------------------------------- file reading


def _read_toml(path: Path, what: str) -> dict[str, Any]:
    def fail(message: str) -> NoReturn:
        raise ConfigError([ConfigProblem(what, f"{path}: {message}")])

    try:
        st = path.stat()
    except FileNotFoundError:
        fail("no such file; pass an existing TOML file (see config/example.toml)")
    except OSError as exc:
        fail(f"cannot be read ({exc.strerror})")
    if not path.is_file():
        fail("is not a regular file; pass the path of a TOML file")
    if st.st_size > 1_000_000:
        fail("is over 1 MB; that is not a config file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        fail(f"cannot be read ({exc.strerror}); check its permissions and owner")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        fail(f"is not UTF-8 text (bad byte at offset {exc.start}); save it as UTF-8")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The decoder's message carries the position ("at line 3, column 9"), never the text itself.
        fail(f"invalid TOML: {exc}")
    except RecursionError:
        fail("invalid TOML: arrays or tables nested too deeply for a config file")


def _has_secret(data: Mapping[str, Any]) -> bool:
    return any(isinstance(data.get(section), dict) and name in data[section] for section, name in SECRET_PATHS)


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _unknown_env(environ: Mapping[str, str]) -> list[ConfigProblem]:
    """pydantic-settings silently ignores `TRADER_*` names that match no field; a typo must not pass."""
    problems = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in (SECRETS_FILE_ENV, CONFIG_FILE_ENV):
            continue
        parts = [p.lower() for p in upper[len(ENV_PREFIX) :].split(ENV_DELIMITER)]
        model: Any = Settings
        for part in parts:
            fields = getattr(model, "model_fields", None)
            if fields is None:
                break  # a deeper name under a scalar field; pydantic will complain about the type
            if part not in fields:
                valid = ", ".join(
                    ENV_PREFIX + ENV_DELIMITER.join([*parts[: parts.index(part)], f]).upper() for f in sorted(fields)
                )
                problems.append(ConfigProblem(name, f"unknown setting; valid names here: {valid}"))
                break
            model = _model_of(fields[part].annotation)
    return problems


def _scrub(problems: list[ConfigProblem], secrets: Sequence[str]) -> list[ConfigProblem]:
    # Messages are built not to echo input, but a validator written later might; the raw secrets never pass.
    def clean(text: str) -> str:
        for secret in secrets:
            if len(secret) >= 4:
                text = text.replace(secret, "***")
        return text

    return [ConfigProblem(clean(p.key), clean(p.message)) for p in problems]


def _raw_secrets(data: Mapping[str, Any], environ: Mapping[str, str]) -> list[str]:
    found = []
    for section, name in SECRET_PATHS:
        value = data.get(section, {}).get(name) if isinstance(data.get(section), dict) else None
        if isinstance(value, str):
            found.append(value)
    for var, value in environ.items():
        upper = var.upper()
        if upper.startswith(ENV_PREFIX) and any(upper.endswith(n.upper()) for _, n in SECRET_PATHS):
            found.append(value)
    return found


def load_settings(
    path: Path | None, environ: Mapping[str, str] | None = None, *, secrets_path: Path | None = None
) -> Settings:
    """Load and validate. `path=None` loads the embedded paper defaults (config/paper.toml).

    The secrets file (`secrets_path`, or the `TRADER_SECRETS_FILE` variable) is a second TOML file merged over
    the config, for keeping keys out of a shared config; it must be mode 0600.
    """
    env = dict(os.environ if environ is None else environ)
    config_path = path if path is not None else (PAPER_DEFAULTS_FILE if PAPER_DEFAULTS_FILE.is_file() else None)
    data: dict[str, Any] = _read_toml(config_path, "config file") if config_path else {}
    problems: list[ConfigProblem] = []
    if config_path and _has_secret(data):
        message = permission_problem(config_path)
        if message:
            problems.append(ConfigProblem("config file", message))
    from_env = next((v for k, v in env.items() if k.upper() == SECRETS_FILE_ENV), None)
    if secrets_path is None and from_env is not None and not from_env.strip():
        raise ConfigError(
            [ConfigProblem(SECRETS_FILE_ENV, "is set but empty; unset it or set it to the secrets TOML file's path")]
        )
    secrets_file = secrets_path or (Path(from_env) if from_env is not None else None)
    if secrets_file is not None:
        secret_data = _read_toml(secrets_file, "secrets file")
        message = permission_problem(secrets_file)
        if message:
            problems.append(ConfigProblem("secrets file", message))
        data = _deep_merge(data, secret_data)
    return settings_from_mapping(data, env, problems=problems)


def settings_from_mapping(
    data: Mapping[str, Any], environ: Mapping[str, str] | None = None, *, problems: Sequence[ConfigProblem] = ()
) -> Settings:
    """Validate already-parsed file data plus the environment (`environ=None`: none), as `load_settings` does.

    `problems` found earlier (file permissions) are reported together with the validation problems.
    """
    env = dict(environ or {})
    found = list(problems)
    unknown = _unknown_env(env)
    found += unknown
    secrets = _raw_secrets(data, env)
    settings: Settings | None = None
    token = _CONTEXT.set(_LoadContext(environ=env, file_data=dict(data)))
    try:
        settings = Settings()
    except ValidationError as exc:
        translated = [p for e in exc.errors(include_url=False, include_input=False) for p in _translate(e)]
        found += _annotate_env(translated, env, {p.key.upper() for p in unknown})
    except SettingsError as exc:
        field = re.search(r'field "([^"]+)"', str(exc))
        name = field.group(1) if field else "environment"
        found.append(
            ConfigProblem(
                name,
                f"cannot parse the value of {ENV_PREFIX}{name.upper()} (a section set from one variable must be "
                "a JSON object; prefer one variable per key, e.g. TRADER_VENUE__TIMEOUT_MS)",
            )
        )
    finally:
        _CONTEXT.reset(token)
    if found or settings is None:
        raise ConfigError(_scrub(found, secrets))
    return settings


def check_thresholds(settings: Settings) -> list[str]:
    """Limits that are each valid but contradict one another (THRESHOLD_MISMATCH)."""
    risk = settings.risk
    if risk.auction_max_margin_util > risk.max_margin_utilization_pct:
        return [
            f"risk.auction_max_margin_util ({risk.auction_max_margin_util}) exceeds "
            f"risk.max_margin_utilization_pct ({risk.max_margin_utilization_pct}): the margin auction could allocate "
            "beyond the kill-switch threshold; lower auction_max_margin_util"
        ]
    return []


def validate_or_exit(
    path: Path | None, environ: Mapping[str, str] | None = None, *, secrets_path: Path | None = None
) -> Settings:
    """For the daemon and the tools: the settings, or the problems on stderr and exit 2."""
    try:
        settings = load_settings(path, environ, secrets_path=secrets_path)
    except ConfigError as err:
        print(format_config_errors(err), file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    mismatches = check_thresholds(settings)
    if mismatches:
        emit(
            Ev.THRESHOLD_MISMATCH,
            auction_max_margin_util=settings.risk.auction_max_margin_util,
            max_margin_utilization_pct=settings.risk.max_margin_utilization_pct,
            detail="auction could allocate beyond the kill-switch threshold",
        )
        for line in mismatches:
            print(f"config error: {line}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    return settings


def describe(settings: Settings) -> str:
    """A one-line summary safe to print or log (secrets appear only as set/unset)."""
    venue = settings.venue.base_url or "embedded simulator"
    keys = "set" if settings.venue.api_key and settings.venue.api_secret else "unset"
    telegram = "on" if settings.telegram else "off"
    return (
        f"mode={settings.mode} venue={venue} keys={keys} live_venue={str(settings.is_live_venue).lower()} "
        f"db={settings.db_path} symbols={','.join(settings.symbols)} timeframe={settings.timeframe} "
        f"telegram={telegram} log={settings.log.format}/{settings.log.level}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m settings.config", description="Validate a config file.")
    parser.add_argument("--check", metavar="FILE", nargs="?", const="", required=True, help="TOML file to check")
    parser.add_argument("--secrets", metavar="FILE", help="secrets TOML merged over the config (mode 0600)")
    args = parser.parse_args(argv)
    path = Path(args.check) if args.check else None
    settings = validate_or_exit(path, secrets_path=Path(args.secrets) if args.secrets else None)
    print(f"config OK: {describe(settings)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
