"""`/search`: a user's own messages in one tenant, by words, ranked, with snippets.

Part of the Store package; a `SearchStore` wraps a `Store` and runs in its transactions. The
indexes are migration 0009's: FTS5 on SQLite, on PostgreSQL a table of tsvectors with a GIN
index on (user, words), both named `messages_fts`. Both queries take the user's newest
CANDIDATES matches (each index walks the user's own postings beside the words', so a word in
every message costs no more than a rare one), rank those, and make snippets for the rows shown
only. The ranks: PostgreSQL's `ts_rank` (normalised by length); on SQLite a BM25 term-frequency
and length score without the IDF part, computed from `highlight()`: FTS5's own `bm25()` counts,
for every query, how many messages in the whole database hold each word, a walk of a million
postings for "the" (~20 ms, bench/search.py), and since every word must match anyway IDF only
reorders within what a user already narrowed.

What a user typed never reaches either query language: it is cut to words (`terms`), each
quoted for FTS5 and joined for `plainto_tsquery`, so `NEAR`, `*`, `-`, `:` and quotes are words
or nothing, and every word must appear (AND). A hit is a message the user wrote or an answer
to them (`messages.user_id`), in a conversation they started, in this tenant, not archived:
another user's words in the same thread never come back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from bot.store.repo import Store
from bot.store.tables import UTCDateTime

MARK, UNMARK = "\x02", "\x03"
"""Around each matched word in a snippet; the command renders them (bot.commands.search)."""
MAX_TERMS = 8
MAX_TERM_CHARS = 40
_WORD = re.compile(r"\w+")

CANDIDATES = 200
"""Hits are ranked among the user's newest CANDIDATES messages that match (see `SearchStore`)."""
TYPICAL_CHARS = 400.0
"""A typical message's length, for the length part of the SQLite ranking."""

_SQLITE = f"""
WITH recent AS (
  SELECT m.id, m.role, m.created_at, c.id AS conversation_id, c.channel_id, c.thread_id,
         c.title, length(m.content) AS chars,
         length(highlight(messages_fts, 0, '{MARK}', '')) - length(m.content) AS found
    FROM messages_fts
    JOIN messages m ON m.id = messages_fts.rowid
    JOIN conversations c ON c.id = m.conversation_id
   WHERE messages_fts MATCH :query
     AND c.tenant_id = :tenant AND c.user_id = :user AND NOT c.archived
     AND m.user_id = :user
   ORDER BY messages_fts.rowid DESC
   LIMIT :candidates
),
best AS (
  SELECT *, found * 2.2 / (found + 1.2 * (0.25 + 0.75 * chars / {TYPICAL_CHARS})) AS rank
    FROM recent
   ORDER BY rank DESC, id DESC
   LIMIT :limit
)
SELECT best.*, snippet(messages_fts, 0, '{MARK}', '{UNMARK}', '…', 16) AS snippet
  FROM best JOIN messages_fts ON messages_fts.rowid = best.id
 WHERE messages_fts MATCH :query
 ORDER BY best.rank DESC, best.id DESC
"""

_POSTGRES = f"""
WITH q AS (SELECT plainto_tsquery('parley_search', :query) AS q),
recent AS (
  SELECT m.id, m.role, m.created_at, m.content, c.id AS conversation_id, c.channel_id,
         c.thread_id, c.title, f.words
    FROM q, messages_fts f
    JOIN messages m ON m.id = f.id
    JOIN conversations c ON c.id = m.conversation_id
   WHERE f.user_id = :user AND f.words @@ q.q
     AND c.tenant_id = :tenant AND c.user_id = :user AND NOT c.archived
     AND m.user_id = :user
   ORDER BY f.id DESC
   LIMIT :candidates
),
best AS (
  SELECT recent.*, ts_rank(recent.words, q.q, 1) AS rank
    FROM recent, q
   ORDER BY rank DESC, id DESC
   LIMIT :limit
)
SELECT best.id, best.role, best.created_at, best.conversation_id, best.channel_id,
       best.thread_id, best.title,
       ts_headline('parley_search', best.content, q.q,
                   'StartSel={MARK}, StopSel={UNMARK}, MaxWords=24, MinWords=8') AS snippet
  FROM best, q
 ORDER BY best.rank DESC, best.id DESC
"""


@dataclass(frozen=True, slots=True)
class SearchHit:
    message_id: int
    role: str
    created_at: datetime
    conversation_id: int
    channel_id: str
    thread_id: str
    title: str
    snippet: str
    """The message around the matched words, each between MARK and UNMARK."""


def terms(words: str) -> tuple[str, ...]:
    """The words of a query, in order, each once, at most MAX_TERMS."""
    found = dict.fromkeys(w.lower()[:MAX_TERM_CHARS] for w in _WORD.findall(words))
    return tuple(found)[:MAX_TERMS]


class SearchStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def search(
        self, *, tenant_id: str, user_id: str, words: Sequence[str], limit: int = 10
    ) -> list[SearchHit]:
        """The best `limit` of the user's messages holding every one of `words` (see `terms`)."""
        if not words:
            return []
        postgres = self._store.dialect == "postgresql"
        if postgres:
            query = " ".join(words)
        else:  # the user's postings, and every word in the text
            quoted = " ".join(f'"{w}"' for w in words)
            query = f'user_id:"{user_id.replace(chr(34), chr(34) * 2)}" AND content:({quoted})'

        stmt = (
            text(_POSTGRES if postgres else _SQLITE)
            .bindparams(
                query=query, tenant=tenant_id, user=user_id, limit=limit, candidates=CANDIDATES
            )
            .columns(created_at=UTCDateTime())
        )
        async with self._store._transaction(write=False) as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            SearchHit(
                message_id=int(row.id),
                role=str(row.role),
                created_at=row.created_at,
                conversation_id=int(row.conversation_id),
                channel_id=str(row.channel_id),
                thread_id=str(row.thread_id),
                title=str(row.title),
                snippet=str(row.snippet or ""),
            )
            for row in rows
        ]
