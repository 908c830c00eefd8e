"""What a turn must pass before a model is asked, beyond its own text: the user's chat limits
and moderation of their message. The engine runs these for every turn, new or regenerated, in
one order (ChatEngine._admit, _unfit, _moderated) and shows what they refuse."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.catalog import ModelEntry
from bot.clock import SYSTEM_CLOCK, Clock
from bot.engine.moderation import ModerationUnavailable, Moderator
from bot.engine.usage import ChatLimits, check_chat_limits
from bot.ops.logs import event
from bot.store import Store, UsageStore
from bot.store.records import Conversation, StoredMessage, TurnResult

log = logging.getLogger("parley.chat")

FINISH_MODERATION = "moderation"
REFUSAL_MODERATION = "Sorry, I can't help with that: the message was flagged by moderation."
REFUSAL_MODERATION_DOWN = "Sorry, I can't check messages right now; please try again later."


@dataclass(frozen=True, slots=True)
class Refused:
    """A moderation refusal, stored as an error turn answering the user's message."""

    text: str
    message_id: int
    conversation_id: int


class Admission:
    def __init__(
        self,
        store: Store,
        limits: ChatLimits,
        moderator: Moderator | None,
        fail_closed: bool,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.store = store
        self.limits = limits
        self.moderator = moderator
        self.moderation_fail_closed = fail_closed
        self._usage = UsageStore(store)
        self._clock = clock

    async def over_limits(self, tenant_id: str, user_id: str) -> str | None:
        """The refusal to show when the user is over a chat limit, else None."""
        if not self.limits.enabled:
            return None
        return await check_chat_limits(
            self._usage,
            self.limits,
            tenant_id=tenant_id,
            user_id=user_id,
            now=self._clock.wall(),
        )

    async def moderate(
        self, conversation: Conversation, user_message: StoredMessage, entry: ModelEntry
    ) -> Refused | None:
        """Check the message with the moderation model; a refusal is stored as an error turn."""
        if self.moderator is None:
            return None
        started = self._clock.now()
        try:
            verdict = await self.moderator.check(user_message.content)
        except ModerationUnavailable as exc:
            event(
                log,
                logging.WARNING,
                "moderation unavailable",
                conversation=conversation.id,
                moderator=self.moderator.name,
                error=str(exc),
                fail_closed=self.moderation_fail_closed,
            )
            if not self.moderation_fail_closed:
                return None
            text, categories = REFUSAL_MODERATION_DOWN, "unavailable"
        else:
            if not verdict.flagged:
                return None
            text, categories = REFUSAL_MODERATION, ",".join(verdict.categories) or "-"
        refusal = await self.store.add_message(
            conversation.id,
            "assistant",
            text,
            status="error",
            parent_id=user_message.id,
            model=entry.name,
            user_id=user_message.user_id,  # counted by the messages-per-minute limit
        )
        await self.store.finish_message(
            refusal.id,
            TurnResult(
                content=text,
                status="error",
                finish_reason=FINISH_MODERATION,
                model=None,
                provider=None,
                prompt_tokens=None,
                completion_tokens=None,
                cost=None,
                ttft_ms=None,
                duration_ms=int((self._clock.now() - started) * 1000),
            ),
        )
        event(
            log,
            logging.INFO,
            "message refused by moderation",
            conversation=conversation.id,
            message_id=refusal.id,
            moderator=self.moderator.name,
            categories=categories,
        )
        return Refused(text, refusal.id, conversation.id)
