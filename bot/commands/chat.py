"""What a /chat names besides its question (a model, a persona), checked before anything is
posted, so a typo costs nothing but the refusal; and whether a plain message is for Parley."""

from __future__ import annotations

from bot.catalog import Catalog
from bot.commands.personas import UNAVAILABLE
from bot.domain import Caller, ConversationKey
from bot.engine.personas import PersonaService
from bot.errors import UserError
from bot.store import Store


class ChatCommands:
    def __init__(self, catalog: Catalog, personas: PersonaService | None, store: Store) -> None:
        self.catalog = catalog
        self.personas = personas
        self.store = store

    async def addressed(self, place: ConversationKey, *, mentioned: bool) -> bool:
        """Whether a message in a shared place (a channel's thread) is for Parley: it mentions
        Parley, or the place is a live conversation of Parley's. An archived conversation's
        thread stays silent; a mention there is answered that it is archived. (A DM is always
        for Parley: adapters do not ask.)"""
        if mentioned:
            return True
        conversation = await self.store.get_conversation(place)
        return conversation is not None and not conversation.archived

    async def options(
        self,
        caller: Caller,
        place: ConversationKey,
        *,
        model: str | None = None,
        persona: str | None = None,
    ) -> tuple[str | None, str | None]:
        """The catalog name of the model and the persona's name; UserError if either is not
        one the caller may use here."""
        if model:
            model = self.catalog.choose(model, platform=caller.platform).name
        if persona:
            if self.personas is None:
                raise UserError(UNAVAILABLE, code="unavailable")
            persona = (await self.personas.get(caller.check(place), persona)).name
        return model, persona
