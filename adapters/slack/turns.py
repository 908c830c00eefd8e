"""What a Slack request does once acknowledged: chat turns, Stop and Regenerate."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

from slack_sdk.errors import SlackApiError

from adapters.slack.admins import Admins
from adapters.slack.blocks import quote_question
from adapters.slack.commands import SlackCommands
from adapters.slack.images import SlackImageSurface
from adapters.slack.replies import Replies, scope_of
from adapters.slack.surface import NOT_IN_CHANNEL, SlackSurface, Workspaces, slack_error
from bot.commands.chat import ChatCommands
from bot.commands.controls import STALE_BUTTON, ReplyControls
from bot.commands.spec import parse, whole_number
from bot.commands.table import CHAT
from bot.domain import Attachment, Caller, ChatRequest, ConversationKey
from bot.markup import SLACK
from bot.sorry import apologize
from bot.text import thread_name

if TYPE_CHECKING:
    from slack_bolt.context.respond.async_respond import AsyncRespond

    from bot.app import App

log = logging.getLogger("parley.slack")

PLATFORM = "slack"
_MAX_ID = 2**63 - 1  # the store's ids are 64-bit


class Turns:
    def __init__(
        self,
        app: App,
        spaces: Workspaces,
        commands: SlackCommands | None = None,
    ) -> None:
        self.app = app
        self.spaces = spaces
        self.commands = commands or SlackCommands(app, Replies(spaces, Admins(spaces, [])))
        self.chat_options = ChatCommands(app.catalog, app.personas, app.store)
        self.controls = ReplyControls(app.engine, app.store)

    def surface(self, team: str, channel: str, thread_ts: str | None, user: str) -> SlackSurface:
        return SlackSurface(self.spaces, team=team, channel=channel, thread_ts=thread_ts, user=user)

    # -- chat ------------------------------------------------------------------------------------

    async def chat_command(self, team: str, command: dict[str, Any], respond: AsyncRespond) -> None:
        """/chat [model:<m>] [persona:<name>] <text>: quote the question, then answer in its
        thread."""
        user, channel = command["user_id"], command["channel_id"]
        place = scope_of(team, channel)
        try:  # refuse a bad option, an unknown model or persona before anything is posted
            args = parse(CHAT, str(command.get("text") or ""), PLATFORM)
            text = args["prompt"]
            model, persona = await self.chat_options.options(
                Caller.at(place, user), place, model=args.get("model"), persona=args.get("persona")
            )
        except Exception as exc:
            text = apologize(log, exc, "/chat team=%s user=%s", team, user)
            await respond(text=text, response_type="ephemeral")
            return
        try:
            posted = await self.spaces.client_for(team).chat_postMessage(
                channel=channel, text=quote_question(user, text), unfurl_links=False
            )
        except SlackApiError as exc:
            error = slack_error(exc)
            log.warning("/chat could not post team=%s channel=%s error=%s", team, channel, error)
            hint = NOT_IN_CHANNEL if error == "not_in_channel" else ""
            await respond(text=f"I can't post here ({error}).{hint}", response_type="ephemeral")
            return
        thread = str(posted["ts"])
        key = ConversationKey(PLATFORM, team, channel, thread)
        if model:  # the new thread's model
            await self.app.engine.set_model(key, user, model)
        await self._turn(key, user, text, thread, persona=persona)

    async def message(
        self,
        team: str,
        event: dict[str, Any],
        text: str,
        *,
        mention: bool,
        addressed: bool | None = None,
    ) -> None:
        """An app_mention, a DM, or a reply in a thread the bot is already talking in.

        `addressed`: the text mentioned the bot (always so for an app_mention), which makes
        `archive`, `export`, `new` and `persona <name>` commands for the thread instead of chat.
        """
        channel, ts, user = event["channel"], event["ts"], event.get("user")
        if not user:
            return
        thread_ts = event.get("thread_ts")
        is_dm = event.get("channel_type") == "im" or channel.startswith("D")
        if mention:
            thread = thread_ts or ts
        elif is_dm:
            thread = thread_ts or ""  # a DM is one conversation; its threads are their own
        elif thread_ts:
            thread = thread_ts
        else:
            return  # channel chatter outside the bot's threads
        key = ConversationKey(PLATFORM, team, channel, thread)
        shared = not (mention or is_dm)
        if shared and not await self.chat_options.addressed(key, mentioned=bool(addressed)):
            return
        # One reply per message: Slack retries events, and a mention in a thread arrives both as
        # app_mention and as message. The claim is shared by every replica through the store.
        if not await self.app.store.claim_event(PLATFORM, f"{team}:{channel}:{ts}"):
            log.info("duplicate event ignored team=%s channel=%s ts=%s", team, channel, ts)
            return
        if (mention if addressed is None else addressed) and await self.commands.keyword(
            key, user, text
        ):
            return
        await self._turn(key, user, text, thread or None, files=self.files_of(team, event))

    def files_of(self, team: str, event: dict[str, Any]) -> tuple[Attachment, ...]:
        """A message's files, fetched with the bot token (the `files:read` scope)."""
        bearer = (("Authorization", f"Bearer {self.spaces.client_for(team).token}"),)
        return tuple(
            Attachment(str(f.get("name") or "file"), int(f.get("size") or 0),
                       str(f.get("mimetype") or ""), headers=bearer,
                       url=str(f.get("url_private_download") or f.get("url_private") or ""),
                       voice=f.get("subtype") == "slack_audio",
                       seconds=float(f.get("duration_ms") or 0) / 1000)
            for f in event.get("files") or () if f.get("mode") != "tombstone"
        )  # fmt: skip

    async def _turn(
        self,
        key: ConversationKey,
        user: str,
        text: str,
        thread_ts: str | None,
        *,
        persona: str | None = None,
        files: tuple[Attachment, ...] = (),
    ) -> None:
        surface = self.surface(key.tenant, key.channel, thread_ts, user)
        images = SlackImageSurface(
            self.spaces, team=key.tenant, channel=key.channel, thread_ts=thread_ts, user=user
        )
        try:
            await surface.thinking()
            if surface.assistant_thread and await self.app.store.get_conversation(key) is None:
                await surface.set_title(thread_name(text))
            await self.app.engine.handle(
                ChatRequest(key, user, text, attachments=files),
                surface,
                persona=persona,
                images=images,
            )
        except Exception as exc:  # the user gets a short note; the log gets the details
            await surface.say(apologize(log, exc, "slack turn conversation=%s", key))
        finally:
            await surface.close()

    # -- buttons -----------------------------------------------------------------------------------

    async def click(
        self,
        kind: Literal["stop", "regenerate", "approve", "deny"],
        team: str,
        body: dict[str, Any],
        action: dict[str, Any],
    ) -> None:
        user = body["user"]["id"]
        channel = (body.get("channel") or {}).get("id") or body["container"]["channel_id"]
        message = body.get("message") or {}
        thread_ts = message.get("thread_ts") or message.get("ts")
        note = self.surface(team, channel, thread_ts, user)
        turn_id = whole_number(str(action.get("value") or ""), 1, _MAX_ID)
        if turn_id is None:
            await note.ephemeral(STALE_BUTTON)
            return
        caller = Caller(PLATFORM, team, user)
        try:
            if kind != "regenerate":
                reply = await self.controls.press(caller, kind, turn_id)
                if reply is not None:
                    await note.ephemeral(reply.text(SLACK))
                return
            conversation = await self.controls.regenerable(caller, turn_id)
        except Exception as exc:
            await note.ephemeral(apologize(log, exc, "slack %s click turn=%s", kind, turn_id))
            return
        surface = self.surface(team, conversation.channel_id, conversation.thread_id or None, user)
        try:
            await surface.thinking()
            await self.app.engine.regenerate(turn_id, user, surface)
        except Exception as exc:
            await surface.say(apologize(log, exc, "slack regenerate turn=%s", turn_id))
        finally:
            await surface.close()
