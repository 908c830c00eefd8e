"""What a command answers, on no platform in particular: lines of text made of a few spans,
small print, buttons with stable ids, a file, and a line for everyone in the conversation.

An adapter renders a Reply once (adapters/discord/replies.py, adapters/slack/replies.py, the
console): text through its platform's Markup, buttons as its components, the file as its
platform can carry one. It never rewrites the text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from bot.domain import ConversationKey
from bot.markup import Markup


@dataclass(frozen=True, slots=True)
class Bold:
    text: str


@dataclass(frozen=True, slots=True)
class Code:
    text: str


@dataclass(frozen=True, slots=True)
class Mention:
    user: str


@dataclass(frozen=True, slots=True)
class Channel:
    channel: str


@dataclass(frozen=True, slots=True)
class When:
    at: datetime


@dataclass(frozen=True, slots=True)
class Said:
    """Words a user typed (a title, a prompt): inert in every markup, whitespace collapsed,
    cut to `limit` characters with an ellipsis (0: not cut)."""

    text: str
    limit: int = 0


@dataclass(frozen=True, slots=True)
class Place:
    """A link to a conversation, labelled with what the user called it."""

    channel: str
    thread: str
    label: str


Part = str | Bold | Code | Mention | Channel | When | Said | Place
Line = tuple[Part, ...]


def short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if not limit or len(text) <= limit else text[: limit - 1].rstrip() + "…"


def render_part(part: Part, markup: Markup) -> str:
    match part:
        case str():
            return part
        case Bold(text):
            return markup.bold(text)
        case Code(text):
            return markup.code(text)
        case Mention(user):
            return markup.mention(user)
        case Channel(channel):
            return markup.channel(channel)
        case When(at):
            return markup.when(at)
        case Said(text, limit):
            return markup.text(short(text, limit))
        case Place(channel, thread, label):
            return markup.place(channel, thread, short(label, 60))
    raise TypeError(part)


def render_line(line: Iterable[Part], markup: Markup) -> str:
    return "".join(render_part(part, markup) for part in line)


@dataclass(frozen=True, slots=True)
class Button:
    """A button; `action` and `value` make its stable id on every platform
    (Discord `parley:<action>:<value>`, Slack `parley_<action>_<value>`)."""

    action: str
    value: str
    label: str


@dataclass(frozen=True, slots=True)
class File:
    name: str
    data: bytes
    content_type: str = "text/markdown; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Reply:
    """What a command answers, only to the user who ran it (its `announce` is for everyone)."""

    lines: tuple[Line, ...]
    note: Line = ()
    """Small print under the reply (how to go on)."""
    buttons: tuple[Button, ...] = ()
    file: File | None = None
    announce: Line = ()
    """Said in the conversation itself, for everyone there (an archive, a fresh start)."""
    target: ConversationKey | None = None
    """The conversation the command acted on: where `announce` and a file go."""

    @classmethod
    def say(cls, *parts: Part) -> Reply:
        return cls(lines=(tuple(parts),))

    def text(self, markup: Markup) -> str:
        return "\n".join(render_line(line, markup) for line in self.lines)

    def plain(self) -> str:
        """The text without markup: for logs, tests and notifications."""
        from bot.markup import MARKDOWN

        return self.text(MARKDOWN)
