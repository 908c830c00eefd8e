"""What a command is, for every surface: its name, its options, and how typed text reads as them.

A `Command` names its options once (kind, range, choices, what they complete from); Discord
builds its slash command from them, and the text surfaces (Slack's slash commands, the console)
read `<first> key:value ... <text>` with `parse`, strictly:

- numbers are ASCII digits (a decimal: at most one point) within the option's range: `str.isdigit`
  takes `²`, `int()` takes `٣`, ` 7 `, `+7` and `1_000`, and a 30-digit page number overflowed
  the database's integers;
- a value with spaces goes in double quotes; an option given twice, a choice not offered, text
  the command takes no text for: each is refused by name (`BadOptions`) with the usage line;
- one of `CLEAR_WORDS` typed for an option that `clears` gives None: "back to the default"
  (unless the option offers that word as a choice).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.commands.reply import Reply
from bot.commands.words import tenant_word
from bot.domain import Caller, ConversationKey
from bot.errors import UserError

CLEAR_WORDS = frozenset({"none", "default", "reset", "clear", "off"})
"""What a user types for an option that clears: back to the default."""
_DIGITS = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?|\.[0-9]+")
_DECIMAL_MAX_CHARS = 20
_YES, _NO = frozenset({"yes", "true", "on", "1"}), frozenset({"no", "false", "0"})

Args = Mapping[str, Any]
"""The options given: absent ones are missing; a cleared one is None."""


class BadOptions(UserError):
    """A command's options cannot be read as typed; the message says which."""

    code = "bad_options"


@dataclass(frozen=True, slots=True)
class Here:
    """Who runs a command and where: `in_conversation` is a thread or a DM (a conversation),
    not a channel whose threads are conversations."""

    caller: Caller
    place: ConversationKey
    in_conversation: bool = False


@dataclass(frozen=True, slots=True)
class Option:
    name: str
    help: str
    """Up to 100 characters (Discord's limit); `{tenant}` reads "server" or "workspace"."""
    kind: type = str
    """str, int, float, bool, tuple (a comma-separated list of names, "none" for none), or
    Attachment: a file the user attaches (Discord's attachment option; the surface reads it)."""
    required: bool = False
    low: float | None = None
    high: float | None = None
    """A number's range; a text's length (at most)."""
    choices: tuple[str, ...] = ()
    complete: str = ""
    """"model" or "persona": the surface offers those names as the user types."""
    clears: bool = False
    first: bool = False
    """In typed text, the first word (unless given as `name:value`)."""
    text: bool = False
    """In typed text, what is left after the options."""
    only: str = ""
    """A platform the option exists on; empty: all."""
    alias: str = ""

    def __post_init__(self) -> None:
        if self.kind is int and (self.low is None or self.high is None):
            raise ValueError(f"the whole-number option {self.name!r} needs a range")

    def on(self, platform: str) -> bool:
        return not self.only or self.only == platform

    def help_on(self, platform: str) -> str:
        return self.help.format(tenant=tenant_word(platform))

    def choices_on(self, platform: str) -> tuple[str, ...]:
        return tuple(c.format(tenant=tenant_word(platform)) for c in self.choices)

    def read(self, value: Any, platform: str) -> Any:
        """The option's value from what was typed (text) or picked (a platform's typed value)."""
        if not isinstance(value, str):
            return value
        value = value.strip()
        offered = self.choices_on(platform)
        if self.clears and value.lower() in CLEAR_WORDS and value.lower() not in offered:
            return None  # a choice of the same word (`show_reasoning:off`) is that choice
        if self.kind is int:
            low, high = int(self.low or 0), int(self.high or 0)
            number = whole_number(value.removeprefix("#"), low, high)
            if number is None:
                span = f" from {low:,} to {high:,}" if high < 2**40 else ""
                raise BadOptions(
                    f"`{self.name}` must be a whole number{span} (got {value[:20]!r})."
                )
            return number
        if self.kind is float:
            decimal_value = decimal(value)
            if decimal_value is None or not self._within(decimal_value):
                raise BadOptions(
                    f"`{self.name}` must be a number{self._range()} (got {value[:20]!r})."
                )
            return decimal_value
        if self.kind is bool:
            if value.lower() not in _YES | _NO:
                raise BadOptions(f"`{self.name}` must be yes or no.")
            return value.lower() in _YES
        if self.kind is tuple:
            if value.lower() in CLEAR_WORDS | {"", "-"}:
                return ()
            return tuple(t for t in re.split(r"[,\s]+", value) if t)
        if self.choices:
            offered = self.choices_on(platform)
            if value.lower() not in offered:
                raise BadOptions(f"`{self.name}` must be one of {', '.join(offered)}.")
            return value.lower()
        if self.high is not None and len(value) > self.high:
            raise BadOptions(f"`{self.name}` takes up to {self.high:,.0f} characters.")
        return value

    def _within(self, value: float) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def _range(self) -> str:
        return f" from {self.low:g} to {self.high:g}" if self.low is not None else ""


