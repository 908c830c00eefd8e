"""Full-text search over messages (`/search`, bot/store/search_repo.py).

SQLite: an FTS5 index (`messages_fts`, external content: the text stays in `messages`, the index
holds only the terms) kept by triggers. It indexes `user_id` too: a query names its user as a
term, so FTS5 walks that user's postings alongside the word's instead of every message holding a
common word (a million for "the"; bench/search.py). PostgreSQL: a table of each ended
message's tsvector (`messages_fts` too), kept by a trigger, with a GIN index on the user's id
and the words, for the same reason (btree_gin, a contrib extension PostgreSQL ships and marks
trusted; the downgrade leaves it installed).
Both stem English words and keep stop words (FTS5's porter tokenizer; on PostgreSQL the
`parley_search` configuration, `english` without its stop-word list), and both
skip turns still `streaming`: a running turn's text is rewritten every few seconds and is not
worth indexing until it ends; the triggers index it when its status changes.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXED = "status <> 'streaming'"
COLUMNS = "rowid, content, user_id"
UNINDEX = (
    f"INSERT INTO messages_fts(messages_fts, {COLUMNS})"
    f" SELECT 'delete', OLD.id, OLD.content, OLD.user_id WHERE OLD.{INDEXED};"
)
INDEX = (
    f"INSERT INTO messages_fts({COLUMNS})"
    f" SELECT NEW.id, NEW.content, NEW.user_id WHERE NEW.{INDEXED};"
)
SQLITE = (
    "CREATE VIRTUAL TABLE messages_fts USING fts5(content, user_id, content='messages',"
    " content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    f"INSERT INTO messages_fts({COLUMNS}) SELECT id, content, user_id FROM messages"
    f" WHERE {INDEXED}",
    # FTS5 merges its segments a little on every write once a level holds `automerge` of them
    # (default 4): with the index kept by triggers that put ~20 ms into the p99 of appending a
    # turn (bench/persist.py; 0.27 ms at 16, 0.14 ms with no index at all). 16 leaves merging
    # to far fewer writes; searches read a few more segments (still well under 1 ms each).
    "INSERT INTO messages_fts(messages_fts, rank) VALUES ('automerge', 16)",
    f"CREATE TRIGGER trg_messages_fts_insert AFTER INSERT ON messages BEGIN {INDEX} END",
    f"CREATE TRIGGER trg_messages_fts_delete AFTER DELETE ON messages BEGIN {UNINDEX} END",
    "CREATE TRIGGER trg_messages_fts_update AFTER UPDATE OF content, status, user_id ON messages"
    f" BEGIN {UNINDEX} {INDEX} END",
)
SQLITE_DOWN = (
    "DROP TRIGGER trg_messages_fts_update",
    "DROP TRIGGER trg_messages_fts_delete",
    "DROP TRIGGER trg_messages_fts_insert",
    "DROP TABLE messages_fts",
)
WORDS = "asciiword, asciihword, hword_asciipart, word, hword, hword_part"
POSTGRES = (
    # English stems without English stop words, like FTS5's porter: "the" and "it" are found.
    "CREATE TEXT SEARCH DICTIONARY parley_stem (TEMPLATE = snowball, LANGUAGE = english)",
    "CREATE TEXT SEARCH CONFIGURATION parley_search (COPY = english)",
    f"ALTER TEXT SEARCH CONFIGURATION parley_search ALTER MAPPING FOR {WORDS} WITH parley_stem",
    # A table of its own, not an index on messages.content: an index on `content` would stop
    # the heartbeat's rewrites of running turns being HOT updates (every index of messages
    # rewritten 1,000 times a beat; appends meanwhile missed their 5 ms p99, bench/persist.py).
    "CREATE TABLE messages_fts (id integer PRIMARY KEY REFERENCES messages(id) ON DELETE"
    " CASCADE, user_id varchar(160), words tsvector NOT NULL)",
    "INSERT INTO messages_fts SELECT id, user_id, to_tsvector('parley_search', content)"
    f" FROM messages WHERE {INDEXED}",
    # btree_gin lets the user's id be a key of the same GIN index: a query intersects the user's
    # entries with the words' instead of reading every message that holds a common word.
    "CREATE EXTENSION IF NOT EXISTS btree_gin",
    # fastupdate (GIN's pending list) keeps an append's p99 where it was; off put ~1 ms on
    # every append (bench/persist.py).
    "CREATE INDEX ix_messages_fts_words ON messages_fts USING gin (user_id, words)"
    " WITH (fastupdate = on)",
    "CREATE FUNCTION fn_messages_fts() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n"
    "  INSERT INTO messages_fts VALUES (NEW.id, NEW.user_id,"
    " to_tsvector('parley_search', NEW.content))\n"
    "  ON CONFLICT (id) DO UPDATE SET user_id = EXCLUDED.user_id, words = EXCLUDED.words;\n"
    "  RETURN NULL;\nEND $$",
    "CREATE TRIGGER trg_messages_fts AFTER INSERT OR UPDATE OF content, status, user_id"
    f" ON messages FOR EACH ROW WHEN (NEW.{INDEXED}) EXECUTE FUNCTION fn_messages_fts()",
)
POSTGRES_DOWN = (
    "DROP TRIGGER trg_messages_fts ON messages",
    "DROP FUNCTION fn_messages_fts()",
    "DROP TABLE messages_fts",
    "DROP TEXT SEARCH CONFIGURATION parley_search",
    "DROP TEXT SEARCH DICTIONARY parley_stem",
)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRES if postgres else SQLITE:
        op.execute(statement)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRES_DOWN if postgres else SQLITE_DOWN:
        op.execute(statement)
