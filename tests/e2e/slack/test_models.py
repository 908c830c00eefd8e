"""/model on Slack through the real `python -m bot`: a channel's model needs an admin, a DM's is
its owner's, and a model without a price is refused unless ALLOW_UNPRICED_MODELS, in which case
its turns are still counted in tokens."""

from __future__ import annotations

import sqlite3

from tests.e2e.slack.conftest import ALICE, BOB, CHANNEL, SlackBot, StartBot
from tests.e2e.slack.helpers import ask, run_command
from tests.fakes.llm_server import openai_stream, workers_stream

ADMIN = "U0CONFIGADMIN"  # in SLACK_ADMIN_USERS
OWNER = "U0WSOWNER"  # a workspace owner, by users.info
RAW = "workers-ai:@cf/meta/llama-3.2-1b-instruct"  # not in the catalog: no price
CHANNEL_REFUSAL = (
    "Only admins can set a channel's model (the one new conversations there start with)."
)


async def model(bot: SlackBot, text: str, user: str, channel: str = CHANNEL) -> dict[str, object]:
    return await run_command(bot, "/model", text, user=user, channel=channel)


def rows(bot: SlackBot, sql: str) -> list[sqlite3.Row]:
    db = bot.log.parent / "parley.db"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        conn.row_factory = sqlite3.Row
        return list(conn.execute(sql))


async def announced(bot: SlackBot, channel: str) -> str:
    """The newest message Parley posted in the channel itself (not in a thread)."""

    def latest() -> str | None:
        said = [m for m in bot.fake.messages.values() if m.channel == channel and m.is_bot]
        said = [m for m in said if not m.thread_ts and "set the model" in m.text]
        return said[-1].text if said else None

    await bot.fake.wait_for(latest, 10)
    text = latest()
    assert text is not None
    return text


async def test_only_admins_set_a_channels_model_and_its_threads_start_with_it(
    start_bot: StartBot,
) -> None:
    bot = await start_bot(SLACK_ADMIN_USERS=ADMIN)
    bot.fake.add_user(BOB)
    bot.fake.add_user(OWNER, is_owner=True)
    refused = await model(bot, "gpt-4o-mini", BOB)
    assert (refused["text"], refused["response_type"]) == (CHANNEL_REFUSAL, "ephemeral")
    shown = await model(bot, "", BOB)
    assert "`llama-3.1-8b`" in str(shown["text"])  # unchanged
    assert not rows(bot, "SELECT id FROM conversations WHERE model IS NOT NULL")

    unknown = await model(bot, "no-such-model", ADMIN)
    assert "unknown model 'no-such-model'" in str(unknown["text"])
    chosen = await model(bot, "gpt-4o-mini", ADMIN)
    assert chosen["response_type"] == "ephemeral"
    assert (
        chosen["text"] == "The model for this channel is now *OpenAI GPT-4o mini* (`gpt-4o-mini`)."
    )
    assert await announced(bot, CHANNEL) == (  # and for everyone in the channel
        f"<@{ADMIN}> set the model for this channel to *OpenAI GPT-4o mini* (`gpt-4o-mini`)."
    )
    bot.llm.queue("openai", openai_stream(["From GPT."]))
    await ask(bot, "which model?", user=BOB, channel=CHANNEL)  # a new thread: the channel's
    assert bot.llm.calls_to("openai") and not bot.llm.calls_to("workers")

    back = await model(bot, "default", OWNER)  # a workspace owner is an admin too
    assert back["text"].startswith("The model for this channel is now *Llama 3.1 8B")
    assert (await announced(bot, CHANNEL)).startswith(f"<@{OWNER}> set the model")


async def test_anyone_sets_the_model_of_their_own_dm(start_bot: StartBot) -> None:
    bot = await start_bot()
    bot.fake.add_user(BOB)
    chosen = await model(bot, "gpt-4o-mini", BOB, channel="D0BOB")
    assert chosen["text"] == (
        "The model for this conversation is now *OpenAI GPT-4o mini* (`gpt-4o-mini`)."
    )


async def test_a_model_without_a_price_is_refused_by_default(start_bot: StartBot) -> None:
    bot = await start_bot(SLACK_ADMIN_USERS=ADMIN)
    refused = await model(bot, RAW, ADMIN)
    text = str(refused["text"])
    assert text.startswith(f"`{RAW}` has no price") and "ALLOW_UNPRICED_MODELS=true" in text
    assert refused["response_type"] == "ephemeral"
    persona = await run_command(
        bot, "/persona", f"create raw model:{RAW} Be raw.", user=ADMIN, channel=CHANNEL
    )
    assert "ALLOW_UNPRICED_MODELS=true" in str(persona["text"])
    assert not rows(bot, "SELECT id FROM conversations WHERE model IS NOT NULL")
    assert not rows(bot, "SELECT id FROM personas")


async def test_an_allowed_unpriced_model_is_counted_in_tokens_against_the_cap(
    start_bot: StartBot,
) -> None:
    bot = await start_bot(
        SLACK_ADMIN_USERS=ADMIN, ALLOW_UNPRICED_MODELS="true", CHAT_TOKENS_PER_DAY="30"
    )
    chosen = await model(bot, RAW, ADMIN)
    assert chosen["text"].startswith("The model for this channel is now ")
    assert f"(`{RAW}`)" in chosen["text"]
    bot.llm.queue("workers", workers_stream(["Raw and unpriced."], usage=(20, 15)))
    await ask(bot, "hello raw", user=ALICE, channel=CHANNEL)
    [call] = bot.llm.calls_to("workers")
    assert call.path.endswith("/ai/run/@cf/meta/llama-3.2-1b-instruct")
    [row] = rows(
        bot, "SELECT user_id, model, prompt_tokens, completion_tokens, cost FROM usage_ledger"
    )
    assert tuple(row) == (ALICE, RAW, 20, 15, None)  # tokens counted, no price to apply
    # The per-user token cap counts those tokens although they cost nothing known.
    await bot.sender.command("/chat", "and again", user=ALICE, channel=CHANNEL)
    await bot.fake.wait_for(lambda: bot.fake.ephemerals)
    assert bot.fake.ephemerals[-1].text.startswith("You've used your 30 chat tokens for today")
    assert len(bot.llm.calls_to("workers")) == 1
