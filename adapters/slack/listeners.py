"""Bolt listeners: each acknowledges at once and hands the work to a background task."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp

from adapters.slack.blocks import action_id
from adapters.slack.conversations import HISTORY_ACTION, ConversationCommands
from adapters.slack.images import ACTION_PATTERN, ImageTurns
from adapters.slack.personas import PersonaCommands
from adapters.slack.turns import Turns
from adapters.slack.usage import UsageCommand

if TYPE_CHECKING:
    from slack_bolt.context.ack.async_ack import AsyncAck
    from slack_bolt.context.async_context import AsyncBoltContext
    from slack_bolt.context.respond.async_respond import AsyncRespond

log = logging.getLogger("parley.slack")

Spawn = Callable[[Coroutine[Any, Any, None], str], None]


@dataclass(frozen=True, slots=True)
class Manage:
    """The commands an admin and a user run to manage conversations, personas and usage."""

    conversations: ConversationCommands
    personas: PersonaCommands
    usage: UsageCommand


def register(
    bolt: AsyncApp, turns: Turns, images: ImageTurns, spawn: Spawn, manage: Manage | None = None
) -> None:
    """Wire Parley's commands, events and buttons onto a bolt app."""
    _register_chat(bolt, turns, images, spawn)
    if manage is not None:
        _register_manage(bolt, manage, spawn)
    bolt.error(_on_error)


def _register_chat(bolt: AsyncApp, turns: Turns, images: ImageTurns, spawn: Spawn) -> None:

    async def chat_command(
        ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond
    ) -> None:
        await ack()
        spawn(turns.chat_command(_team(context, command), command, respond), "slack-chat")

    async def model_command(
        ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond
    ) -> None:
        await ack()
        spawn(turns.model_command(_team(context, command), command, respond), "slack-model")

    async def app_mention(
        ack: AsyncAck, event: dict[str, Any], context: AsyncBoltContext, body: dict[str, Any]
    ) -> None:
        await ack()
        text = _strip_mention(event.get("text", ""), context.bot_user_id)
        spawn(turns.message(_team(context, body), event, text, mention=True), "slack-mention")

    async def message(
        ack: AsyncAck, event: dict[str, Any], context: AsyncBoltContext, body: dict[str, Any]
    ) -> None:
        await ack()
        if event.get("subtype") or event.get("bot_id") or not event.get("user"):
            return
        raw = event.get("text", "")
        text = _strip_mention(raw, context.bot_user_id)
        work = turns.message(
            _team(context, body), event, text, mention=False, addressed=text != raw
        )
        spawn(work, "slack-message")

    async def stop_button(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await ack()
        spawn(turns.click("stop", _team(context, body), body, action), "slack-stop")

    async def regenerate_button(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await ack()
        spawn(turns.click("regenerate", _team(context, body), body, action), "slack-regenerate")

    async def image_command(
        ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond
    ) -> None:
        await ack()
        spawn(images.image_command(_team(context, command), command, respond), "slack-image")

    async def images_command(
        ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond
    ) -> None:
        await ack()
        spawn(images.images_command(_team(context, command), command, respond), "slack-images")

    async def image_button(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await ack()
        spawn(images.click(_team(context, body), body, action), "slack-image-click")

    bolt.command("/chat")(chat_command)
    bolt.command("/image")(image_command)
    bolt.command("/images")(images_command)
    bolt.action(ACTION_PATTERN)(image_button)
    bolt.command("/model")(model_command)
    bolt.event("app_mention")(app_mention)
    bolt.event("message")(message)
    bolt.action(action_id("stop"))(stop_button)
    bolt.action(action_id("regenerate"))(regenerate_button)


def _register_manage(bolt: AsyncApp, manage: Manage, spawn: Spawn) -> None:
    """/history (and its page buttons), /archive /export /new, /persona, /usage."""
    conversations, personas, usage = manage.conversations, manage.personas, manage.usage

    async def history_command(
        ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond
    ) -> None:
        await ack()
        team = _team(context, command)
        spawn(conversations.history_command(team, command, respond), "slack-history")

    async def history_button(
        ack: AsyncAck,
        body: dict[str, Any],
        action: dict[str, Any],
        context: AsyncBoltContext,
        respond: AsyncRespond,
    ) -> None:
        await ack()
        team = _team(context, body)
        spawn(conversations.history_click(team, body, action, respond), "slack-history-page")

    def thread_command(verb: str) -> Any:
        async def listener(
            ack: AsyncAck,
            command: dict[str, Any],
            context: AsyncBoltContext,
            respond: AsyncRespond,
        ) -> None:
            await ack()
            team = _team(context, command)
            spawn(conversations.slash(verb, team, command, respond), f"slack-{verb}")

        return listener

    async def usage_command(
        ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond
    ) -> None:
        await ack()
        spawn(usage.command(_team(context, command), command, respond), "slack-usage")

    async def persona_command(
        ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond
    ) -> None:
        await ack()
        spawn(personas.command(_team(context, command), command, respond), "slack-persona")

    bolt.command("/history")(history_command)
    bolt.action(HISTORY_ACTION)(history_button)
    for verb in ("archive", "export", "new"):
        bolt.command(f"/{verb}")(thread_command(verb))
    bolt.command("/persona")(persona_command)
    bolt.command("/usage")(usage_command)


async def _on_error(error: Exception, body: dict[str, Any]) -> None:
    log.error("slack listener failed type=%s: %r", body.get("type"), error)


def _team(context: AsyncBoltContext, body: dict[str, Any]) -> str:
    """The workspace the request came from: the tenant of every conversation in it."""
    team = context.team_id or body.get("team_id") or (body.get("team") or {}).get("id")
    return str(team or context.enterprise_id or "")


def _strip_mention(text: str, bot_user_id: str | None) -> str:
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", "", text)
    return text.strip()
