"""Usage and spend from the ledger (chat and image rows), and optional per-user chat limits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from bot.clock import SYSTEM_CLOCK, Clock
from bot.domain import ConversationKey
from bot.errors import NotAllowed
from bot.store import Store, UsageLine, UsageStore, UserSpend, tenant_id_for


@dataclass(frozen=True, slots=True)
class Period:
    label: str
    since: datetime
    lines: tuple[UsageLine, ...]

    @property
    def tokens(self) -> int:
        return sum(line.tokens for line in self.lines)

    @property
    def cost(self) -> Decimal:
        return sum((line.cost for line in self.lines), Decimal(0))

    @property
    def requests(self) -> int:
        return sum(line.count for line in self.lines)


@dataclass(frozen=True, slots=True)
class UsageReport:
    """One user's (or, with top_users, one tenant's) usage today and this month (UTC)."""

    today: Period
    month: Period
    top_users: tuple[UserSpend, ...] = ()


def day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def month_start(now: datetime) -> datetime:
    return day_start(now).replace(day=1)


class UsageService:
    def __init__(self, store: Store, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.usage = UsageStore(store)
        self._clock = clock

    async def user_summary(self, scope: ConversationKey, user_id: str) -> UsageReport:
        return await self._report(tenant_id_for(scope), user_id)

    async def tenant_summary(
        self, scope: ConversationKey, *, is_admin: bool, top: int = 5
    ) -> UsageReport:
        if not is_admin:
            raise NotAllowed("Only admins can see this server's usage.")
        report = await self._report(tenant_id_for(scope), None)
        users = await self.usage.top_users(
            tenant_id=tenant_id_for(scope), since=report.month.since, limit=top
        )
        return UsageReport(report.today, report.month, tuple(users))

    async def _report(self, tenant_id: str, user_id: str | None) -> UsageReport:
        now = self._clock.wall()
        periods = []
        for label, since in (("Today", day_start(now)), ("This month", month_start(now))):
            lines = await self.usage.breakdown(tenant_id=tenant_id, user_id=user_id, since=since)
            periods.append(Period(label, since, tuple(lines)))
        return UsageReport(periods[0], periods[1])


@dataclass(frozen=True, slots=True)
class ChatLimits:
    """Per-user chat limits within a tenant; None means unlimited."""

    messages_per_minute: int | None = None
    tokens_per_day: int | None = None

    @property
    def enabled(self) -> bool:
        return self.messages_per_minute is not None or self.tokens_per_day is not None


async def check_chat_limits(
    usage: UsageStore, limits: ChatLimits, *, tenant_id: str, user_id: str, now: datetime
) -> str | None:
    """A refusal to show, or None when the user may send another message now (and it counts
    against the messages-per-minute limit: admitted atomically, whatever the replica).

    Tokens are counted when a turn ends, so turns running at once may together pass the daily
    limit by what they spend; the next turn is refused."""
    if limits.tokens_per_day is not None:
        spent = await usage.chat_tokens(tenant_id=tenant_id, user_id=user_id, since=day_start(now))
        if spent >= limits.tokens_per_day:
            return (
                f"You've used your {limits.tokens_per_day:,} chat tokens for today"
                f" ({spent:,} so far); the limit resets at midnight UTC."
            )
    if limits.messages_per_minute is not None and not await usage.admit_turn(
        tenant_id=tenant_id, user_id=user_id, per_minute=limits.messages_per_minute
    ):
        return (
            f"Slow down: you can send {limits.messages_per_minute} messages a minute."
            " Try again in a moment."
        )
    return None
