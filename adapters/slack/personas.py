"""`/persona` on Slack, with `key:value` options; `@Parley persona <name>` in a thread.

    /persona list
    /persona create <name> [model:<m>] [temperature:<t>] [top_p:<p>] [max_tokens:<n>]
                    [tools:a,b] <system prompt>          (admins)
    /persona edit <name> [options] [new system prompt]   (admins; what is left out stays)
    /persona delete <name>                               (admins)
    /persona default <name>|none                          (admins; this channel's default)
    /persona use <name>|none                              (in a DM; in a thread: @Parley persona)

Option values with spaces go in double quotes (`prompt:"..."` also works). The core validates
names and parameters against the model (bot/engine/personas.py); its messages are shown as is.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, TypeVar

from adapters.slack.admins import Admins
from adapters.slack.conversations import escape, scope_of
from adapters.slack.numbers import decimal, whole_number
from bot.domain import ConversationKey
from bot.engine.personas import PersonaError, PersonaService, PersonaSpec
from bot.sorry import apologize
from bot.store import Persona

if TYPE_CHECKING:
    from slack_bolt.context.respond.async_respond import AsyncRespond

    from bot.app import App

log = logging.getLogger("parley.slack")

USAGE = (
    "Usage: `/persona list` · `/persona create <name> [model:…] [temperature:…] [top_p:…] "
    "[max_tokens:…] [tools:a,b] <system prompt>` · `/persona edit <name> [options] [prompt]` · "
    "`/persona delete <name>` · `/persona default <name>|none` · `/persona use <name>|none` "
    "(in a DM; in a thread say `@Parley persona <name>`)"
)
_OPTION = re.compile(r'(?<!\S)(model|temperature|top_p|max_tokens|tools|prompt):("([^"]*)"|\S+)')
_CLEAR = {"none", "default", "off", "clear"}
N = TypeVar("N", int, float)
CHAT_PERSONA = re.compile(r"(?<!\S)persona:(\S+)")
_MAX_WHOLE = 999_999_999


class BadOptions(PersonaError):
    pass


def parse_options(text: str) -> tuple[str, dict[str, str], str]:
    """`<name> key:value … <rest>` -> (name, options, rest as the system prompt)."""
    name, _, tail = text.strip().partition(" ")
    options: dict[str, str] = {}
    for match in _OPTION.finditer(tail):
        key = match.group(1)
        if key in options:
            raise BadOptions(f"`{key}` is given twice.")
        options[key] = match.group(3) if match.group(3) is not None else match.group(2)
    rest = re.sub(r"[ \t]{2,}", " ", _OPTION.sub(" ", tail)).strip()
    if "prompt" in options:
        if rest:
            raise BadOptions('Give the system prompt either as `prompt:"…"` or as the text.')
        rest = options.pop("prompt")
    return name, options, rest


def build_spec(
    name: str, options: dict[str, str], prompt: str, base: Persona | None
) -> PersonaSpec:
    """A full spec: the options given, the rest from `base` (an edit) or unset (a create)."""
    model = _text(options, "model", base.model if base else None)
    return PersonaSpec(
        name=name,
        system_prompt=prompt or (base.system_prompt if base else ""),
        model=model,
        temperature=_number(options, "temperature", float, base.temperature if base else None),
        top_p=_number(options, "top_p", float, base.top_p if base else None),
        max_tokens=_number(options, "max_tokens", int, base.max_tokens if base else None),
        tools=_tools(options, base.tools if base else ()),
    )


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


def describe(persona: Persona) -> str:
    params = [f"model `{persona.model}`" if persona.model else "default model"]
    if persona.temperature is not None:
        params.append(f"temperature {persona.temperature:g}")
    if persona.top_p is not None:
        params.append(f"top_p {persona.top_p:g}")
    if persona.max_tokens is not None:
        params.append(f"max_tokens {persona.max_tokens:,}")
    if persona.tools:
        params.append("tools " + ", ".join(persona.tools))
    prompt = escape(persona.system_prompt.replace("\n", " "))
    prompt = prompt if len(prompt) <= 120 else prompt[:119] + "…"
    return f"*{persona.name}* ({'; '.join(params)})\n>{prompt}"


class PersonaCommands:
    def __init__(self, app: App, admins: Admins) -> None:
        self.app = app
        self.admins = admins

    @property
    def service(self) -> PersonaService:
        if self.app.personas is None:
            raise RuntimeError("the persona service is not configured")
        return self.app.personas

    async def command(self, team: str, command: dict[str, Any], respond: AsyncRespond) -> None:
        user, channel = command["user_id"], command["channel_id"]
        verb, _, rest = str(command.get("text") or "").strip().partition(" ")
        try:
            text = await self._run(team, user, channel, verb.lower(), rest.strip())
        except PersonaError as exc:  # NotAllowed too: its message names what admins may do
            text = str(exc)
        except Exception as exc:
            text = apologize(log, exc, "/persona team=%s user=%s", team, user)
        await respond(text=text, response_type="ephemeral")

    async def _run(self, team: str, user: str, channel: str, verb: str, rest: str) -> str:
        service = self.service
        scope = scope_of(team, channel)
        if verb in ("", "list"):
            personas = await service.list(scope)
            if not personas:
                return "No personas yet. Admins add one with `/persona create <name> <prompt>`."
            return "\n".join(describe(p) for p in personas)
        if verb == "create":
            name, options, prompt = parse_options(rest)
            spec = build_spec(name, options, prompt, None)
            created = await service.create(
                scope, user, spec, is_admin=await self.admins.is_admin(team, user)
            )
            return f"Created persona:\n{describe(created)}"
        if verb == "edit":
            name, options, prompt = parse_options(rest)
            is_admin = await self.admins.is_admin(team, user)
            if not is_admin:  # before the lookup: non-admins learn nothing about the persona
                return "Only admins can edit personas."
            current = await service.get(scope, name)
            spec = build_spec(name, options, prompt, current)
            edited = await service.edit(scope, spec, is_admin=is_admin)
            return f"Updated persona:\n{describe(edited)}"
        if verb == "delete":
            await service.delete(scope, rest, is_admin=await self.admins.is_admin(team, user))
            return f"Deleted persona `{rest.strip().lower()}`."
        if verb == "default":
            if not rest:
                return "Usage: `/persona default <name>|none`"
            chosen = await service.set_channel_default(
                scope,
                None if rest.lower() in _CLEAR else rest,
                is_admin=await self.admins.is_admin(team, user),
            )
            if chosen is None:
                return "This channel has no default persona now."
            return f"New threads in <#{channel}> now use persona *{chosen.name}*."
        if verb == "use":
            if not channel.startswith("D"):
                return (
                    "In a channel, say `@Parley persona <name>` in the thread, or start one with "
                    "`/chat persona:<name> <question>`."
                )
            return await self.use(scope, user, rest)
        return USAGE

    async def use(self, key: ConversationKey, user: str, name: str) -> str:
        """Apply a persona to the conversation at `key` (`none`: back to the channel default)."""
        if not name:
            return "Say which persona: `persona <name>` or `persona none`."
        chosen = await self.service.use(
            key,
            user,
            None if name.lower() in _CLEAR else name,
            is_admin=await self.admins.is_admin(key.tenant, user),
        )
        if chosen is None:
            return "Persona cleared: this conversation uses the channel's default again."
        return f"This conversation now uses persona *{chosen.name}*."
