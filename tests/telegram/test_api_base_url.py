"""`telegram.api_base_url`: which Bot API server the bot talks to (Telegram's, or a self-hosted one)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from scheduler.telegram.notifier import TelegramNotifier
from scheduler.telegram.registry_status import RegistryStatusProvider
from settings.config import ConfigError, Settings, settings_from_mapping
from tests.daemon.procs import ROOT
from tests.telegram.conftest import OPERATOR, OPERATOR_CHAT, TOKEN
from tests.telegram.fake_bot_api import FakeBotAPI

KEY = "telegram.api_base_url"
SECRET_HALF = TOKEN.split(":")[1]


def telegram_section(**extra: Any) -> dict[str, Any]:
    return {"telegram": {"token": TOKEN, "allowed_chat_ids": [1], "allowed_user_ids": [2], **extra}}


def api_url(data: dict[str, Any], environ: dict[str, str] | None = None) -> str:
    settings: Settings = settings_from_mapping(data, environ)
    assert settings.telegram is not None
    return settings.telegram.api_base_url


def problem_with(url: object) -> str:
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping(telegram_section(api_base_url=url))
    [problem] = caught.value.problems
    assert problem.key == KEY
    return problem.message


def test_the_default_is_telegrams_own_server() -> None:
    assert api_url(telegram_section()) == "https://api.telegram.org"


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("https://api.telegram.org/", "https://api.telegram.org"),
        ("https://tg.example.com:8443", "https://tg.example.com:8443"),
        ("https://proxy.example.com/telegram/", "https://proxy.example.com/telegram"),
        ("http://127.0.0.1:8081", "http://127.0.0.1:8081"),
        ("http://localhost:8081", "http://localhost:8081"),
        ("  https://api.telegram.org  ", "https://api.telegram.org"),
    ],
)
def test_accepted_servers_are_normalised(given: str, used: str) -> None:
    assert api_url(telegram_section(api_base_url=given)) == used


def test_the_environment_sets_it_like_any_other_key() -> None:
    environ = {"TRADER_TELEGRAM__API_BASE_URL": "https://tg.example.com"}
    assert api_url(telegram_section(), environ) == "https://tg.example.com"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://tg.example.com", "plain http is only allowed to 127.0.0.1/localhost"),
        ("ftp://tg.example.com", "must be an http(s) URL"),
        ("api.telegram.org", "must be an http(s) URL"),
        ("https://tg.example.com/?x=1", "no credentials, query or fragment"),
        ("https://user:pw@tg.example.com", "no credentials, query or fragment"),
        ("https://tg.example.com:eighty", "is not a valid URL"),
        ("https://{token}.example.com", "host name"),
        ("https://api.telegram.org/bot", "must not contain /bot or the token"),
        ("https://tg.example.com/%7Btoken%7D", "plain path prefix"),
        (8081, "valid string"),
    ],
)
def test_unusable_servers_are_refused_with_the_key_named(url: object, expected: str) -> None:
    assert expected in problem_with(url)


@pytest.mark.parametrize(
    "url",
    [
        f"https://api.telegram.org/bot{TOKEN}",
        f"https://api.telegram.org/bot{TOKEN}/getMe",
        f"https://tg.example.com/prefix/{TOKEN}",
        f"http://tg.example.com/bot{TOKEN}",  # two problems at once: the token is still not echoed
        f"https://tg.example.com:{SECRET_HALF}",
    ],
)
def test_a_token_pasted_into_the_url_is_refused_and_never_echoed(url: str) -> None:
    message = problem_with(url)
    assert TOKEN not in message and SECRET_HALF not in message


def test_config_check_names_the_key_without_echoing_the_token(tmp_path: Path) -> None:
    config = tmp_path / "daemon.toml"
    config.write_text(
        f'[telegram]\ntoken = "{TOKEN}"\nallowed_chat_ids = [1]\nallowed_user_ids = [2]\n'
        f'api_base_url = "https://api.telegram.org/bot{TOKEN}"\n'
    )
    config.chmod(0o600)
    proc = subprocess.run(
        [sys.executable, "-m", "settings.config", "--check", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert f"config error: {KEY}: must not contain /bot or the token" in out
    assert TOKEN not in out and SECRET_HALF not in out


def test_the_bot_talks_to_the_configured_server_under_a_path_prefix(provider: RegistryStatusProvider) -> None:
    fake = FakeBotAPI(token=TOKEN, path_prefix="/tg")
    fake.start()
    settings = settings_from_mapping(
        {
            "telegram": {
                "token": TOKEN,
                "allowed_chat_ids": [OPERATOR_CHAT],
                "allowed_user_ids": [OPERATOR],
                "api_base_url": fake.base_url + "/",
            }
        }
    ).telegram
    assert settings is not None
    notifier = TelegramNotifier(settings, provider, poll_timeout_s=1.0, retry_s=0.2)
    notifier.start()
    try:
        assert notifier.wait_ready(10)  # getMe and polling went to <prefix>/bot<token>/...: the fake 404s the rest
        fake.push_command(OPERATOR_CHAT, OPERATOR, "/help")
        assert fake.wait_for(lambda: len(fake.sent_to(OPERATOR_CHAT)) == 1, timeout=10)
    finally:
        notifier.stop(timeout=10)
        fake.stop()
