"""Parley on Slack: slash commands, mentions, threads and DMs, streamed replies, Block Kit buttons.

The core never imports this package; `python -m bot` finds it through the `parley.adapters`
entry point and calls `create(app)`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from adapters.slack.adapter import SlackAdapter
    from bot.app import App


def create(app: App) -> SlackAdapter:
    from adapters.slack.adapter import SlackAdapter

    return SlackAdapter(app)


__all__ = ["create"]
