"""Values at the Store's boundary: money, conversation titles, tenant ids."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from bot.domain import ConversationKey

TITLE_MAX = 100
_NANO_DIGITS = 9


def tenant_id_for(key: ConversationKey) -> str:
    """The platform-qualified tenant id used throughout the Store: "<platform>:<tenant>"."""
    return f"{key.platform}:{key.tenant}"


def platform_tenant(tenant_id: str) -> str:
    """The platform's own tenant id (a guild id, a team id, "dm") out of "<platform>:<tenant>"."""
    platform, sep, tenant = tenant_id.partition(":")
    if not sep or not platform:
        raise ValueError(f"not a platform-qualified tenant id: {tenant_id!r}")
    return tenant


def key_at(platform: str, tenant_id: str, channel_id: str, thread_id: str) -> ConversationKey:
    """The ConversationKey of a stored place (a conversation's, an image job's)."""
    return ConversationKey(platform, platform_tenant(tenant_id), channel_id, thread_id)


def title_from_text(text: str) -> str:
    """A conversation title: one line, whitespace collapsed, at most TITLE_MAX characters."""
    line = " ".join(text.split())
    if len(line) <= TITLE_MAX:
        return line
    return line[: TITLE_MAX - 1].rstrip() + "…"


def to_nano(cost: Decimal) -> int:
    """Decimal USD -> integer nano-USD, rounding half-even at the ninth decimal."""
    if not isinstance(cost, Decimal) or not cost.is_finite():
        raise ValueError(f"cost must be a finite Decimal, not {cost!r}")
    return int(cost.scaleb(_NANO_DIGITS).to_integral_value(rounding=ROUND_HALF_EVEN))


def from_nano(nano: int) -> Decimal:
    """Integer nano-USD -> Decimal USD, exactly."""
    return Decimal(int(nano)).scaleb(-_NANO_DIGITS)
