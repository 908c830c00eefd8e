"""The few words that differ by platform, so one sentence in the core reads right on each."""

from __future__ import annotations

TENANT = {"discord": "server", "slack": "workspace"}
"""What a platform calls a tenant."""


def tenant_word(platform: str) -> str:
    return TENANT.get(platform, "workspace")


def thread_verb(platform: str, verb: str) -> str:
    """How a user runs `verb` on the conversation of the thread they are in."""
    if platform == "slack":  # slash commands carry no thread: a mention in the thread does
        return f"say `@Parley {verb}` in its thread"
    return f"run /{verb} in its thread"
