"""Slack's slash commands and thread keywords, read by the core's command table.

Every command of bot.commands.table is a slash command here (a group's subcommand is its first
word: `/persona create <name> ...`), typed as `<first> key:value ... <text>` (bot.commands.spec).
Slash commands carry no thread_ts, so a command names its conversation one of three ways:
- in a bot thread, mention Parley with the word: `@Parley archive`, `@Parley export`, `@Parley new`,
  `@Parley persona <name>`; these arrive as events, claimed once through the store;
- `/archive <id>`, `/export <id>`, `/new <id>` with the id `/history` shows, from anywhere in the
  workspace;
- in a DM with Parley, `/archive`, `/export` and `/new` alone mean the DM's conversation.
The rules and the words are the core's; this module finds the command and shows its Reply.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from adapters.slack.replies import Replies, scope_of
from bot.commands.controls import STALE_BUTTON
from bot.commands.conversations import MAX_PAGE
from bot.commands.reply import Reply
from bot.commands.spec import Command, Here, find, parse, whole_number
from bot.commands.table import command_table

if TYPE_CHECKING:
    from slack_bolt.context.respond.async_respond import AsyncRespond

    from bot.app import App
    from bot.domain import ConversationKey

PLATFORM = "slack"
HISTORY_ACTION = re.compile(r"^parley_history_[0-9]{1,6}$")
"""The Previous / Next buttons under /history; their value is the page they show."""
KEYWORDS = ("archive", "export", "new")


class SlackCommands:
    def __init__(self, app: App, replies: Replies) -> None:
        self.table = command_table(app)
        self.replies = replies

    @property
    def roots(self) -> tuple[str, ...]:
        """The slash commands to listen for: each command, or the group it is part of."""
        return tuple(dict.fromkeys(command.words[0] for command in self.table.values()))

    async def slash(
        self, root: str, team: str, payload: dict[str, Any], respond: AsyncRespond
    ) -> None:
        """`/<root> ...`: the command it names, its options read from the text."""
        user, channel = payload["user_id"], payload["channel_id"]
        text = str(payload.get("text") or "").strip()
        place = scope_of(team, channel)

        async def work() -> Reply:
            command, rest = find(self.table, root, text, PLATFORM)
            args = parse(command, rest, PLATFORM)
            caller = await self.replies.caller(place, user)
            return await self._run(command, Here(caller, place, channel.startswith("D")), args)

        domain = str(payload.get("team_domain") or "")
        await self.replies.command(respond, work, f"/{root} team={team} user={user}", domain=domain)

    async def history_click(
        self, team: str, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond
    ) -> None:
        """Previous / Next under /history: the page in place of the one shown."""
        page = whole_number(str(action.get("value") or ""), 1, MAX_PAGE)
        if page is None:
            await respond(text=STALE_BUTTON, response_type="ephemeral")
            return
        user = body["user"]["id"]
        place = scope_of(team, (body.get("channel") or {}).get("id", ""))
        history = self.table["history"]

        async def work() -> Reply:
            caller = await self.replies.caller(place, user)
            return await self._run(history, Here(caller, place), {"page": page})

        domain = str((body.get("team") or {}).get("domain") or "")
        what = f"/history team={team} user={user}"
        await self.replies.command(respond, work, what, domain=domain, replace=True)

    async def keyword(self, key: ConversationKey, user: str, text: str) -> bool:
        """`@Parley archive|export|new|persona <name>` in a thread: that thread's conversation.
        False: the text is not one of them (it is chat)."""
        word, _, rest = text.strip().lstrip("/").partition(" ")
        word, rest = word.lower(), rest.strip()
        if word in KEYWORDS and not rest:
            command = self.table[word]
        elif word == "persona":
            command = self.table["persona use"]
        else:
            return False

        async def work() -> Reply:
            if not rest and command.name == "persona use":
                return Reply.say("Say which persona: `persona <name>` or `persona none`.")
            args = parse(command, rest, PLATFORM)
            caller = await self.replies.caller(key, user)
            return await self._run(command, Here(caller, key, in_conversation=True), args)

        await self.replies.in_thread(key, user, work, f"thread {word} conversation={key}")
        return True

    @staticmethod
    async def _run(command: Command, here: Here, args: Any) -> Reply:
        assert command.run is not None
        return await command.run(here, args)
