"""/history, /search, /archive, /export and /new: a user's own conversations, for every platform.

Isolation is ConversationService's (only your conversations, only in this tenant). A command
names its conversation by the place it runs in (a thread, a DM) or by the id /history shows:
by place, its owner or an admin may archive it; by id, only its owner (an admin cannot act on
a conversation they can only name). Archiving and a fresh start are announced in the
conversation, for everyone there.
"""

from __future__ import annotations

import logging

from bot.commands.reply import (
    Bold,
    Button,
    Code,
    File,
    Line,
    Mention,
    Part,
    Place,
    Reply,
    Said,
    When,
)
from bot.commands.words import thread_verb
from bot.domain import Caller, ConversationKey
from bot.engine.conversations import NOT_FOUND, ConversationError, ConversationService
from bot.errors import UserError
from bot.store import Conversation, SearchHit
from bot.store.search_repo import MARK, UNMARK

log = logging.getLogger("parley.commands")

UNAVAILABLE = "Conversation commands are not available on this bot."
EXPORT_TOO_LARGE = "The export is too large to upload here."
EXPORT_FAILED = "Sorry, I couldn't upload the export. Please try again."
THREAD_CLOSED = " The thread is archived too."
THREAD_OPEN = " I couldn't archive the thread itself."
"""After an archive that also closes the conversation's thread, where the platform has one."""
MAX_PAGE = 10_000
SEARCH_LIMIT = 10
SNIPPET_RUN = 120
SEARCH_NOTE = "Only your own messages, and the answers to them, in your conversations here."
HISTORY_NOTE = {
    "discord": "/export, /archive and /new take the id; in the conversation's thread they need"
    " none.",
    "slack": "`/export <id>` · `/archive <id>` · `/new <id>`, or `@Parley export|archive|new` in"
    " the conversation's thread.",
}


def unnamed(platform: str, verb: str) -> ConversationError:
    """No conversation at the place and no id: how to name one."""
    return ConversationError(
        f"{NOT_FOUND} Give /{verb} the id /history shows, or {thread_verb(platform, verb)}."
    )


