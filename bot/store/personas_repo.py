"""Personas and per-channel defaults: the SQL behind `/persona` (part of the Store package).

A `PersonaStore` wraps a `Store` and runs in its transactions, like `ImageStore`. Every query is
scoped by a platform-qualified tenant id; nothing here checks who may do what (bot/engine does).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from bot.domain import ConversationKey
from bot.store.convert import tenant_id_for
from bot.store.records import Persona
from bot.store.repo import Store, StoreError
from bot.store.tables import channel_settings, personas, tenants


class DuplicatePersona(StoreError):
    """A persona with that name already exists in the tenant."""


@dataclass(frozen=True, slots=True)
class PersonaFields:
    """What an admin sets on a persona."""

    system_prompt: str
    model: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    tools: tuple[str, ...] = ()
    show_reasoning: str | None = None


class PersonaStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def create(
        self, key: ConversationKey, name: str, fields: PersonaFields, *, created_by: str
    ) -> Persona:
        now = self._store._clock.wall()
        tenant_id = tenant_id_for(key)
        stmt = (
            insert(personas)
            .values(
                tenant_id=tenant_id,
                name=name,
                created_by=created_by,
                created_at=now,
                updated_at=now,
                **_values(fields),
            )
            .returning(*personas.c)
        )
        try:
            async with self._store._transaction(write=True) as conn:
                await conn.execute(
                    self._store._insert_ignoring_conflicts(
                        tenants,
                        id=tenant_id,
                        platform=key.platform,
                        external_id=key.tenant,
                        created_at=now,
                    )
                )
                row = (await conn.execute(stmt)).one()
        except IntegrityError:
            raise DuplicatePersona(name) from None
        return _persona(row)

    async def update(self, tenant_id: str, name: str, fields: PersonaFields) -> Persona | None:
        p = personas.c
        stmt = (
            update(personas)
            .where(p.tenant_id == tenant_id, p.name == name)
            .values(updated_at=self._store._clock.wall(), **_values(fields))
            .returning(*personas.c)
        )
        async with self._store._transaction(write=True) as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else _persona(row)

    async def delete(self, tenant_id: str, name: str) -> bool:
        p = personas.c
        async with self._store._transaction(write=True) as conn:
            result = await conn.execute(
                delete(personas).where(p.tenant_id == tenant_id, p.name == name)
            )
        return bool(result.rowcount)

    async def get(self, tenant_id: str, name: str) -> Persona | None:
        p = personas.c
        stmt = select(personas).where(p.tenant_id == tenant_id, p.name == name)
        async with self._store._transaction(write=False) as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else _persona(row)

    async def list(self, tenant_id: str) -> list[Persona]:
        stmt = select(personas).where(personas.c.tenant_id == tenant_id).order_by(personas.c.name)
        async with self._store._transaction(write=False) as conn:
            rows = (await conn.execute(stmt)).all()
        return [_persona(row) for row in rows]

    async def set_channel_default(self, key: ConversationKey, name: str | None) -> None:
        """The persona new turns in `key`'s channel use unless one was chosen (None: no default)."""
        now = self._store._clock.wall()
        tenant_id = tenant_id_for(key)
        c = channel_settings.c
        async with self._store._transaction(write=True) as conn:
            await conn.execute(
                self._store._insert_ignoring_conflicts(
                    tenants,
                    id=tenant_id,
                    platform=key.platform,
                    external_id=key.tenant,
                    created_at=now,
                )
            )
            await conn.execute(
                self._store._insert_ignoring_conflicts(
                    channel_settings, tenant_id=tenant_id, channel_id=key.channel, updated_at=now
                )
            )
            await conn.execute(
                update(channel_settings)
                .where(c.tenant_id == tenant_id, c.channel_id == key.channel)
                .values(persona=name, updated_at=now)
            )

    async def channel_default(self, tenant_id: str, channel_id: str) -> str | None:
        c = channel_settings.c
        stmt = select(c.persona).where(c.tenant_id == tenant_id, c.channel_id == channel_id)
        async with self._store._transaction(write=False) as conn:
            value = (await conn.execute(stmt)).scalar_one_or_none()
        return None if value is None else str(value)

    async def set_conversation_persona(self, conversation_id: int, name: str | None) -> None:
        """Apply a persona to one conversation; its own /model choice gives way to the persona's."""
        await self._store._update_conversation(conversation_id, persona=name, model=None)


def _values(fields: PersonaFields) -> dict[str, Any]:
    return {
        "system_prompt": fields.system_prompt,
        "model": fields.model,
        "temperature": fields.temperature,
        "top_p": fields.top_p,
        "max_tokens": fields.max_tokens,
        "tools": json.dumps(list(fields.tools)),
        "show_reasoning": fields.show_reasoning,
    }


def _persona(row: Row[Any]) -> Persona:
    return Persona(
        id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        system_prompt=row.system_prompt,
        model=row.model,
        temperature=row.temperature,
        top_p=row.top_p,
        max_tokens=row.max_tokens,
        tools=tuple(json.loads(row.tools or "[]")),
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        show_reasoning=row.show_reasoning,
    )
