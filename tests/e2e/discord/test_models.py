"""/model and /chat model: on Discord through the real `python -m bot`: a channel's model needs an
admin (Manage Server or DISCORD_ADMIN_ROLE; without the role set, only Manage Server), a thread's
is its owner's, and a model without a price is refused unless ALLOW_UNPRICED_MODELS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.discord.conftest import run_discord_bot
from tests.fakes.discord import FakeDiscord, Interaction
from tests.fakes.discord.payloads import LOADING, text_of
from tests.fakes.llm_server import LLMFake, workers_stream

CHANNEL_REFUSAL = (
    "Only admins can set a channel's model (the one new conversations there start with)."
)
THREAD_REFUSAL = "Only the person who started this conversation, or an admin, can change its model."
RAW = "workers-ai:@cf/meta/llama-3.2-1b-instruct"


async def answer(fake: FakeDiscord, inter: Interaction) -> str:
    """What the command's original response says once it is no longer 'thinking'."""

    def done() -> dict[str, Any] | None:
        found = fake.messages.get(inter.original_id or "")
        return None if found is None or found["flags"] & LOADING else found

    return text_of(await fake.wait_until(done, 20, what="the command's answer"))


async def model(fake: FakeDiscord, user: str, channel: str, name: str | None = None) -> str:
    options = {"name": name} if name else {}
    return await answer(fake, await fake.slash("model", options, user=user, channel=channel))


async def test_without_an_admin_role_members_cannot_set_a_channels_model(
    discord_fake: FakeDiscord, llm_fake: LLMFake, tmp_path: Path
) -> None:
    channel = discord_fake.channel_ids[0]
    async with run_discord_bot(discord_fake, llm_fake, tmp_path):
        # carol holds a role named "admin", but DISCORD_ADMIN_ROLE is unset: only Manage Server
        for user in ("alice", "carol"):
            assert await model(discord_fake, user, channel, "gpt-4o-mini") == CHANNEL_REFUSAL
        shown = await model(discord_fake, "alice", channel)
        assert shown.startswith(
            "The model for this channel is **Llama 3.1 8B Instruct (fast)** (`llama-3.1-8b`)."
        )


async def test_admins_set_channels_owners_set_threads_and_unpriced_models_are_refused(
    discord_fake: FakeDiscord, llm_fake: LLMFake, tmp_path: Path
) -> None:
    fake = discord_fake
    channel, other = fake.channel_ids[1], fake.channel_ids[2]
    async with run_discord_bot(fake, llm_fake, tmp_path, DISCORD_ADMIN_ROLE="admin"):
        chosen = await model(fake, "carol", channel, "mistral-7b")
        assert chosen == (
            "The model for this channel is now **Mistral 7B Instruct v0.1** (`mistral-7b`)."
        )
        # A new thread there starts with the channel's model (the core gives it, as on Slack).
        llm_fake.queue("workers", workers_stream(["From mistral."]))
        await fake.slash("chat", {"prompt": "which model?"}, user="alice", channel=channel)
        await fake.wait_until(lambda: llm_fake.calls, 20, what="the provider call")
        assert "mistral" in llm_fake.calls[-1].path.lower()
        await fake.wait_until(lambda: fake.finished(channel), 20, what="the answer")
        llm_fake.calls.clear()

        before = set(fake.channels)
        raw = await fake.slash(
            "chat", {"prompt": "raw please", "model": RAW}, user="alice", channel=other
        )
        refusal = await answer(fake, raw)
        assert refusal.startswith(f"`{RAW}` has no price") and "ALLOW_UNPRICED_MODELS" in refusal
        assert set(fake.channels) == before and not llm_fake.calls  # no thread, no provider

        llm_fake.queue("workers", workers_stream(["Yours."]))
        await fake.slash("chat", {"prompt": "my thread"}, user="alice", channel=other)
        thread = await fake.wait_until(
            lambda: next((c for c in fake.channels if c not in before), None), 20, what="a thread"
        )
        await fake.wait_until(lambda: fake.finished(other) or fake.finished(thread), 20)
        assert await model(fake, "bob", thread, "gpt-4o-mini") == THREAD_REFUSAL
        mine = await model(fake, "alice", thread, "gpt-4o-mini")
        assert mine == "The model for this thread is now **OpenAI GPT-4o mini** (`gpt-4o-mini`)."

        # bob's /chat model: in alice's thread is refused, said in the command's answer
        calls = len(llm_fake.calls)
        theirs = await fake.slash(
            "chat", {"prompt": "switch it", "model": "mistral-7b"}, user="bob", channel=thread
        )
        assert await answer(fake, theirs) == THREAD_REFUSAL
        assert len(llm_fake.calls) == calls
        assert (await model(fake, "alice", thread)).startswith(
            "The model for this thread is **OpenAI GPT-4o mini** (`gpt-4o-mini`)."
        )
        said = [text_of(m) for m in fake.bot_messages(thread)]  # for everyone in the thread
        assert any("set the model for this thread to **OpenAI GPT-4o mini**" in t for t in said)
