"""The command layer: every rule of what users type above the chat engine, once.

Each handler takes a `Caller` (bot.domain: platform, tenant, user, is_admin as the adapter
resolved it from the platform's roles), the place the command came from (a ConversationKey)
and typed arguments, and returns a `Reply` (bot.commands.reply) or raises a `UserError`
(bot.errors). Adapters parse the platform's input into that call and render what comes back.
"""

from bot.commands.conversations import ConversationCommands
from bot.commands.personas import KEEP, PersonaCommands, PersonaEdit
from bot.commands.reply import Reply
from bot.commands.usage import UsageCommands

__all__ = [
    "KEEP",
    "ConversationCommands",
    "PersonaCommands",
    "PersonaEdit",
    "Reply",
    "UsageCommands",
]