class ConversationCommands:
    def __init__(self, service: ConversationService | None) -> None:
        self._service = service

    @property
    def service(self) -> ConversationService:
        if self._service is None:
            raise UserError(UNAVAILABLE, code="unavailable")
        return self._service

    async def history(self, caller: Caller, place: ConversationKey, page: int = 1) -> Reply:
        """A page of the caller's conversations, newest first, with Previous / Next."""
        if not 1 <= page <= MAX_PAGE:
            raise UserError(f"Pages go from 1 to {MAX_PAGE:,}.", code="bad_page")
        found = await self.service.history(caller.check(place), caller.user_id, page=page)
        if not found.items:
            if page == 1:
                return Reply.say("You have no conversations here yet. Start one with /chat.")
            return Reply.say(f"Page {page} is empty.")
        lines: list[Line] = [(Bold("Your conversations here"), f" (page {page}, newest first)")]
        for n, item in enumerate(found.items, (page - 1) * found.page_size + 1):
            when: str | When = When(item.last_message_at) if item.last_message_at else "never"
            count = f"{item.message_count} message{'s' if item.message_count != 1 else ''}"
            lines.append(
                (f"{n}. ", Place(item.channel_id, item.thread_id, item.title),
                 f" · {count} · ", when, " · id ", Code(str(item.id)))
            )  # fmt: skip
        buttons = []
        if page > 1:
            buttons.append(Button("history", str(page - 1), "Previous"))
        if found.has_more:
            buttons.append(Button("history", str(page + 1), "Next"))
        note = (HISTORY_NOTE.get(caller.platform, HISTORY_NOTE["discord"]),)
        return Reply(tuple(lines), note=note, buttons=tuple(buttons))

    async def search(self, caller: Caller, place: ConversationKey, words: str) -> Reply:
        """The caller's messages holding every word, best first, each linked to its thread."""
        hits = await self.service.search(
            caller.check(place), caller.user_id, words, limit=SEARCH_LIMIT
        )
        if not hits:
            return Reply.say("None of your messages here contain ", Said(words, 80), ".")
        best = f" (the best {len(hits)})" if len(hits) == SEARCH_LIMIT else ""
        lines: list[Line] = [(Bold("Found in your conversations here"), best)]
        for n, hit in enumerate(hits, 1):
            who = "you" if hit.role == "user" else "Parley"
            lines.append(
                (f"{n}. ", Place(hit.channel_id, hit.thread_id, hit.title or "Untitled"), " · ",
                 When(hit.created_at), f" · {who}: ", *snippet(hit))
            )  # fmt: skip
        return Reply(tuple(lines), note=(SEARCH_NOTE,))

    async def archive(
        self, caller: Caller, place: ConversationKey, conversation_id: int | None = None
    ) -> Reply:
        service = self.service
        if conversation_id is None:
            await self._at(caller, place, "archive")
            await service.archive(place, caller.user_id, is_admin=caller.is_admin)
            target = place
        else:
            target = (await service.archive_by_id(place, caller.user_id, conversation_id)).key
        log.info("conversation archived key=%s by=%s", target, caller.user_id)
        return Reply(
            (("Archived: I no longer answer in that conversation, and it left /history.",),),
            announce=(Mention(caller.user_id), " archived this conversation; I won't answer here"
                      " any more."),
            target=target,
        )  # fmt: skip

    async def new(
        self, caller: Caller, place: ConversationKey, conversation_id: int | None = None
    ) -> Reply:
        """Later turns ignore all said so far (it stays in the export)."""
        conversation = await self._named(caller, place, conversation_id, "new")
        await self.service.new_context(conversation.key, caller.user_id)
        return Reply(
            (("Fresh start: from the next message I ignore everything said there before"
              " (it stays in /export).",),),
            announce=(Mention(caller.user_id), " started a fresh context: I'll ignore what came"
                      " before."),
            target=conversation.key,
        )  # fmt: skip

    async def export(
        self, caller: Caller, place: ConversationKey, conversation_id: int | None = None
    ) -> Reply:
        conversation = await self._named(caller, place, conversation_id, "export")
        exported = await self.service.export(conversation.key, caller.user_id)
        return Reply(
            (("Here is the conversation as Markdown: ", Code(exported.name), "."),),
            file=File(exported.name, exported.data, exported.content_type),
            announce=(Mention(caller.user_id), " exported this conversation."),
            target=conversation.key,
        )

    async def _named(
        self, caller: Caller, place: ConversationKey, conversation_id: int | None, verb: str
    ) -> Conversation:
        """The caller's own conversation, by id or at the place."""
        if conversation_id is not None:
            return await self.service.find(caller.check(place), caller.user_id, conversation_id)
        return await self._at(caller, place, verb)

    async def _at(self, caller: Caller, place: ConversationKey, verb: str) -> Conversation:
        """The conversation at the place, whoever's it is (the service checks who may act)."""
        conversation = await self.service.store.get_conversation(caller.check(place))
        if conversation is None:
            raise unnamed(caller.platform, verb)
        return conversation


def snippet(hit: SearchHit) -> tuple[Part, ...]:
    """The hit's snippet as words a user typed (each run cut to SNIPPET_RUN characters), the
    words it matched in bold."""
    parts: list[Part] = []
    for n, piece in enumerate(hit.snippet.replace(UNMARK, MARK).split(MARK)):
        core = " ".join(piece.split())
        if n % 2 and core.replace("-", "").replace("'", "").isalnum():
            parts.append(Bold(core[:SNIPPET_RUN]))  # a matched word
            continue
        if piece[:1].isspace():
            parts.append(" ")
        if core:
            parts.append(Said(core, SNIPPET_RUN))
        if piece[-1:].isspace() and core:
            parts.append(" ")
    return tuple(parts)
