"""Bolt listeners: each acknowledges at once and hands the work to a background task."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp

from adapters.slack.blocks import action_id
from adapters.slack.images import ACTION_PATTERN, ImageTurns
from adapters.slack.turns import Turns

if TYPE_CHECKING:
    from slack_bolt.context.ack.async_ack import AsyncAck
    from slack_bolt.context.async_context import AsyncBoltContext
    from slack_bolt.context.respond.async_respond import AsyncRespond

log = logging.getLogger("parley.slack")

Spawn = Callable[[Coroutine[Any, Any, None], str], None]


def register(bolt: AsyncApp, turns: Turns, images: ImageTurns, spawn: Spawn) -> None:
    """Wire Parley's commands, events and buttons onto a bolt app."""

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
        text = _strip_mention(event.get("text", ""), context.bot_user_id)
        spawn(turns.message(_team(context, body), event, text, mention=False), "slack-message")

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
    bolt.error(_on_error)


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
