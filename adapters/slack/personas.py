"""`/persona` on Slack, with `key:value` options; `@Parley persona <name>` in a thread.

    /persona list
    /persona create <name> [model:<m>] [temperature:<t>] [top_p:<p>] [max_tokens:<n>]
                    [tools:a,b] <system prompt>          (admins)
    /persona edit <name> [options] [new system prompt]   (admins; what is left out stays)
    /persona delete <name>                               (admins)
    /persona default <name>|none                          (admins; this channel's default)
    /persona use <name>|none                              (in a DM; in a thread: @Parley persona)

Option values with spaces go in double quotes (`prompt:"..."` also works). This module parses;
the rules and the words are the core's (bot/commands/personas.py).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from adapters.slack.numbers import BadOptions, decimal, take_options, whole_number
from adapters.slack.replies import Replies, scope_of
from bot.commands import PersonaCommands, PersonaEdit, Reply
from bot.domain import Caller, ConversationKey
from bot.engine.personas import PersonaSpec

if TYPE_CHECKING:
    from slack_bolt.context.respond.async_respond import AsyncRespond

    from bot.app import App

Handler = Callable[[Caller, ConversationKey], Awaitable[Reply]]

USAGE = (
    "Usage: `/persona list` · `/persona create <name> [model:…] [temperature:…] [top_p:…] "
    "[max_tokens:…] [tools:a,b] <system prompt>` · `/persona edit <name> [options] [prompt]` · "
    "`/persona delete <name>` · `/persona default <name>|none` · `/persona use <name>|none` "
    "(in a DM; in a thread say `@Parley persona <name>`)"
)
OPTIONS = ("model", "temperature", "top_p", "max_tokens", "tools", "prompt")
_CLEAR = {"none", "default", "off", "clear"}
N = TypeVar("N", int, float)
CHAT_PERSONA = re.compile(r"(?<!\S)persona:(\S+)")
_MAX_WHOLE = 999_999_999
USE_USAGE = "Say which persona: `persona <name>` or `persona none`."


def parse_options(text: str) -> tuple[str, dict[str, str], str]:
    """`<name> key:value … <rest>` -> (name, options, rest as the system prompt)."""
    name, _, tail = text.strip().partition(" ")
    options, rest = take_options(tail, OPTIONS)
    if "prompt" in options:
        if rest:
            raise BadOptions('Give the system prompt either as `prompt:"…"` or as the text.')
        rest = options.pop("prompt")
    return name, options, rest


def persona_values(options: dict[str, str], prompt: str) -> dict[str, Any]:
    """The settings given, parsed strictly (None clears one); the core checks the rest."""
    values: dict[str, Any] = {}
    if prompt:
        values["system_prompt"] = prompt
    if "model" in options:
        values["model"] = _text(options, "model", None)
    for key, kind in (("temperature", float), ("top_p", float), ("max_tokens", int)):
        if key in options:
            values[key] = _number(options, key, kind, None)
    if "tools" in options:
        values["tools"] = _tools(options, ())
    return values


def _text(options: dict[str, str], key: str, default: str | None) -> str | None:
    if key not in options:
        return default
    value = options[key].strip()
    return None if value.lower() in _CLEAR else value


def _number(options: dict[str, str], key: str, kind: type[N], default: N | None) -> N | None:
    """A number option, strictly (the core checks its range against the model)."""
    if key not in options:
        return default
    value = options[key].strip()
    if value.lower() in _CLEAR:
        return None
    number = whole_number(value, 0, _MAX_WHOLE) if kind is int else decimal(value)
    if number is None:
        what = "a whole number" if kind is int else "a number"
        raise BadOptions(f"`{key}` must be {what} (got {value[:20]!r}).")
    return kind(number)


def _tools(options: dict[str, str], default: tuple[str, ...]) -> tuple[str, ...]:
    if "tools" not in options:
        return default
    value = options["tools"].strip()
    if value.lower() in _CLEAR:
        return ()
    return tuple(t.strip() for t in value.split(",") if t.strip())


class SlackPersonas:
    def __init__(self, app: App, replies: Replies) -> None:
        self.commands = PersonaCommands(app.personas)
        self.replies = replies

    async def command(self, team: str, command: dict[str, Any], respond: AsyncRespond) -> None:
        user, channel = command["user_id"], command["channel_id"]
        verb, _, rest = str(command.get("text") or "").strip().partition(" ")
        place = scope_of(team, channel)

        async def work() -> Reply:
            handler = self._parse(verb.lower(), rest.strip(), in_dm=channel.startswith("D"))
            if handler is None:
                return Reply.say(USAGE)
            return await handler(await self.replies.caller(place, user), place)

        await self.replies.command(respond, work, f"/persona team={team} user={user}")

    def _parse(self, verb: str, rest: str, *, in_dm: bool) -> Handler | None:
        commands = self.commands
        if verb in ("", "list"):
            return commands.list
        if verb == "create":
            name, options, prompt = parse_options(rest)
            spec = PersonaSpec(name, **({"system_prompt": ""} | persona_values(options, prompt)))
            return lambda who, where: commands.create(who, where, spec)
        if verb == "edit":
            name, options, prompt = parse_options(rest)
            change = PersonaEdit(**persona_values(options, prompt))
            return lambda who, where: commands.edit(who, where, name, change)
        if verb == "delete":
            return lambda who, where: commands.delete(who, where, rest)
        if verb == "default" and rest:
            chosen = None if rest.lower() in _CLEAR else rest
            return lambda who, where: commands.default(who, where, chosen)
        if verb == "use" and (rest or not in_dm):
            return self.use_handler(rest, in_conversation=in_dm)
        return None

    def use_handler(self, name: str, *, in_conversation: bool = True) -> Handler:
        chosen = None if name.lower() in _CLEAR else name
        return lambda who, where: self.commands.use(
            who, where, chosen, in_conversation=in_conversation
        )

    async def use(self, key: ConversationKey, user: str, name: str) -> None:
        """`@Parley persona <name>|none` in a thread: apply it to that thread's conversation."""
        if not name:
            await self.replies.in_thread(
                key, user, _said(USE_USAGE), f"thread persona conversation={key}"
            )
            return
        handler = self.use_handler(name)
        caller = await self.replies.caller(key, user)
        await self.replies.in_thread(
            key, user, lambda: handler(caller, key), f"thread persona conversation={key}"
        )


def _said(text: str) -> Callable[[], Awaitable[Reply]]:
    async def reply() -> Reply:
        return Reply.say(text)

    return reply
