"""Platform-neutral types that cross the core's seams."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from bot.text import clean_text

Money = Decimal
"""US dollars. Always a Decimal, never a float."""

ZERO = Decimal(0)

Platform = Literal["discord", "slack", "console", "cli"]


@dataclass(frozen=True, slots=True)
class ConversationKey:
    """Where a conversation lives: one thread (or channel, or DM) on one platform's tenant."""

    platform: str
    tenant: str  # Discord guild id ("dm" for DMs), Slack team id, "local" for the console
    channel: str
    thread: str = ""  # "" when the conversation is the channel itself

    def __str__(self) -> str:
        return f"{self.platform}:{self.tenant}:{self.channel}:{self.thread}"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: one user of one platform's tenant. What spends money or reads a conversation is
    bound to all three, since a user id is only unique within its platform (and, on Slack, its
    workspace)."""

    platform: str
    tenant: str  # as in ConversationKey.tenant
    user_id: str

    @classmethod
    def at(cls, key: ConversationKey, user_id: str) -> Actor:
        return cls(key.platform, key.tenant, user_id)

    @property
    def tenant_id(self) -> str:
        """The Store's platform-qualified tenant id, "<platform>:<tenant>"."""
        return f"{self.platform}:{self.tenant}"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who runs a command: a user of one platform's tenant, and whether the platform's own roles
    make them an admin there. The adapter resolves `is_admin` (Discord: Manage Server or the
    operator's lists; Slack: workspace admins or SLACK_ADMIN_USERS; the console: always); the
    core decides what an admin may do."""

    platform: str
    tenant: str
    user_id: str
    is_admin: bool = False

    @classmethod
    def at(cls, key: ConversationKey, user_id: str, *, is_admin: bool = False) -> Caller:
        return cls(key.platform, key.tenant, user_id, is_admin)

    @property
    def actor(self) -> Actor:
        return Actor(self.platform, self.tenant, self.user_id)

    def check(self, place: ConversationKey) -> ConversationKey:
        """`place`, when it is in the caller's tenant (an adapter's bug otherwise)."""
        if (place.platform, place.tenant) != (self.platform, self.tenant):
            raise ValueError(f"{self} acting in another tenant: {place}")
        return place


@dataclass(frozen=True, slots=True)
class ChatOptions:
    """What the user chose for this turn; None means "use the conversation's or the default"."""

    model: str | None = None
    system: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file sent with a message: its bytes (the console), or where the platform serves them
    (`url`, with the `headers` it needs: Slack wants the bot token). Neither is ever shown or
    logged: a CDN link is signed, a header is a secret."""

    name: str
    size: int
    content_type: str = ""
    url: str = field(default="", repr=False)
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    data: bytes | None = field(default=None, repr=False)
    voice: bool = False
    """A voice message (Discord's IS_VOICE_MESSAGE flag, a Slack audio clip)."""
    seconds: float = 0.0
    """A recording's length as the platform gives it (0: not given)."""


@dataclass(frozen=True, slots=True)
class ChatRequest:
    key: ConversationKey
    user_id: str
    text: str
    options: ChatOptions = field(default_factory=ChatOptions)
    user_name: str = ""
    attachments: tuple[Attachment, ...] = ()

    def __post_init__(self) -> None:  # every adapter builds one: the edge for what users type
        object.__setattr__(self, "text", clean_text(self.text))
        object.__setattr__(self, "user_name", clean_text(self.user_name))