Run = Callable[[Here, Args], Awaitable[Reply]]


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    """`history`, or `persona create` for a subcommand of a group."""
    help: str
    options: tuple[Option, ...] = ()
    run: Run | None = None
    """None: the surface runs it itself (a chat turn, an image quote), with the options parsed."""

    @property
    def words(self) -> tuple[str, str]:
        group, _, sub = self.name.partition(" ")
        return group, sub

    def help_on(self, platform: str) -> str:
        return self.help.format(tenant=tenant_word(platform))

    def options_on(self, platform: str) -> tuple[Option, ...]:
        return tuple(o for o in self.options if o.on(platform))

    def usage(self, platform: str) -> str:
        """`/persona edit <name> [model:…] [text]`: how to type it."""
        parts = [f"/{self.name}"]
        for option in self.options_on(platform):
            shown = option.name.replace("_", " ") if option.text else option.name
            if option.first or option.text:
                parts.append(f"<{shown}>" if option.required else f"[{shown}]")
            else:
                values = "|".join(option.choices_on(platform)) or "…"
                parts.append(f"[{option.name}:{values}]")
        return f"`{' '.join(parts)}`"


def find(table: Mapping[str, Command], word: str, text: str, platform: str) -> tuple[Command, str]:
    """The command typed as `/<word> <text>` (a group's subcommand is the text's first word,
    `list` when there is none) and the text left for its options; BadOptions if none is."""
    if word in table:
        return table[word], text.strip()
    verb, _, rest = text.strip().partition(" ")
    command = table.get(f"{word} {verb.lower() or 'list'}")
    if command is None:
        usages = [c.usage(platform) for c in table.values() if c.words[0] == word]
        raise BadOptions(f"Usage: {' · '.join(usages)}" if usages else f"There is no /{word}.")
    return command, rest.strip()


def parse(command: Command, text: str, platform: str) -> dict[str, Any]:
    """`text` as `command`'s options; raises BadOptions with the usage line."""
    try:
        return _parse(command, text, platform)
    except BadOptions as exc:
        raise BadOptions(f"{exc}\nUsage: {command.usage(platform)}") from None


def _parse(command: Command, text: str, platform: str) -> dict[str, Any]:
    options = command.options_on(platform)
    names = {o.name: o for o in options} | {o.alias: o for o in options if o.alias}
    typed, rest = take_options(text, names)
    found = {names[name].name: value for name, value in typed.items()}
    if len(found) < len(typed):
        raise BadOptions("An option is given twice.")
    first = next((o for o in options if o.first), None)
    if first is not None and first.name not in found and rest:
        found[first.name], _, rest = rest.partition(" ")
    free = next((o for o in options if o.text), None)
    if free is not None:
        rest = re.sub(rf"^{free.name}:\s*", "", rest).strip()
        if rest and free.name in found:
            raise BadOptions(f"Give the {free.name.replace('_', ' ')} once.")
        if rest:
            found[free.name] = rest
    elif rest:
        raise BadOptions(f"I don't know what {rest[:40]!r} is.")
    args: dict[str, Any] = {}
    for option in options:
        if option.name in found:
            args[option.name] = option.read(found[option.name], platform)
        elif option.required:
            raise BadOptions(f"`{option.name.replace('_', ' ')}` is missing.")
    return args


def take_options(text: str, names: Iterable[str]) -> tuple[dict[str, str], str]:
    """The `name:value` options in `text` (a value with spaces in double quotes), each at most
    once, and the rest of the text with runs of spaces collapsed; raises BadOptions."""
    pattern = re.compile(rf'(?<!\S)({"|".join(names)}):("([^"]*)"|\S+)')
    found: dict[str, str] = {}
    for match in pattern.finditer(text):
        name = match.group(1)
        if name in found:
            raise BadOptions(f"`{name}` is given twice.")
        found[name] = match.group(3) if match.group(3) is not None else match.group(2)
    return found, re.sub(r"[ \t]{2,}", " ", pattern.sub(" ", text)).strip()


def whole_number(text: str, low: int, high: int) -> int | None:
    """`text` as a whole number from `low` to `high`, else None."""
    if len(text) > len(str(high)) or not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if low <= value <= high else None


def decimal(text: str) -> float | None:
    """`text` as a plain decimal (`0.7`, `1`, `.5`), else None."""
    if len(text) > _DECIMAL_MAX_CHARS or not _DECIMAL.fullmatch(text):
        return None
    return float(text)
