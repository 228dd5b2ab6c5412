"""Malformed configurations: each must make `python -m settings.config --check` exit 2 naming a key."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

KEY = "SENTINELKEYabcdef0123456789"
SECRET = base64.b64encode(b"SENTINEL-SECRET-bytes-0123456789").decode()
TOKEN = "123456:SENTINELTOKENabcdefghijklmnop"
BAD_SECRET = "SENTINEL!!notbase64##secret"
SENTINELS = (KEY, SECRET, TOKEN, BAD_SECRET)

LIVE = (
    f'mode = "live"\n[venue]\nbase_url = "https://demo-futures.kraken.com"\n'
    f'api_key = "{KEY}"\napi_secret = "{SECRET}"\n'
)
TG = f'[telegram]\ntoken = "{TOKEN}"\nallowed_chat_ids = [1]\nallowed_user_ids = [2]\n'


@dataclass(frozen=True)
class Case:
    name: str
    toml: str | None  # None: the case supplies no file of its own (see `special`)
    key: str  # must appear in the error output
    env: dict[str, str] = field(default_factory=dict)
    special: str = ""  # missing | directory | fifo | binary | unreadable | world_readable | secrets_*


def _risk(body: str) -> str:
    return f"[risk]\n{body}\n"


CASES: list[Case] = [
    # missing keys
    Case("live_without_venue", 'mode = "live"\n', "venue.base_url"),
    Case("live_without_key", LIVE.replace(f'api_key = "{KEY}"\n', ""), "venue.api_key"),
    Case("live_without_secret", LIVE.replace(f'api_secret = "{SECRET}"\n', ""), "venue.api_secret"),
    Case(
        "live_without_base_url",
        LIVE.replace('base_url = "https://demo-futures.kraken.com"\n', ""),
        "venue.base_url",
    ),
    Case("telegram_without_token", "[telegram]\nallowed_chat_ids = [1]\nallowed_user_ids = [2]\n", "telegram.token"),
    Case("telegram_without_chats", TG.replace("allowed_chat_ids = [1]\n", ""), "telegram.allowed_chat_ids"),
    Case("telegram_without_users", TG.replace("allowed_user_ids = [2]\n", ""), "telegram.allowed_user_ids"),
    Case("telegram_empty_lists", TG.replace("[1]", "[]").replace("[2]", "[]"), "telegram.allowed_chat_ids"),
    # wrong types
    Case("mode_int", "mode = 1\n", "mode"),
    Case("mode_unknown", 'mode = "yolo"\n', "mode"),
    Case("db_path_int", "db_path = 5\n", "db_path"),
    Case("symbols_int", "symbols = 5\n", "symbols"),
    Case("symbols_ints", "symbols = [1, 2]\n", "symbols[0]"),
    Case("timeframe_unknown", 'timeframe = "2h"\n', "timeframe"),
    Case("venue_not_table", 'venue = "kraken"\n', "venue"),
    Case("timeout_text", '[venue]\ntimeout_ms = "fast"\n', "venue.timeout_ms"),
    Case("rate_limit_text", '[venue]\nenable_rate_limit = "maybe"\n', "venue.enable_rate_limit"),
    Case("breaker_float", "[venue.breaker]\nfailure_threshold = 1.5\n", "venue.breaker.failure_threshold"),
    Case("tick_list", "[intervals]\ntick = [1]\n", "intervals.tick"),
    Case("atr_text", _risk('atr_stop_multiple = "abc"'), "risk.atr_stop_multiple"),
    Case("seed_text", '[paper]\nseed = "x"\n', "paper.seed"),
    Case("faults_int", "[paper]\nfaults = 3\n", "paper.faults"),
    Case("log_format", '[log]\nformat = "xml"\n', "log.format"),
    Case("log_level", '[log]\nlevel = "LOUD"\n', "log.level"),
    Case("chat_id_text", TG.replace("[1]", '["abc"]'), "telegram.allowed_chat_ids[0]"),
    Case("api_key_int", LIVE.replace(f'"{KEY}"', "12345678901234567890"), "venue.api_key"),
    Case("telegram_not_table", 'telegram = "yes"\n', "telegram"),
    # out of range
    Case("timeout_low", "[venue]\ntimeout_ms = 10\n", "venue.timeout_ms"),
    Case("timeout_high", "[venue]\ntimeout_ms = 10000000\n", "venue.timeout_ms"),
    Case("breaker_zero", "[venue.breaker]\nfailure_threshold = 0\n", "venue.breaker.failure_threshold"),
    Case("breaker_open_zero", "[venue.breaker]\nopen_seconds = 0\n", "venue.breaker.open_seconds"),
    Case("tick_zero", "[intervals]\ntick = 0\n", "intervals.tick"),
    Case("reconcile_negative", "[intervals]\nreconcile = -5\n", "intervals.reconcile"),
    Case("health_huge", "[intervals]\nhealth = 1e9\n", "intervals.health"),
    Case("risk_zero", _risk("risk_per_trade_pct = 0"), "risk.risk_per_trade_pct"),
    Case("risk_huge", _risk("risk_per_trade_pct = 50"), "risk.risk_per_trade_pct"),
    Case("margin_over_100", _risk("max_margin_utilization_pct = 150"), "risk.max_margin_utilization_pct"),
    Case("hysteresis_negative", _risk("kill_switch_hysteresis_pct = -1"), "risk.kill_switch_hysteresis_pct"),
    Case(
        "hysteresis_above_limit",
        _risk("kill_switch_hysteresis_pct = 45\nmax_margin_utilization_pct = 40\nauction_max_margin_util = 30"),
        "risk.kill_switch_hysteresis_pct",
    ),
    Case("release_cycles_zero", _risk("kill_switch_release_cycles = 0"), "risk.kill_switch_release_cycles"),
    Case("take_profit_zero", _risk("take_profit_r = 0"), "risk.take_profit_r"),
    Case("atr_nan", _risk("atr_stop_multiple = nan"), "risk.atr_stop_multiple"),
    Case("speed_zero", "[paper]\nspeed = 0\n", "paper.speed"),
    Case("starting_usd_negative", "[paper]\nstarting_usd = -1\n", "paper.starting_usd"),
    Case("seed_negative", "[paper]\nseed = -1\n", "paper.seed"),
    Case("symbols_empty", "symbols = []\n", "symbols"),
    Case("api_key_short", LIVE.replace(KEY, "SENTINEL"), "venue.api_key"),
    # unknown keys
    Case("unknown_top", "foo = 1\n", "foo"),
    Case("unknown_venue_key", f'[venue]\napikey = "{KEY}"\n', "venue.apikey"),
    Case("unknown_section", "[risks]\nrisk_per_trade_pct = 1\n", "risks"),
    Case("british_spelling", _risk("max_margin_utilisation_pct = 80"), "risk.max_margin_utilisation_pct"),
    Case("unknown_breaker_key", "[venue.breaker]\nthreshold = 3\n", "venue.breaker.threshold"),
    # cross-limit inconsistency
    Case("threshold_mismatch", _risk("auction_max_margin_util = 90"), "risk.auction_max_margin_util"),
    Case(
        "threshold_mismatch_lowered_limit",
        _risk("max_margin_utilization_pct = 60"),
        "risk.auction_max_margin_util",
    ),
    # symbols
    Case("symbol_garbage", 'symbols = ["NOT A SYMBOL"]\n', "symbols"),
    Case("symbol_empty_string", 'symbols = [""]\n', "symbols"),
    Case("symbol_twice_two_spellings", 'symbols = ["PF_XBTUSD", "BTC/USD:USD"]\n', "symbols"),
    Case("symbol_not_usd", 'symbols = ["PF_XBTEUR"]\n', "symbols"),
    # secrets and venue URLs
    Case("secret_not_base64", LIVE.replace(SECRET, BAD_SECRET), "venue.api_secret"),
    Case("url_with_credentials", f'[venue]\nbase_url = "https://u:{KEY}@futures.kraken.com"\n', "venue.base_url"),
    Case("url_http_remote", '[venue]\nbase_url = "http://futures.kraken.com"\n', "venue.base_url"),
    Case("url_with_path", '[venue]\nbase_url = "https://futures.kraken.com/derivatives/api"\n', "venue.base_url"),
    Case("url_not_url", '[venue]\nbase_url = "kraken"\n', "venue.base_url"),
    Case(
        "paper_on_real_kraken",
        LIVE.replace('mode = "live"', 'mode = "paper"').replace("demo-futures", "futures"),
        "mode",
    ),
    Case("telegram_token_shape", TG.replace(TOKEN, "SENTINEL-not-a-token-at-all-000"), "telegram.token"),
    Case("api_key_surrounding_space", LIVE.replace(f'"{KEY}"', f'"  {KEY}\\n"'), "venue.api_key"),
    Case("url_port_not_a_number", '[venue]\nbase_url = "http://127.0.0.1:notaport"\n', "venue.base_url"),
    Case("url_port_too_big", '[venue]\nbase_url = "http://127.0.0.1:99999"\n', "venue.base_url"),
    Case("url_broken_ipv6", '[venue]\nbase_url = "http://[::1"\n', "venue.base_url"),
    Case("url_space_in_host", '[venue]\nbase_url = "https://futures kraken.com"\n', "venue.base_url"),
    # db_path
    Case("db_path_empty", 'db_path = ""\n', "db_path"),
    Case("db_path_directory", 'db_path = "/"\n', "db_path"),
    # environment variables
    Case("env_timeout_text", "", "TRADER_VENUE__TIMEOUT_MS", env={"TRADER_VENUE__TIMEOUT_MS": "abc"}),
    Case("env_live_without_keys", "", "venue.base_url", env={"TRADER_MODE": "live"}),
    Case("env_unknown", "", "TRADER_FOO", env={"TRADER_FOO": "1"}),
    Case("env_unknown_nested", "", "TRADER_RISK__ATR", env={"TRADER_RISK__ATR": "1"}),
    Case("env_bad_json_section", "", "venue", env={"TRADER_VENUE": "{bad json"}),
    Case(
        "env_secret_not_base64",
        LIVE.replace(f'api_secret = "{SECRET}"\n', ""),
        "venue.api_secret",
        env={"TRADER_VENUE__API_SECRET": BAD_SECRET},
    ),
    Case("env_threshold", "", "risk.auction_max_margin_util", env={"TRADER_RISK__AUCTION_MAX_MARGIN_UTIL": "95"}),
    Case("env_symbols_empty", "", "symbols", env={"TRADER_SYMBOLS": ",,,"}),
    Case("env_level", "", "log.level", env={"TRADER_LOG__LEVEL": "chatty"}),
    Case("env_interval_nan", "", "intervals.tick", env={"TRADER_INTERVALS__TICK": "nan"}),
    Case("env_interval_inf", "", "intervals.protect", env={"TRADER_INTERVALS__PROTECT": "inf"}),
    Case("env_secrets_file_empty", "", "TRADER_SECRETS_FILE", env={"TRADER_SECRETS_FILE": ""}),
    Case(
        "env_short_token", TG.replace(f'token = "{TOKEN}"\n', ""), "telegram.token", env={"TRADER_TELEGRAM__TOKEN": ""}
    ),
    # files
    Case("toml_syntax", "mode = \n", "line 1"),
    Case("toml_duplicate_key", 'mode = "paper"\nmode = "live"\n', "line 2"),
    Case("toml_unclosed_table", "[venue\ntimeout_ms = 5\n", "line 1"),
    Case("toml_nested_too_deep", "a = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    Case("missing_file", None, "config file", special="missing"),
    Case("directory", None, "config file", special="directory"),
    Case("fifo", None, "config file", special="fifo"),
    Case("not_utf8", None, "config file", special="binary"),
    Case("unreadable", 'mode = "paper"\n', "config file", special="unreadable"),
    Case("world_readable_with_key", LIVE, "chmod 600", special="world_readable"),
    Case("group_readable_secrets_file", "", "chmod 600", special="secrets_group_readable"),
    Case("missing_secrets_file", "", "secrets file", special="secrets_missing"),
    Case("secrets_file_bad_value", "", "venue.api_secret", special="secrets_bad_value"),
]
