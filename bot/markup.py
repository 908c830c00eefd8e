"""How a platform marks up the few spans the core's texts use (bot.commands.reply): bold, code,
a user's mention, a channel, a link, a moment, and words a user typed.

The core writes its texts as spans; an adapter renders them with its platform's Markup instead
of rewriting the core's text afterwards with string replacements. `place` links to a
conversation and needs to know where the platform serves it (a Discord guild, a Slack domain),
so an adapter makes that one per request with `Markup.at(...)`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _no_link(channel: str, thread: str, label: str) -> str:
    return label


@dataclass(frozen=True, slots=True)
class Markup:
    bold: Callable[[str], str]
    mention: Callable[[str], str]
    """A user id as the platform shows a user (no ping: adapters send with mentions off)."""
    text: Callable[[str], str] = lambda text: text
    """Text from a user (a prompt, a title) made inert in the platform's markup."""
    code: Callable[[str], str] = lambda text: f"`{text}`"
    channel: Callable[[str], str] = lambda channel: channel
    when: Callable[[datetime], str] = _utc
    """A moment, as the platform shows one in the reader's own time zone where it can."""
    place: Callable[[str, str, str], str] = _no_link
    """(channel, thread, label): the label linked to that conversation."""
    small: Callable[[str], str] = lambda text: text
    """A line of small print under a reply."""

    def at(self, place: Callable[[str, str, str], str]) -> Markup:
        return dataclasses.replace(self, place=place)


def _discord_label(text: str) -> str:
    return " ".join(text.replace("[", "(").replace("]", ")").split())


def _slack_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_when(moment: datetime) -> str:
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{_utc(moment)}>"


MARKDOWN = Markup(bold=lambda text: f"**{text}**", mention=lambda user: user)
"""Markdown, users as their ids: logs, tests and `ask`."""

PLAIN = Markup(bold=lambda text: text, mention=lambda user: user)
"""A terminal's plain text: the console."""

DISCORD = Markup(
    bold=lambda text: f"**{text}**",
    mention=lambda user: f"<@{user}>" if user.isascii() and user.isdigit() else user,
    channel=lambda channel: f"<#{channel}>",
    when=lambda moment: f"<t:{int(moment.timestamp())}:R>",
    small=lambda text: f"-# {text}",
)


def discord_place(guild_id: int | None) -> Callable[[str, str, str], str]:
    def place(channel: str, thread: str, label: str) -> str:
        url = f"https://discord.com/channels/{guild_id or '@me'}/{thread or channel}"
        return f"[{_discord_label(label)}]({url})"

    return place


SLACK = Markup(
    bold=lambda text: f"*{text}*",
    mention=lambda user: f"<@{user}>",
    text=_slack_text,
    channel=lambda channel: f"<#{channel}>",
    when=_slack_when,
)
"""Slack's mrkdwn."""


def slack_place(domain: str) -> Callable[[str, str, str], str]:
    def place(channel: str, thread: str, label: str) -> str:
        base = f"https://{domain or 'app'}.slack.com/archives/{channel}"
        url = f"{base}/p{thread.replace('.', '')}" if thread else base
        return f"<{url}|{_slack_text(label.replace('|', '/'))}>"

    return place
