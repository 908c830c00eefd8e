"""/model [name]: the model of a thread, a DM or a channel, shown or chosen.

A channel's model is what its new conversations start with, so only an admin sets it; a
conversation's (a thread, a DM), its owner or an admin (bot.engine.planning). A change is said
in the place it changes, for everyone there.
"""

from __future__ import annotations

from bot.commands.reply import Bold, Code, Line, Mention, Reply
from bot.domain import Caller, ConversationKey
from bot.engine.chat import ChatEngine


def _where(place: ConversationKey, in_conversation: bool) -> str:
    if place.thread:
        return "this thread"
    return "this conversation" if in_conversation else "this channel"


class ModelCommands:
    def __init__(self, engine: ChatEngine) -> None:
        self.engine = engine

    async def show(
        self, caller: Caller, place: ConversationKey, *, in_conversation: bool = False
    ) -> Reply:
        entry = await self.engine.current_model(caller.check(place))
        return Reply(
            ((f"The model for {_where(place, in_conversation)} is ", Bold(entry.display),
              " (", Code(entry.name), ")."),),
            note=("Change it with ", Code("/model <name>"), "; ", Code("/model default"),
                  " goes back to the default."),
        )  # fmt: skip

    async def set(
        self,
        caller: Caller,
        place: ConversationKey,
        name: str | None,
        *,
        in_conversation: bool = False,
    ) -> Reply:
        """`name` None: back to the default. `in_conversation`: the place is a conversation
        without a thread (a DM), not a channel whose threads are conversations."""
        entry = await self.engine.set_model(
            caller.check(place), caller.user_id, name, is_admin=caller.is_admin,
            dm=in_conversation,
        )  # fmt: skip
        where = _where(place, in_conversation)
        said: Line = (Bold(entry.display), " (", Code(entry.name), ")")
        return Reply(
            ((f"The model for {where} is now ", *said, "."),),
            announce=(Mention(caller.user_id), f" set the model for {where} to ", *said, "."),
            target=place,
        )
