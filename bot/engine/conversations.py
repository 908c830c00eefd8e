"""Conversations as a user sees them: `/history`, `/search`, `/archive`, `/export`, `/new`.

Isolation is decided here, once: a caller acts from a place (`scope`, the ConversationKey the
platform event came from, whose tenant the adapter vouches for) as a user. A conversation is
visible only inside its own tenant and platform, and only to the user who started it; whatever id
or key a caller passes, nothing else is found. Admins may archive a conversation they are in
(by key), never one they can only name by id.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime

from bot.attachments import names
from bot.clock import SYSTEM_CLOCK, Clock
from bot.domain import ConversationKey
from bot.engine.history import rounds_messages
from bot.errors import UserError
from bot.store import (
    Conversation,
    ConversationStore,
    SearchHit,
    SearchStore,
    Store,
    StoredMessage,
    tenant_id_for,
)
from bot.store.search_repo import terms


class ConversationError(UserError, LookupError):
    """The conversation is missing, archived, or not the caller's; safe to show the user."""

    code = "conversation"


NOT_FOUND = "There is no conversation of yours here."
ARCHIVED = "This conversation is archived; start a new one."
NO_WORDS = "Give /search a word or two to look for."
MAX_ID = 2**63 - 1  # a 64-bit integer key


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    id: int
    title: str
    last_message_at: datetime | None
    message_count: int
    channel_id: str
    thread_id: str
    archived: bool


@dataclass(frozen=True, slots=True)
class HistoryPage:
    items: tuple[ConversationSummary, ...]
    page: int  # 1-based
    page_size: int
    has_more: bool


@dataclass(frozen=True, slots=True)
class ExportFile:
    name: str
    data: bytes
    content_type: str = "text/markdown; charset=utf-8"


class ConversationService:
    def __init__(self, store: Store, *, clock: Clock = SYSTEM_CLOCK, page_size: int = 10) -> None:
        self.store = store
        self.conversations = ConversationStore(store)
        self._clock = clock
        self.page_size = page_size

    async def history(
        self, scope: ConversationKey, user_id: str, *, page: int = 1, page_size: int | None = None
    ) -> HistoryPage:
        """The user's conversations in the scope's tenant, newest first (archived ones hidden)."""
        size = page_size or self.page_size
        page = max(1, page)
        rows = await self.store.list_conversations(
            platform=scope.platform,
            tenant_id=tenant_id_for(scope),
            user_id=user_id,
            limit=size + 1,
            offset=(page - 1) * size,
        )
        items = tuple(_summary(c) for c in rows[:size])
        return HistoryPage(items, page, size, has_more=len(rows) > size)

    async def search(
        self, scope: ConversationKey, user_id: str, words: str, *, limit: int = 10
    ) -> list[SearchHit]:
        """The user's best `limit` messages (and answers to them) holding every word, in their
        own conversations in the scope's tenant (archived ones hidden, as in /history)."""
        found = terms(words)
        if not found:
            raise ConversationError(NO_WORDS)
        return await SearchStore(self.store).search(
            tenant_id=tenant_id_for(scope), user_id=user_id, words=found, limit=limit
        )

    async def find(
        self, scope: ConversationKey, user_id: str, conversation_id: int
    ) -> Conversation:
        """A conversation by id, only if it is the user's, in the scope's tenant, not archived."""
        if not 0 < conversation_id <= MAX_ID:  # no row has it, and the driver could not bind it
            raise ConversationError(NOT_FOUND)
        conversation = await self.store.get_conversation_by_id(conversation_id)
        if not self._owned(conversation, scope, user_id):
            raise ConversationError(NOT_FOUND)
        assert conversation is not None
        if conversation.archived:
            raise ConversationError(ARCHIVED)
        return conversation

    async def archive(self, key: ConversationKey, user_id: str, *, is_admin: bool = False) -> None:
        """Hide the conversation at `key`: it leaves /history and no longer answers."""
        conversation = await self.store.get_conversation(key)
        if conversation is None or conversation.archived:
            raise ConversationError(NOT_FOUND if conversation is None else ARCHIVED)
        if conversation.user_id != user_id and not is_admin:
            raise ConversationError(
                "Only the person who started this conversation, or an admin, can archive it."
            )
        await self.store.set_archived(conversation.id, True)

    async def archive_by_id(
        self, scope: ConversationKey, user_id: str, conversation_id: int
    ) -> Conversation:
        conversation = await self.find(scope, user_id, conversation_id)
        await self.store.set_archived(conversation.id, True)
        return conversation

    async def new_context(self, key: ConversationKey, user_id: str) -> bool:
        """`/new` in a thread: later turns ignore all said so far (False: nothing to drop)."""
        conversation = await self._own_at(key, user_id)
        if conversation is None:
            return False
        return await self.conversations.start_new_context(conversation.id) is not None

    async def export(self, key: ConversationKey, user_id: str) -> ExportFile:
        conversation = await self._own_at(key, user_id)
        if conversation is None:
            raise ConversationError(NOT_FOUND)
        return await self._export(conversation)

    async def export_by_id(
        self, scope: ConversationKey, user_id: str, conversation_id: int
    ) -> ExportFile:
        return await self._export(await self.find(scope, user_id, conversation_id))

    # -- internals ---------------------------------------------------------------------------
    def _owned(self, conversation: Conversation | None, scope: ConversationKey, user: str) -> bool:
        return (
            conversation is not None
            and conversation.platform == scope.platform
            and conversation.tenant_id == tenant_id_for(scope)
            and conversation.user_id == user
        )

    async def _own_at(self, key: ConversationKey, user_id: str) -> Conversation | None:
        conversation = await self.store.get_conversation(key)
        if conversation is None:
            return None
        if conversation.archived:
            raise ConversationError(ARCHIVED)
        if conversation.user_id != user_id:
            raise ConversationError("This conversation belongs to someone else.")
        return conversation

    async def _export(self, conversation: Conversation) -> ExportFile:
        messages = await self.store.history(conversation.id, limit=100_000)
        text = render_markdown(conversation, messages, exported_at=self._clock.wall())
        return ExportFile(export_name(conversation), text.encode("utf-8"))


