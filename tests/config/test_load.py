"""Valid configurations: precedence, deep merge, defaults, live-venue detection, secrets never shown."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settings.config import (
    PAPER_DEFAULTS_FILE,
    ConfigError,
    check_thresholds,
    describe,
    format_config_errors,
    load_settings,
    settings_from_mapping,
    validate_or_exit,
)
from tests.config.corpus import KEY, SECRET, TOKEN


def _write(tmp_path: Path, text: str, name: str = "trader.toml", mode: int = 0o600) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_embedded_paper_file_equals_model_defaults(tmp_path: Path) -> None:
    # paper.toml documents the defaults; if someone edits one and not the other, this fails.
    assert PAPER_DEFAULTS_FILE.is_file()
    from_file = load_settings(None, {})
    from_defaults = load_settings(_write(tmp_path, ""), {})
    assert from_file == from_defaults
    assert from_file.mode == "paper" and from_file.venue.base_url is None and not from_file.is_live_venue


def test_env_beats_file_and_sections_merge_key_by_key(tmp_path: Path) -> None:
    path = _write(tmp_path, "[risk]\natr_stop_multiple = 3\nrisk_per_trade_pct = 2\n[venue]\ntimeout_ms = 5000\n")
    settings = load_settings(path, {"TRADER_RISK__RISK_PER_TRADE_PCT": "0.5", "TRADER_LOG__LEVEL": "debug"})
    assert settings.risk.atr_stop_multiple == Decimal("3")  # file, untouched by the env var next to it
    assert settings.risk.risk_per_trade_pct == Decimal("0.5")  # env beats file
    assert settings.venue.timeout_ms == 5000
    assert settings.risk.max_margin_utilization_pct == Decimal("80")  # default fills the rest of the section
    assert settings.log.level == "DEBUG"


def test_decimals_are_exact(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, "[risk]\nrisk_per_trade_pct = 0.1\n"), {})
    assert settings.risk.risk_per_trade_pct == Decimal("0.1")


def test_lists_from_env_are_comma_separated(tmp_path: Path) -> None:
    env = {
        "TRADER_SYMBOLS": "XBTUSD, SOL/USD:USD",
        "TRADER_TELEGRAM__TOKEN": TOKEN,
        "TRADER_TELEGRAM__ALLOWED_CHAT_IDS": "-100123,42",
        "TRADER_TELEGRAM__ALLOWED_USER_IDS": "7",
    }
    settings = load_settings(_write(tmp_path, ""), env)
    assert settings.symbols == ("PF_XBTUSD", "PF_SOLUSD")  # stored as canonical keys
    assert settings.telegram is not None
    assert settings.telegram.allowed_chat_ids == (-100123, 42)
    assert settings.telegram.allowed_user_ids == (7,)


def test_secrets_file_merges_under_env(tmp_path: Path) -> None:
    config = _write(
        tmp_path, 'mode = "live"\n[venue]\nbase_url = "http://127.0.0.1:9"\ntimeout_ms = 3000\n', mode=0o644
    )
    secrets = _write(tmp_path, f'[venue]\napi_key = "{KEY}"\napi_secret = "{SECRET}"\n', name="secrets.toml")
    other_key = "ENVKEY" + "x" * 20
    settings = load_settings(config, {"TRADER_SECRETS_FILE": str(secrets), "TRADER_VENUE__API_KEY": other_key})
    assert settings.venue.timeout_ms == 3000
    assert settings.venue.api_secret is not None and settings.venue.api_secret.get_secret_value() == SECRET
    assert settings.venue.api_key is not None and settings.venue.api_key.get_secret_value() == other_key
    assert settings.mode == "live" and not settings.is_live_venue  # loopback simulator, not real money


def test_private_config_with_secrets_loads(tmp_path: Path) -> None:
    path = _write(tmp_path, f'[venue]\napi_key = "{KEY}"\napi_secret = "{SECRET}"\n', mode=0o600)
    assert load_settings(path, {}).venue.api_key is not None


@pytest.mark.parametrize(
    ("base_url", "with_keys", "live"),
    [
        ("https://futures.kraken.com", True, True),
        ("https://futures.kraken.com/", True, True),
        ("https://futures.kraken.com", False, False),
        ("https://demo-futures.kraken.com", True, False),
        ("http://127.0.0.1:8080", True, False),
    ],
)
def test_is_live_venue(tmp_path: Path, base_url: str, with_keys: bool, live: bool) -> None:
    env = {"TRADER_MODE": "live" if with_keys else "paper", "TRADER_VENUE__BASE_URL": base_url}
    if with_keys:
        env |= {"TRADER_VENUE__API_KEY": KEY, "TRADER_VENUE__API_SECRET": SECRET}
    if not with_keys and "demo" not in base_url and "127" not in base_url:
        env["TRADER_MODE"] = "live"  # the real host is refused in paper mode; live without keys is refused too
        with pytest.raises(ConfigError):
            load_settings(_write(tmp_path, ""), env)
        return
    settings = load_settings(_write(tmp_path, ""), env)
    assert settings.is_live_venue is live
    assert settings.venue.base_url == base_url.rstrip("/")


def test_secrets_never_shown(tmp_path: Path) -> None:
    env = {
        "TRADER_VENUE__API_KEY": KEY,
        "TRADER_VENUE__API_SECRET": SECRET,
        "TRADER_TELEGRAM__TOKEN": TOKEN,
        "TRADER_TELEGRAM__ALLOWED_CHAT_IDS": "1",
        "TRADER_TELEGRAM__ALLOWED_USER_IDS": "2",
    }
    settings = load_settings(_write(tmp_path, ""), env)
    shown = (
        repr(settings) + str(settings) + describe(settings) + settings.model_dump_json() + str(settings.model_dump())
    )
    for secret in (KEY, SECRET, TOKEN):
        assert secret not in shown
    assert set(settings.secret_values()) == {KEY, SECRET, TOKEN}
    assert "keys=set" in describe(settings)


def test_check_thresholds_boundary(tmp_path: Path) -> None:
    equal = load_settings(_write(tmp_path, "[risk]\nauction_max_margin_util = 80\n"), {})
    assert check_thresholds(equal) == []
    over = load_settings(_write(tmp_path, "[risk]\nauction_max_margin_util = 80.01\n"), {})
    (problem,) = check_thresholds(over)
    assert "auction_max_margin_util" in problem and "max_margin_utilization_pct" in problem


def test_validate_or_exit_emits_threshold_mismatch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    path = _write(tmp_path, "[risk]\nauction_max_margin_util = 85\n")
    with caplog.at_level(logging.CRITICAL, logger="events"), pytest.raises(SystemExit) as exit_info:
        validate_or_exit(path, {})
    assert exit_info.value.code == 2
    assert [r.getMessage().split()[0] for r in caplog.records] == ["THRESHOLD_MISMATCH"]
    assert "risk.auction_max_margin_util" in capsys.readouterr().err


def test_validate_or_exit_returns_settings(tmp_path: Path) -> None:
    assert validate_or_exit(_write(tmp_path, 'timeframe = "4h"\n'), {}).timeframe == "4h"


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    path = _write(tmp_path, 'mode = "x"\n[venue]\ntimeout_ms = 1\n[paper]\nspeed = 0\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path, {"TRADER_NOPE": "1"})
    keys = {p.key for p in err.value.problems}
    assert keys == {"mode", "venue.timeout_ms", "paper.speed", "TRADER_NOPE"}
    lines = format_config_errors(err.value).splitlines()
    assert len(lines) == 4 and all(line.startswith("config error: ") for line in lines)


_junk = st.one_of(
    st.text(max_size=30),
    st.integers(),
    st.floats(allow_nan=True),
    st.booleans(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@given(
    section=st.sampled_from(["venue", "risk", "intervals", "paper", "log", "telegram", "venue.breaker"]),
    field=st.sampled_from(
        ["api_key", "api_secret", "timeout_ms", "tick", "atr_stop_multiple", "seed", "level", "token", "open_seconds"]
    ),
    value=_junk,
    mode=st.sampled_from(["paper", "live", 3]),
)
def test_any_junk_is_a_config_error_never_a_crash_or_a_leak(
    section: str, field: str, value: object, mode: object
) -> None:
    secret_text = "LEAKCANARY" + "A" * 20
    data: dict[str, object] = {"mode": mode, "venue": {"api_key": secret_text}}
    node: dict[str, object] = data
    for part in section.split("."):
        child = node.setdefault(part, {})
        assert isinstance(child, dict)
        node = child
    node[field] = value
    try:
        settings_from_mapping(data, {})
    except ConfigError as err:
        assert err.problems
        assert secret_text not in format_config_errors(err) and secret_text not in str(err)
