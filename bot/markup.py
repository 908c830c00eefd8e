"""How a platform marks up the few spans the core's texts use: bold and a mention of a user.

The core writes its texts through a Markup; an adapter passes its platform's, instead of
rewriting the core's text afterwards with string replacements.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Markup:
    bold: Callable[[str], str]
    mention: Callable[[str], str]
    """A user id as the platform shows a user (no ping: adapters send with mentions off)."""
    text: Callable[[str], str] = lambda text: text
    """Text from a user (a prompt) made inert in the platform's markup."""


MARKDOWN = Markup(bold=lambda text: f"**{text}**", mention=lambda user: user)
"""Markdown, users as their ids: the console and `ask`."""

DISCORD = Markup(
    bold=lambda text: f"**{text}**",
    mention=lambda user: f"<@{user}>" if user.isascii() and user.isdigit() else user,
)
SLACK = Markup(
    bold=lambda text: f"*{text}*",
    mention=lambda user: f"<@{user}>",
    text=lambda text: text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"),
)
"""Slack's mrkdwn."""
