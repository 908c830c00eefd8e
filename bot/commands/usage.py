"""/usage: tokens and spend today and this month, the caller's or (admins) the tenant's."""

from __future__ import annotations

from decimal import Decimal

from bot.commands.reply import Bold, Line, Mention, Reply
from bot.commands.words import tenant_word
from bot.domain import Caller, ConversationKey
from bot.engine.usage import UsageReport, UsageService
from bot.errors import NotAllowed, UserError

UNAVAILABLE = "Usage is not available on this bot."


def usage_lines(report: UsageReport, title: str) -> tuple[Line, ...]:
    lines: list[Line] = [(Bold(title), " (UTC)")]
    for period in (report.today, report.month):
        lines.append(
            (f"{period.label}: {period.tokens:,} tokens, {usd(period.cost)}"
             f" over {period.requests:,} requests",)
        )  # fmt: skip
        for line in period.lines:
            lines.append(
                (f"  • {line.kind} {line.model} [{line.provider}]: {line.tokens:,} tokens,"
                 f" {usd(line.cost)} ({line.count:,})",)
            )  # fmt: skip
    if report.top_users:
        lines.append(("Top users this month:",))
        for rank, user in enumerate(report.top_users, 1):
            spent = f": {user.tokens:,} tokens, {usd(user.cost)}"
            lines.append((f"  {rank}. ", Mention(user.user_id), spent))
    return tuple(lines)


def usd(amount: Decimal) -> str:
    if amount and amount < Decimal("0.01"):
        return f"${amount.quantize(Decimal('0.000001')).normalize():f}"
    return f"${amount.quantize(Decimal('0.01'))}"


class UsageCommands:
    def __init__(self, service: UsageService | None) -> None:
        self._service = service

    async def usage(self, caller: Caller, place: ConversationKey, *, tenant: bool = False) -> Reply:
        """The caller's usage, or with `tenant` the whole tenant's with its top users (admins)."""
        if self._service is None:
            raise UserError(UNAVAILABLE, code="unavailable")
        place = caller.check(place)
        if not tenant:
            report = await self._service.user_summary(place, caller.user_id)
            return Reply(usage_lines(report, "Your usage"))
        word = tenant_word(caller.platform)
        if not caller.is_admin:
            raise NotAllowed(f"Only admins can see this {word}'s usage.")
        report = await self._service.tenant_summary(place, is_admin=True)
        return Reply(usage_lines(report, f"This {word}'s usage"))
