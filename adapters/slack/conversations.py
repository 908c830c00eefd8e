"""Conversations on Slack: /history with pages, /archive, /export and /new, and thread keywords.

Slash commands carry no thread_ts, so a command names its conversation one of three ways:
- in a bot thread, mention Parley with the word: `@Parley archive`, `@Parley export`, `@Parley new`
  (and `@Parley persona <name>`); these arrive as events and are claimed once through the store;
- `/archive <id>`, `/export <id>`, `/new <id>` with the id `/history` shows, from anywhere in the
  workspace;
- in a DM with Parley, `/archive`, `/export` and `/new` alone mean the DM's conversation.
The core decides who may do what (bot/engine/conversations.py); this module only renders.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError, SlackClientError

from adapters.slack.admins import Admins
from adapters.slack.numbers import whole_number
from adapters.slack.surface import slack_error
from bot.domain import ConversationKey
from bot.engine.conversations import ConversationError, ConversationService, HistoryPage
from bot.sorry import apologize

if TYPE_CHECKING:
    from slack_bolt.context.respond.async_respond import AsyncRespond
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.app import App
    from bot.engine.conversations import ExportFile

log = logging.getLogger("parley.slack")

PLATFORM = "slack"
HISTORY_ACTION = re.compile(r"^parley_history_(prev|next)$")
"""The Previous / Next buttons under /history; their value is the page they show."""
KEYWORDS = ("archive", "export", "new")
_ID = re.compile(r"^#?([0-9]{1,18})$")  # ASCII: `\d` also takes other scripts' digits
MAX_PAGE = 10_000
HISTORY_USAGE = f"Usage: `/history [page]`, a page number from 1 to {MAX_PAGE:,}."


def scope_of(team: str, channel: str) -> ConversationKey:
    """Where a slash command came from; the core scopes every lookup to its workspace."""
    return ConversationKey(PLATFORM, team, channel, "")


def permalink(domain: str, channel: str, thread: str) -> str:
    """A link to a conversation's thread (or to the DM / channel that holds it)."""
    base = f"https://{domain or 'app'}.slack.com/archives/{channel}"
    return f"{base}/p{thread.replace('.', '')}" if thread else base


