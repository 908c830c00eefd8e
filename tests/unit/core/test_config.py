from __future__ import annotations

import pytest

from bot.config import ConfigurationError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("BOT_CONFIG", "PORT", "DATABASE_URL", "OPENAI_BASE_URL", "DEFAULT_MODEL"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_need_no_configuration() -> None:
    settings = load_settings()
    assert settings.database_url == "sqlite+aiosqlite:///parley.db"
    assert settings.cloudflare_api_base_url == "https://api.cloudflare.com/client/v4"
    assert settings.cloudflare_ai_gateway_base_url == "https://gateway.ai.cloudflare.com/v1"
    assert settings.platforms() == []


def test_environment_beats_dotenv_beats_toml(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    toml = tmp_path / "parley.toml"
    toml.write_text(
        'default_model = "from-toml"\nlog_level = "DEBUG"\nsystem_prompt = "toml"\n'
        '[[models]]\nname = "llama-3.1-8b"\ndefault_max_tokens = 77\n'
    )
    (tmp_path / ".env").write_text("DEFAULT_MODEL=from-dotenv\nLOG_LEVEL=WARNING\n")
    monkeypatch.setenv("BOT_CONFIG", str(toml))
    monkeypatch.setenv("DEFAULT_MODEL", "from-env")
    settings = load_settings()
    assert settings.default_model == "from-env"
    assert settings.log_level == "WARNING"
    assert settings.system_prompt == "toml"
    assert settings.models == [{"name": "llama-3.1-8b", "default_max_tokens": 77}]


def test_malformed_setting_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "eighty")
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    assert str(info.value).startswith("PORT: ")
    assert "\n" not in str(info.value)


def test_base_urls_must_be_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "ftp://example")
    with pytest.raises(ConfigurationError, match=r"^OPENAI_BASE_URL: "):
        load_settings()


def test_missing_toml_file_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_CONFIG", "/nonexistent/parley.toml")
    with pytest.raises(ConfigurationError, match=r"^BOT_CONFIG: no such file"):
        load_settings()


def test_secrets_are_listed_for_redaction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-123456")
    monkeypatch.setenv("CLOUDFLARE_AI_GATEWAY_TOKEN", "gw-token-abcdef")
    settings = load_settings()
    assert set(settings.secret_values()) >= {"sk-test-secret-123456", "gw-token-abcdef"}
    assert "sk-test-secret-123456" not in repr(settings)


@pytest.mark.parametrize(
    ("count", "ids", "expect"),
    [
        ("4", "0-1,3", [0, 1, 3]),
        ("4", "3,1,1", [1, 3]),
        ("2", "", []),  # all shards in this process
        ("2", "2", "DISCORD_SHARD_IDS: Value error, each shard must be from 0 to 1"),
        ("", "1", "DISCORD_SHARD_IDS: Value error, needs DISCORD_SHARD_COUNT"),
        ("2", "1-0", "DISCORD_SHARD_IDS: Value error, shard numbers are written like 0-3"),
        ("2", "one", "DISCORD_SHARD_IDS: Value error, shard numbers are written like 0-3"),
        ("2", "²", "DISCORD_SHARD_IDS: Value error, shard numbers are written like 0-3"),
        ("0", "", "DISCORD_SHARD_COUNT: Input should be greater than or equal to 1"),
    ],
)
def test_discord_shards_are_read_or_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch, count: str, ids: str, expect: list[int] | str
) -> None:
    if count:
        monkeypatch.setenv("DISCORD_SHARD_COUNT", count)
    monkeypatch.setenv("DISCORD_SHARD_IDS", ids)
    if isinstance(expect, list):
        assert load_settings().discord_shard_ids == expect
        return
    with pytest.raises(ConfigurationError) as refused:
        load_settings()
    assert str(refused.value).startswith(expect)


def test_slack_installs_need_the_signing_secret_and_no_bot_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLACK_CLIENT_ID", "1111.2222")
    monkeypatch.setenv("SLACK_CLIENT_SECRET", "shh-client-secret")
    assert "slack" not in load_settings().platforms()  # installs are served over HTTP
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "signing")
    settings = load_settings()
    assert "slack" in settings.platforms() and settings.slack_bot_token is None
    assert "shh-client-secret" in settings.secret_values()
    assert "commands" in settings.slack_scopes and "chat:write" in settings.slack_scopes
