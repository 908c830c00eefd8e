"""A conversation's message_count and last_message_at kept by a trigger on messages.

Appending a turn was two statements (bump the conversation, insert the message); each statement is
three or four trips to aiosqlite's worker thread, or a round trip to PostgreSQL, and those trips are
most of an append's time (docs/benchmarks.md, persistence). The trigger makes it one INSERT.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIGGER = "trg_messages_count"
FUNCTION = "fn_messages_count"
BUMP = """
UPDATE conversations
   SET message_count = message_count + 1,
       last_message_at = NEW.created_at,
       updated_at = NEW.created_at
 WHERE id = NEW.conversation_id"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            f"BEGIN{BUMP};\nRETURN NULL;\nEND $$"
        )
        op.execute(
            f"CREATE TRIGGER {TRIGGER} AFTER INSERT ON messages "
            f"FOR EACH ROW EXECUTE FUNCTION {FUNCTION}()"
        )
    else:
        op.execute(
            f"CREATE TRIGGER {TRIGGER} AFTER INSERT ON messages FOR EACH ROW BEGIN{BUMP};\nEND"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER {TRIGGER} ON messages")
        op.execute(f"DROP FUNCTION {FUNCTION}()")
    else:
        op.execute(f"DROP TRIGGER {TRIGGER}")
