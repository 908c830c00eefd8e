"""Stop, Regenerate, Approve and Deny under a reply: only its asker may press them, on the
reply's own platform and tenant; anyone else, or a click on a reply that is gone, is told so
privately."""

from __future__ import annotations

from bot.commands.reply import Reply
from bot.domain import Caller
from bot.engine.approvals import Answered
from bot.engine.chat import REFUSAL_ARCHIVED, ChatEngine
from bot.engine.conversations import MAX_ID
from bot.engine.running import StopResult, why_not_running
from bot.errors import UserError
from bot.store import Conversation, Store, StoredMessage
from bot.store.turns_repo import TurnStore

STALE_REPLY = "That reply no longer exists."
NOT_YOURS_STOP = "Only the person who asked can stop this reply."
NOT_YOURS_REGENERATE = "Only the person who asked can regenerate this."
NOT_YOURS_APPROVE = "Only the person who asked can approve or deny this."
NOT_WAITING = "That request is no longer waiting for an answer."
STALE_BUTTON = "That button no longer works."
"""A button whose id is not one Parley made (or no longer reads)."""


class ReplyControls:
    def __init__(self, engine: ChatEngine, store: Store) -> None:
        self.engine = engine
        self.store = store

    async def press(self, caller: Caller, action: str, turn_id: int) -> Reply | None:
        """Stop, Approve or Deny: None, done (the reply itself shows it); else what to tell the
        clicker, privately."""
        if action == "stop":
            return await self.stop(caller, turn_id)
        return await self.answer(caller, turn_id, approve=action == "approve")

    async def stop(self, caller: Caller, turn_id: int) -> Reply | None:
        """None: stopped (the reply itself shows it); else what to tell the clicker."""
        if self.engine.stop(turn_id, caller.user_id) is StopResult.STOPPED:
            return None  # a reply runs in one tenant: its asker's id cannot be another's
        turn, _, asker = await self._reply(caller, turn_id)
        if asker != caller.user_id:
            return Reply.say(NOT_YOURS_STOP)
        if turn.status == "streaming" and await TurnStore(self.store).request_stop(turn_id):
            return None  # another replica runs it, and stops it when it sees the mark
        return Reply.say(why_not_running(turn))

    async def answer(self, caller: Caller, turn_id: int, *, approve: bool) -> Reply | None:
        """Approve or Deny a tool call the reply waits on, here or on the replica that runs it;
        None: taken (the reply shows it)."""
        answered = self.engine.approvals.answer(turn_id, caller.actor, approve)
        if answered is Answered.NOT_WAITING:
            answered = await self._answer_elsewhere(caller, turn_id, approve)
        if answered is Answered.TAKEN:
            return None
        return Reply.say(NOT_YOURS_APPROVE if answered is Answered.NOT_YOURS else NOT_WAITING)

    async def _answer_elsewhere(self, caller: Caller, turn_id: int, approve: bool) -> Answered:
        """A call waiting on another replica: the asker's answer is marked for it."""
        try:
            _, _, asker = await self._reply(caller, turn_id)
        except UserError:
            return Answered.NOT_WAITING  # as for a reply that waits for nothing
        turns = TurnStore(self.store)
        if asker != caller.user_id:
            return Answered.NOT_YOURS if await turns.waiting(turn_id) else Answered.NOT_WAITING
        return Answered.TAKEN if await turns.answer(turn_id, approve) else Answered.NOT_WAITING

    async def regenerable(self, caller: Caller, turn_id: int) -> Conversation:
        """The conversation to answer in again, or a UserError saying why not."""
        _, conversation, asker = await self._reply(caller, turn_id)
        if asker != caller.user_id:
            raise UserError(NOT_YOURS_REGENERATE, code="not_yours")
        if conversation.archived:  # told before "Regenerating…" shows; the engine checks again
            raise UserError(REFUSAL_ARCHIVED, code="archived")
        return conversation

    async def _reply(
        self, caller: Caller, turn_id: int
    ) -> tuple[StoredMessage, Conversation, str | None]:
        """The reply, its conversation and who asked, when it is in the caller's tenant."""
        if not 0 < turn_id <= MAX_ID:  # a forged button: no row has it, no driver binds it
            raise UserError(STALE_REPLY, code="stale")
        turn = await self.store.get_message(turn_id)
        if turn is None or turn.role != "assistant" or turn.parent_id is None:
            raise UserError(STALE_REPLY, code="stale")
        conversation = await self.store.get_conversation_by_id(turn.conversation_id)
        here = (caller.platform, caller.tenant)
        if conversation is None or (conversation.platform, conversation.tenant) != here:
            raise UserError(STALE_REPLY, code="stale")  # as for an id that never existed
        parent = await self.store.get_message(turn.parent_id)
        return turn, conversation, parent.user_id if parent else None
