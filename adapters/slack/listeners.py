"""Bolt listeners: each acknowledges at once and hands the work to a background task."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Coroutine
from functools import partial
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp

from adapters.slack.assistant import Assistant
from adapters.slack.blocks import action_id
from adapters.slack.commands import HISTORY_ACTION, SlackCommands
from adapters.slack.images import ACTION_PATTERN, ImageTurns
from adapters.slack.inbound import team_of
from adapters.slack.turns import Turns

if TYPE_CHECKING:
    from slack_bolt.context.ack.async_ack import AsyncAck
    from slack_bolt.context.async_context import AsyncBoltContext
    from slack_bolt.context.respond.async_respond import AsyncRespond

log = logging.getLogger("parley.slack")

Spawn = Callable[[Coroutine[Any, Any, None], str], None]


def register(
    bolt: AsyncApp, turns: Turns, images: ImageTurns, assistant: Assistant, spawn: Spawn
) -> None:
    """Wire Parley's commands, events and buttons onto a bolt app."""
    _register_chat(bolt, turns, images, spawn)
    bolt.event("assistant_thread_started")(_event(assistant.started, "slack-assistant", spawn))
    bolt.action(action_id("feedback"))(_button(assistant.feedback, "slack-feedback", spawn))
    _register_commands(bolt, turns.commands, spawn)
    bolt.error(_on_error)


def _register_chat(bolt: AsyncApp, turns: Turns, images: ImageTurns, spawn: Spawn) -> None:
    async def app_mention(
        ack: AsyncAck, event: dict[str, Any], context: AsyncBoltContext, body: dict[str, Any]
    ) -> None:
        await ack()
        text = _strip_mention(event.get("text", ""), context.bot_user_id)
        spawn(turns.message(team_of(context, body), event, text, mention=True), "slack-mention")

    async def message(
        ack: AsyncAck, event: dict[str, Any], context: AsyncBoltContext, body: dict[str, Any]
    ) -> None:
        await ack()
        if event.get("subtype") not in (None, "file_share") or event.get("bot_id"):
            return  # edits, joins, bots' messages; a message with files is "file_share"
        if not event.get("user"):
            return
        raw = event.get("text", "")
        text = _strip_mention(raw, context.bot_user_id)
        work = turns.message(
            team_of(context, body), event, text, mention=False, addressed=text != raw
        )
        spawn(work, "slack-message")

    bolt.command("/chat")(_command(turns.chat_command, "slack-chat", spawn))
    bolt.command("/image")(_command(images.image_command, "slack-image", spawn))
    bolt.action(ACTION_PATTERN)(_button(images.click, "slack-image-click", spawn))
    bolt.event("app_mention")(app_mention)
    bolt.event("message")(message)
    for kind in ("stop", "regenerate", "approve", "deny"):
        bolt.action(action_id(kind))(_button(partial(turns.click, kind), f"slack-{kind}", spawn))


def _register_commands(bolt: AsyncApp, commands: SlackCommands, spawn: Spawn) -> None:
    """The core's command table (/persona, /history and its page buttons, /model, ...)."""

    async def history_button(
        ack: AsyncAck,
        body: dict[str, Any],
        action: dict[str, Any],
        context: AsyncBoltContext,
        respond: AsyncRespond,
    ) -> None:
        await ack()
        team = team_of(context, body)
        spawn(commands.history_click(team, body, action, respond), "slack-history-page")

    bolt.action(HISTORY_ACTION)(history_button)
    for root in commands.roots:
        slash = partial(commands.slash, root)
        bolt.command(f"/{root}")(_command(slash, f"slack-{root}", spawn))


CommandWork = Callable[[str, dict[str, Any], "AsyncRespond"], Coroutine[Any, Any, None]]
ButtonWork = Callable[[str, dict[str, Any], dict[str, Any]], Coroutine[Any, Any, None]]
Listener = Callable[..., Coroutine[Any, Any, None]]


def _command(work: CommandWork, name: str, spawn: Spawn) -> Listener:
    """A slash-command listener: ack at once, then `work(team, command, respond)` in the background.

    bolt passes arguments by parameter name, so the names below are part of the contract.
    """

    async def listener(
        ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond
    ) -> None:
        await ack()
        spawn(work(team_of(context, command), command, respond), name)

    return listener


def _event(
    work: Callable[[str, dict[str, Any]], Coroutine[Any, Any, None]], name: str, spawn: Spawn
) -> Listener:
    """An event listener: ack at once, then `work(team, body)` in the background."""

    async def listener(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        await ack()
        spawn(work(team_of(context, body), body), name)

    return listener


def _button(work: ButtonWork, name: str, spawn: Spawn) -> Listener:
    """A button listener: ack at once, then `work(team, body, action)` in the background."""

    async def listener(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await ack()
        spawn(work(team_of(context, body), body, action), name)

    return listener


async def _on_error(error: Exception, body: dict[str, Any]) -> None:
    log.error("slack listener failed type=%s: %r", body.get("type"), error)


def _strip_mention(text: str, bot_user_id: str | None) -> str:
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", "", text)
    return text.strip()
