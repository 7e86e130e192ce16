from __future__ import annotations

from pathlib import Path

import pytest

from chatbot.config import ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_need_no_file() -> None:
    s = load_settings(environ={})
    assert s.kis.environment == "simulator" and s.database.url.startswith("sqlite")
    assert s.telegram.base_url == "https://api.telegram.org/bot" and s.telegram.allowed_users == ()


def test_example_file_loads_and_matches_defaults() -> None:
    assert load_settings(ROOT / "config.example.toml", environ={}) == load_settings(environ={})


def test_environment_overrides(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('[kis]\nenvironment = "virtual"\n[telegram]\nallowed_users = [1, 2]\n')
    s = load_settings(f, environ={"KISBOT_KIS_ENVIRONMENT": "real", "KISBOT_TELEGRAM_TOKEN": "123:abc",
                                  "KISBOT_DATABASE_URL": "postgresql://u@h/db", "KISBOT_TELEGRAM_ALLOWED_USERS": "5,6"})
    assert s.kis.environment == "real" and s.telegram.allowed_users == (5, 6)
    assert s.database.url == "postgresql://u@h/db"
    assert "123:abc" not in repr(s)


@pytest.mark.parametrize(("toml", "env", "names"), [
    ('[kis]\nenvironment = "paper"\n', {}, "kis.environment"),
    ('[kis]\nrequests_per_second = "fast"\n', {}, "kis.requests_per_second"),
    ('[telegram]\nallowed_users = ["bob"]\n', {}, "telegram.allowed_users"),
    ('[telegram]\nbogus = 1\n', {}, "telegram.bogus"),
    ('[nope]\n', {}, "[nope]"),
    ("", {"KISBOT_SIMULATOR_STARTING_CASH": "-1"}, "simulator.starting_cash"),
    ("", {"KISBOT_DATABASE_URL": "mysql://x"}, "database.url"),
    ("", {"KISBOT_KIS_ALLOW_REAL_ORDERS": "maybe"}, "KISBOT_KIS_ALLOW_REAL_ORDERS"),
    ("not toml [", {}, "not valid TOML"),
])
def test_bad_values_name_the_key(tmp_path: Path, toml: str, env: dict[str, str], names: str) -> None:
    f = tmp_path / "c.toml"
    f.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_settings(f, environ=env)
    assert names in str(info.value) and "\n" not in str(info.value)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings("/nonexistent.toml", environ={})


def test_the_kis_facts_the_settings_restate_are_kis_facts() -> None:
    from chatbot import config
    from chatbot.kis import protocol as p

    assert config.NIGHTLY_MAINTENANCE_KST == p.NIGHTLY_MAINTENANCE_KST
    assert config.WS_CLIENT_MAX_SUBSCRIPTIONS == p.WS_CLIENT_MAX_SUBSCRIPTIONS