def render_markdown(
    conversation: Conversation, messages: list[StoredMessage], *, exported_at: datetime
) -> str:
    """Title, participants, then every visible turn with its role and time."""
    title = conversation.title or "Untitled conversation"
    users = sorted({m.user_id for m in messages if m.role == "user" and m.user_id})
    models = sorted({m.model for m in messages if m.role == "assistant" and m.model})
    lines = [
        f"# {title}",
        "",
        f"- Participants: {', '.join(users) or conversation.user_id}; assistant"
        + (f" ({', '.join(models)})" if models else ""),
        f"- Started: {_when(conversation.created_at)}",
        f"- Exported: {_when(exported_at)}",
        "",
    ]
    for message in messages:
        if message.role == "assistant" and message.status == "streaming":
            continue
        if message.role == "user":
            heading = f"**{message.user_id or 'user'}**"
        else:
            heading = f"**assistant** ({message.model})" if message.model else "**assistant**"
        note = "" if message.status == "complete" else f" _[{message.status}]_"
        if message.finish_reason == "moderation":
            note = " _[refused by moderation]_"
        if (
            conversation.context_start_id is not None
            and message.id == conversation.context_start_id
        ):
            note += "\n\n---\n_(new context started here)_"
        lines += [f"### {heading} · {_when(message.created_at)}{note}", "", message.content, ""]
        if files := names(message.attachments):
            lines += [f"_Attached: {', '.join(f'`{name}`' for name in files)}_", ""]
        if message.tool_rounds:
            lines += _tool_calls(message.tool_rounds)
    return "\n".join(lines).rstrip() + "\n"


EXPORTED_RESULT = 500
"""Characters of each tool result an export shows."""


def _tool_calls(record: str) -> list[str]:
    """The answer's tool calls, folded: each call's tool and arguments, and its result's start."""
    messages, _ = rounds_messages(record, "")
    results = {m.tool_call_id: m for m in messages if m.role == "tool"}
    calls = [c for m in messages for c in m.tool_calls]
    if not calls:
        return []
    lines = [f"<details><summary>Tool calls ({len(calls)})</summary>", ""]
    for call in calls:
        name = call.name.replace("__", ".", 1)
        lines.append(f"- `{name}` `{json.dumps(dict(call.arguments), ensure_ascii=False)}`")
        result = results.get(call.id)
        if result is not None:
            cut = len(result.content) > EXPORTED_RESULT
            text = result.content[:EXPORTED_RESULT] + ("…" if cut else "")
            lines += [f"  > {line}" for line in text.splitlines() or [""]]
    return [*lines, "", "</details>", ""]


def export_name(conversation: Conversation) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", (conversation.title or "conversation").lower()).strip("-")
    return f"parley-{conversation.id}-{slug[:40] or 'conversation'}.md"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


def _summary(conversation: Conversation) -> ConversationSummary:
    return ConversationSummary(
        conversation.id,
        conversation.title or "Untitled",
        conversation.last_message_at,
        conversation.message_count,
        conversation.channel_id,
        conversation.thread_id,
        conversation.archived,
    )
