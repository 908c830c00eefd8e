"""Settings: the environment, then `.env`, then an optional TOML file named by BOT_CONFIG."""

from __future__ import annotations

import base64
import binascii
import os
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from bot.engine.rounds import TOOL_ROUNDS
from bot.tools.mcp import McpServerConfig


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


CommaList = Annotated[list[str], NoDecode, BeforeValidator(_split_commas)]
"""A list setting written as `a,b,c` in the environment (or a TOML array)."""


def _shard_numbers(value: object) -> object:
    """`0-3,8` -> [0, 1, 2, 3, 8] (a TOML array of numbers is taken as it is)."""
    if not isinstance(value, str) or not value.strip():
        return value if not isinstance(value, str) else []
    numbers: list[int] = []
    for part in (p.strip() for p in value.split(",")):
        low, dash, high = part.partition("-")
        digits = low.isdecimal() and (high.isdecimal() or not dash) and part.isascii()
        if not digits or int(high or low) < int(low):
            raise ValueError(f"shard numbers are written like 0-3 or 0,2 (got {part!r})")
        numbers += range(int(low), int(high or low) + 1)
    return numbers


ShardList = Annotated[list[int], NoDecode, BeforeValidator(_shard_numbers)]


class ConfigurationError(Exception):
    """A setting is missing or malformed. The message is one line that names the setting."""


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        case_sensitive=False,
        extra="ignore",
    )

    # -- the bot ---------------------------------------------------------------------------
    default_model: str = "llama-3.1-8b"
    # Discord and Slack users may choose models without a price (usage is then counted in tokens
    # only); the console and `ask` always may.
    allow_unpriced_models: bool = False
    system_prompt: str = (
        "You are Parley, a helpful assistant in a group chat. Answer clearly and concisely; "
        "use Markdown where it helps."
    )
    # "summary": a reasoning model's thoughts, folded, under its answer (a persona may differ).
    show_reasoning: Literal["off", "summary"] = "off"
    database_url: str = "sqlite+aiosqlite:///parley.db"
    database_pool_size: int = Field(default=10, ge=1, le=500)  # as bot.store.engine.POOL_SIZE
    log_level: str = "INFO"
    # Payload-dumping libraries (discord.py, slack_sdk, aiohttp…) stay at INFO unless set here.
    log_level_libraries: Literal["DEBUG", "INFO", "WARNING", "ERROR"] | None = None
    log_format: Literal["text", "json"] = "text"
    port: int | None = Field(default=None, ge=1, le=65535)

    host: str = "0.0.0.0"  # the web server must be reachable by the platforms (Slack events)

    # -- Discord ---------------------------------------------------------------------------
    discord_token: SecretStr | None = None
    discord_api_base_url: str = "https://discord.com/api/v10"
    discord_gateway_url: str | None = None
    discord_dev_guild_ids: CommaList = Field(default_factory=list)
    discord_allow_dms: bool = False
    discord_allowed_guilds: CommaList = Field(default_factory=list)
    discord_allowed_channels: CommaList = Field(default_factory=list)
    discord_allowed_roles: CommaList = Field(default_factory=list)
    discord_allowed_users: CommaList = Field(default_factory=list)
    discord_admin_role: str | None = None
    # REST requests per second for the whole bot (interaction callbacks and webhooks excepted);
    # Discord allows 50, the rest is headroom for calls we cannot see (another process, a script).
    discord_global_rate_per_second: float = Field(default=45.0, gt=0)
    # Connections discord.py may hold to Discord at once, the gateway's websocket included.
    # discord.py's own default is no limit: 1,000 streaming replies meant ~1,000 open sockets
    # (against Discord, as many TLS sessions) and ~5 KB of memory a stream (docs/benchmarks.md).
    discord_max_connections: int = Field(default=100, ge=2)
    # Sharding (a bot in thousands of servers): DISCORD_SHARD_COUNT shards in all, this process
    # running DISCORD_SHARD_IDS of them (all when unset) through discord.py's AutoShardedClient.
    discord_shard_count: int | None = Field(default=None, ge=1)
    discord_shard_ids: ShardList = Field(default_factory=list)

    # -- Slack -----------------------------------------------------------------------------
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    # OAuth installs (a public app in many workspaces): /slack/install and /slack/oauth_redirect
    # with the app's credentials; each workspace's bot token is kept in the database.
    slack_client_id: str | None = None
    slack_client_secret: SecretStr | None = None
    slack_scopes: CommaList = Field(
        default_factory=lambda: [
            "app_mentions:read", "assistant:write", "channels:history", "chat:write",
            "commands", "files:read", "files:write", "groups:history", "im:history",
            "mpim:history", "users:read",
        ]
    )  # fmt: skip
    # Fernet keys, comma-separated: installs' tokens are stored encrypted with the first, read
    # with any (adapters/slack/sealed.py).
    slack_token_key: SecretStr | None = None
    slack_redirect_uri: str | None = None  # https://<host>/slack/oauth_redirect; None: bolt's
    slack_authorize_url: str = "https://slack.com/oauth/v2/authorize"
    slack_update_rate_per_min: int = Field(default=45, ge=1)  # chat.update is Tier 3 (~50/min)
    # The window Slack counts its tiers over (a minute): a quarter of each window's calls may
    # go at once for a quiet workspace. Shorter windows (tests) leave less to burst.
    slack_rate_window_seconds: float = Field(default=60.0, gt=0)
    slack_native_streaming: bool = True  # chat.startStream where the workspace allows it
    # Parley admins on Slack besides workspace admins and owners (users.info): user ids U…
    slack_admin_users: CommaList = Field(default_factory=list)

    # -- Cloudflare Workers AI and AI Gateway ----------------------------------------------
    cloudflare_account_id: str | None = None
    cloudflare_api_token: SecretStr | None = None
    cloudflare_api_base_url: str = "https://api.cloudflare.com/client/v4"
    cloudflare_ai_gateway: str | None = None
    cloudflare_ai_gateway_token: SecretStr | None = None
    cloudflare_ai_gateway_base_url: str = "https://gateway.ai.cloudflare.com/v1"

    # -- OpenAI and OpenAI-compatible endpoints --------------------------------------------
    openai_api_key: SecretStr | None = None
    openai_base_url: str = "https://api.openai.com/v1"
    together_api_key: SecretStr | None = None
    together_base_url: str = "https://api.together.xyz/v1"
    groq_api_key: SecretStr | None = None
    groq_base_url: str = "https://api.groq.com/openai/v1"
    openrouter_api_key: SecretStr | None = None
    openrouter_base_url: str = "https://openrouter.ai/api/v1"
    gemini_api_key: SecretStr | None = None
    gemini_base_url: str = "https://generativelanguage.googleapis.com/v1beta/openai"
    xai_api_key: SecretStr | None = None
    xai_base_url: str = "https://api.x.ai/v1"
    ollama_base_url: str | None = None
    openai_compat_base_url: str | None = None
    openai_compat_api_key: SecretStr | None = None

    # -- Anthropic ---------------------------------------------------------------------------
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str = "https://api.anthropic.com"

    # -- resilience -------------------------------------------------------------------------
    llm_retry_max_wait: float = Field(default=5.0, ge=0, le=120)
    circuit_breaker_failure_threshold: int = Field(default=5, ge=1)
    circuit_breaker_failure_window_ms: int = Field(default=600_000, ge=1)
    circuit_breaker_timeout_ms: int = Field(default=600_000, ge=1)
    circuit_breaker_success_threshold: int = Field(default=1, ge=1)

    # -- images ------------------------------------------------------------------------------
    images_per_hour: int = Field(default=10, ge=0)
    images_per_day: int = Field(default=50, ge=0)
    daily_cost_limit_usd: Decimal = Field(default=Decimal("10.00"), ge=0)
    tenant_monthly_image_cost_limit_usd: Decimal = Field(default=Decimal("100.00"), ge=0)
    image_quote_ttl_seconds: int = Field(default=900, ge=1)
    image_prompt_max_chars: int = Field(default=1000, ge=1, le=32_000)
    image_job_timeout_seconds: int = Field(default=300, ge=10)
    enable_image_generation_openai: bool = True
    enable_image_generation_together: bool = True
    enable_image_generation_replicate: bool = True
    enable_image_generation_workers_ai: bool = True
    enable_image_generation_google: bool = True
    replicate_api_token: SecretStr | None = None
    replicate_base_url: str = "https://api.replicate.com/v1"
    google_api_key: SecretStr | None = None
    google_base_url: str = "https://generativelanguage.googleapis.com/v1beta"

    @field_validator("replicate_base_url", "google_base_url")
    @classmethod
    def _image_base_url(cls, value: str) -> str:
        value = value.strip()
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    def image_generation_enabled(self, provider: str) -> bool:
        """ENABLE_IMAGE_GENERATION_<PROVIDER> (workers-ai -> WORKERS_AI); unknown names are off."""
        flag = getattr(self, "enable_image_generation_" + provider.replace("-", "_"), None)
        return bool(flag)

    # -- conversations, limits and operations -------------------------------------------------
    max_prompt_chars: int = Field(default=32_000, ge=1, le=1_000_000)
    chat_messages_per_minute: int | None = Field(default=None, ge=1)  # per user; unset: no limit
    chat_tokens_per_day: int | None = Field(default=None, ge=1)  # per user per UTC day
    moderation_model: str | None = None  # openai:<model> or workers-ai:<model>; unset: off
    moderation_fail_closed: bool = False  # refuse when the moderation call itself fails
    shutdown_grace_seconds: float = Field(default=30.0, ge=0, le=3600)
    # A running reply's lease: a crashed process's replies are finished this long after it died.
    turn_lease_seconds: float = Field(default=30.0, ge=0.5, le=3600)
    history_page_size: int = Field(default=10, ge=1, le=50)
    # Files sent with a message (bot/attachments.py): how many are read, how large, and how many
    # characters of their text a turn may carry (less when the model's window is smaller).
    attachments_per_turn: int = Field(default=5, ge=0, le=20)
    attachment_max_bytes: int = Field(default=10_000_000, ge=1_000, le=100_000_000)
    attachment_text_chars: int = Field(default=60_000, ge=1_000, le=2_000_000)
    # A model that sees images, for turns with pictures whose own model cannot (unset: the
    # reply names the pictures as unseen and lists the models that would see them).
    vision_fallback_model: str | None = None
    # Voice messages: the speech model (bot/catalog/voice.toml, or "off"; unset: Workers AI's
    # Whisper turbo when Cloudflare is set up, else OpenAI's when its key is) and the longest.
    voice_model: str | None = None
    voice_max_seconds: int = Field(default=300, ge=1, le=3600)

    # -- tools ------------------------------------------------------------------------------
    # [[mcp_servers]] tables in the BOT_CONFIG file (or MCP_SERVERS as a JSON list).
    mcp_servers: list[McpServerConfig] = Field(default_factory=list)
    # The commands a stdio MCP server may run (by name or path): nothing runs unless listed.
    mcp_commands: CommaList = Field(default_factory=list)
    tool_rounds: int = Field(default=TOOL_ROUNDS, ge=1, le=50)  # rounds of tool calls per reply
    # How long a call to a tool that acts on the world waits for its asker's Approve.
    tool_approval_seconds: float = Field(default=300.0, gt=0, le=3600)
    # Slack assistant threads: the prompts offered when one starts (at most 4), under a title.
    slack_suggested_prompts: list[str] = Field(
        default_factory=lambda: [
            "Summarize a long message for me",
            "Explain a concept in simple words",
            "Help me write a reply",
        ]
    )
    slack_prompts_title: str = "Try asking"
    # Web search as a tool (Tavily): on when the key is set.
    tavily_api_key: SecretStr | None = None
    tavily_base_url: str = "https://api.tavily.com"
    web_search_results: int = Field(default=5, ge=1, le=20)

    @field_validator("moderation_model")
    @classmethod
    def _moderation_model(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        provider, _, model = value.strip().partition(":")
        if provider not in ("openai", "workers-ai") or not model:
            raise ValueError(
                "must be openai:<model> (e.g. openai:omni-moderation-latest) or "
                "workers-ai:<model> (e.g. workers-ai:@cf/meta/llama-guard-3-8b)"
            )
        return value.strip()

    # -- catalog overrides (TOML only): [[models]] tables, same fields as bot/catalog/models.toml
    models: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("discord_shard_ids")
    @classmethod
    def _shards(cls, value: list[int], info: ValidationInfo) -> list[int]:
        count = info.data.get("discord_shard_count")
        if value and count is None:
            raise ValueError("needs DISCORD_SHARD_COUNT, the number of shards in all")
        if count is not None and any(not 0 <= n < count for n in value):
            raise ValueError(f"each shard must be from 0 to {count - 1} (DISCORD_SHARD_COUNT)")
        return sorted(set(value))

    @field_validator("discord_gateway_url")
    @classmethod
    def _ws_url(cls, value: str | None) -> str | None:
        if value is not None and not value.strip().startswith(("ws://", "wss://")):
            raise ValueError("must be a ws:// or wss:// URL")
        return value.strip() if value else None

    @field_validator("slack_token_key")
    @classmethod
    def _fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        """Fernet keys, comma-separated (the first seals, each opens: a rotation lists the new
        key first): 32 bytes in URL-safe base64, as cryptography's Fernet.generate_key() makes."""
        keys = [k.strip() for k in (value.get_secret_value() if value else "").split(",")]
        keys = [k for k in keys if k]
        if not keys:
            return None
        for key in keys:
            try:
                raw = base64.urlsafe_b64decode(key.encode())
            except (binascii.Error, ValueError):
                raw = b""
            if len(raw) != 32:
                raise ValueError(
                    "must be Fernet keys, comma-separated (32 bytes, URL-safe base64); make one"
                    ' with: python -c "from cryptography.fernet import Fernet;'
                    ' print(Fernet.generate_key().decode())"'
                )
        return SecretStr(",".join(keys))

    @field_validator("slack_api_url")
    @classmethod
    def _slack_url(cls, value: str) -> str:
        # slack_sdk joins method names onto this base, so it must end with a slash.
        return (cls._http_url(value) or "") + "/"

    @field_validator(
        "discord_api_base_url",
        "cloudflare_api_base_url",
        "cloudflare_ai_gateway_base_url",
        "openai_base_url",
        "together_base_url",
        "groq_base_url",
        "openrouter_base_url",
        "gemini_base_url",
        "xai_base_url",
        "anthropic_base_url",
        "ollama_base_url",
        "openai_compat_base_url",
    )
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _sqlalchemy_url(cls, value: str) -> str:
        if "://" not in value:
            raise ValueError("must be a SQLAlchemy URL such as sqlite+aiosqlite:///parley.db")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        toml_path = os.environ.get("BOT_CONFIG")
        if toml_path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(toml_path)))
        return tuple(sources)

    # -- derived ----------------------------------------------------------------------------
    def secret_values(self) -> list[str]:
        """Every secret configured, for log redaction."""
        values = [
            _secret(getattr(self, name))
            for name, field in type(self).model_fields.items()
            if field.annotation in (SecretStr, SecretStr | None)
        ]
        values += [secret for server in self.mcp_servers for secret in server.secrets()]
        return [v for v in values if v]

    def platforms(self) -> list[str]:
        found = []
        if self.discord_token:
            found.append("discord")
        installs = self.slack_client_id and self.slack_client_secret and self.slack_signing_secret
        if installs or (
            self.slack_bot_token and (self.slack_signing_secret or self.slack_app_token)
        ):
            found.append("slack")
        return found


def load_settings(**overrides: Any) -> Settings:
    """Load and validate settings, turning any problem into one ConfigurationError line."""
    toml_path = os.environ.get("BOT_CONFIG")
    if toml_path and not Path(toml_path).is_file():
        raise ConfigurationError(f"BOT_CONFIG: no such file: {toml_path}")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "settings"
        raise ConfigurationError(f"{name}: {first['msg']}") from None
    except (ValueError, OSError) as exc:  # a malformed TOML file
        raise ConfigurationError(f"BOT_CONFIG: {exc}") from None