def escape(text: str) -> str:
    """Slack's three control characters, so user text cannot forge links or mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def history_blocks(page: HistoryPage, domain: str) -> list[dict[str, Any]]:
    """The page as sections (a linked title, then id, time and size), then Previous / Next."""
    if not page.items:
        text = "You have no conversations here yet." if page.page == 1 else "No more conversations."
        return [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    blocks: list[dict[str, Any]] = [
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"*Your conversations* · page {page.page}"}],
        }
    ]
    for item in page.items:
        title = escape(item.title.replace("|", "/"))[:200]
        link = permalink(domain, item.channel_id, item.thread_id)
        when = "-"
        if item.last_message_at is not None:
            epoch = int(item.last_message_at.timestamp())
            fallback = item.last_message_at.strftime("%Y-%m-%d %H:%M UTC")
            when = f"<!date^{epoch}^{{date_short_pretty}} {{time}}|{fallback}>"
        count = f"{item.message_count} message{'s' if item.message_count != 1 else ''}"
        text = f"*<{link}|{title}>*\n`#{item.id}` · {when} · {count}"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    buttons = []
    if page.page > 1:
        buttons.append(_page_button("prev", "Previous", page.page - 1))
    if page.has_more:
        buttons.append(_page_button("next", "Next", page.page + 1))
    if buttons:
        blocks.append({"type": "actions", "block_id": "parley_history", "elements": buttons})
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": "`/export <id>` · `/archive <id>` · `/new <id>`, "
                    "or `@Parley export|archive|new` in the thread",
                }
            ],
        }
    )
    return blocks


def _page_button(direction: str, label: str, page: int) -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": f"parley_history_{direction}",
        "text": {"type": "plain_text", "text": label},
        "value": str(page),
    }


class ConversationCommands:
    def __init__(self, app: App, client: AsyncWebClient, admins: Admins) -> None:
        self.app = app
        self.client = client
        self.admins = admins

    @property
    def service(self) -> ConversationService:
        if self.app.conversations is None:
            raise RuntimeError("the conversation service is not configured")
        return self.app.conversations

    # -- /history ---------------------------------------------------------------------------------

    async def history_command(
        self, team: str, command: dict[str, Any], respond: AsyncRespond
    ) -> None:
        arg = str(command.get("text") or "").strip()
        page = whole_number(arg, 1, MAX_PAGE) if arg else 1
        if page is None:
            await respond(text=HISTORY_USAGE, response_type="ephemeral")
            return
        await self._show_history(team, command, page, respond, replace=False)

    async def history_click(
        self, team: str, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond
    ) -> None:
        page = whole_number(str(action.get("value") or ""), 1, MAX_PAGE)
        if page is None:
            await respond(text="That button no longer works.", response_type="ephemeral")
            return
        where = {
            "user_id": body["user"]["id"],
            "channel_id": (body.get("channel") or {}).get("id", ""),
            "team_domain": (body.get("team") or {}).get("domain", ""),
        }
        await self._show_history(team, where, page, respond, replace=True)

    async def _show_history(
        self, team: str, where: dict[str, Any], page: int, respond: AsyncRespond, *, replace: bool
    ) -> None:
        user, channel = where["user_id"], where.get("channel_id", "")
        try:
            found = await self.service.history(scope_of(team, channel), user, page=page)
        except Exception as exc:
            text = apologize(log, exc, "/history team=%s user=%s", team, user)
            await respond(text=text, response_type="ephemeral")
            return
        blocks = history_blocks(found, str(where.get("team_domain") or ""))
        summary = f"Your conversations, page {found.page}"
        await respond(
            text=summary, blocks=blocks, response_type="ephemeral", replace_original=replace
        )

    # -- /archive /export /new ------------------------------------------------------------------

    async def slash(
        self, verb: str, team: str, command: dict[str, Any], respond: AsyncRespond
    ) -> None:
        """`/<verb> <id>` anywhere, or `/<verb>` alone in a DM with Parley."""
        user, channel = command["user_id"], command["channel_id"]
        arg = str(command.get("text") or "").strip()
        scope = scope_of(team, channel)
        try:
            if match := _ID.match(arg):
                conversation = await self.service.find(scope, user, int(match.group(1)))
                key = conversation.key
            elif not arg and channel.startswith("D"):
                key = scope  # a DM is one conversation
            else:
                await respond(text=_usage(verb), response_type="ephemeral")
                return
            text = await self._do(verb, key, user)
        except ConversationError as exc:
            text = str(exc)
        except Exception as exc:
            text = apologize(log, exc, "/%s team=%s user=%s", verb, team, user)
        await respond(text=text, response_type="ephemeral")

    async def keyword(self, key: ConversationKey, user: str, verb: str) -> None:
        """`@Parley archive|export|new` in a thread: act on that thread's conversation."""
        try:
            text = await self._do(verb, key, user)
        except ConversationError as exc:
            text = str(exc)
        except Exception as exc:
            text = apologize(log, exc, "thread %s conversation=%s", verb, key)
        await self._note(key, user, text)

    async def _do(self, verb: str, key: ConversationKey, user: str) -> str:
        """Do it; returns what to tell the user (ConversationError carries the refusals)."""
        service = self.service
        if verb == "archive":  # the owner's, or an admin's (the core decides)
            await service.archive(key, user, is_admin=await self.admins.is_admin(key.tenant, user))
            await self._say(
                key, f"<@{user}> archived this conversation; I won't answer here any more."
            )
            return "Archived. It no longer shows in `/history`."
        if verb == "new":
            if not await service.new_context(key, user):
                raise ConversationError("There is no conversation of yours here yet.")
            await self._say(
                key, f"<@{user}> started a fresh context: I'll ignore what came before."
            )
            return "Fresh context started."
        if verb == "export":
            exported = await service.export(key, user)
            return await self._upload(key, user, exported)
        raise ValueError(verb)

    async def _upload(self, key: ConversationKey, user: str, exported: ExportFile) -> str:
        try:
            await self.client.files_upload_v2(
                channel=key.channel,
                thread_ts=key.thread or None,
                content=exported.data,
                filename=exported.name,
                title=exported.name,
                initial_comment=f"<@{user}> exported this conversation.",
            )
        except SlackApiError as exc:
            error = slack_error(exc)
            log.warning("export upload failed conversation=%s error=%s", key, error)
            return f"I couldn't upload the export there ({error})."
        except (SlackClientError, OSError, TimeoutError) as exc:
            log.warning("export upload failed conversation=%s: %r", key, exc)
            return "I couldn't upload the export; please try again."
        return f"Exported `{exported.name}` to the conversation's thread."

    async def _say(self, key: ConversationKey, text: str) -> None:
        try:
            await self.client.chat_postMessage(
                channel=key.channel, thread_ts=key.thread or None, text=text
            )
        except SlackApiError as exc:
            log.warning("note failed conversation=%s error=%s", key, slack_error(exc))

    async def _note(self, key: ConversationKey, user: str, text: str) -> None:
        try:
            await self.client.chat_postEphemeral(
                channel=key.channel, user=user, text=text, thread_ts=key.thread or None
            )
        except SlackApiError as exc:
            log.warning("ephemeral failed conversation=%s error=%s", key, slack_error(exc))


def _usage(verb: str) -> str:
    return (
        f"Usage: `/{verb} <id>` with an id from `/history`, or `@Parley {verb}` in the "
        "conversation's thread (in a DM with me, `/" + verb + "` alone)."
    )
