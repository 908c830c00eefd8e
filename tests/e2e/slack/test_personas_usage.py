"""/persona, `/chat persona:`, channel defaults and /usage on Slack, through one real process.

Admins: U0ADMIN is a workspace admin (users.info), U0CONFIG is listed in SLACK_ADMIN_USERS, and
U0PLAIN is a member. Each test uses its own persona names, channels and prompts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.e2e.slack.conftest import SlackBot, launch_bot, stop_bot
from tests.e2e.slack.helpers import ask, ephemerals_to, run_command, say_in_thread
from tests.fakes.llm_server import Call, LLMFake
from tests.fakes.slack import SlackFake

pytestmark = pytest.mark.asyncio(loop_scope="module")

ADMIN, CONFIGURED, PLAIN = "U0ADMIN", "U0CONFIG", "U0PLAIN"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SlackBot]:
    tmp = tmp_path_factory.mktemp("slack-personas")
    async with SlackFake() as fake, LLMFake() as llm:
        fake.add_user(ADMIN, is_admin=True)
        fake.add_user(PLAIN)
        bot = await launch_bot(llm, fake, tmp, SLACK_ADMIN_USERS=f"{CONFIGURED},U0NOBODY")
        try:
            yield bot
        finally:
            await stop_bot(bot)
            assert "Traceback" not in bot.output(), bot.output()[-3000:]


async def persona(bot: SlackBot, text: str, user: str, channel: str = "C0PERSONA") -> str:
    post = await run_command(bot, "/persona", text, user=user, channel=channel)
    assert post["response_type"] == "ephemeral"
    return str(post["text"])


def calls_for(bot: SlackBot, prompt: str) -> list[Call]:
    return [c for c in bot.llm.calls if c.body and c.body["messages"][-1]["content"] == prompt]


def call_for(bot: SlackBot, prompt: str) -> Call:
    [call] = calls_for(bot, prompt)
    return call


async def asked(bot: SlackBot, prompt: str) -> None:
    """Wait until the model was asked `prompt`."""
    await bot.fake.wait_for(lambda: calls_for(bot, prompt))


async def test_admins_create_personas_and_members_are_refused(bot: SlackBot) -> None:
    refused = await persona(bot, "create sneaky Be sneaky.", PLAIN)
    assert refused == "Only admins can create personas."
    assert [c.args["user"] for c in bot.fake.calls_to("users.info")] == [PLAIN]

    made = await persona(bot, "create scribe temperature:0.2 Write like a scribe.", ADMIN)
    assert made.startswith("Created *scribe* · default model · temperature 0.2.")
    made = await persona(bot, 'create bard prompt:"Sing every answer."', CONFIGURED)
    assert made.startswith("Created *bard*")
    assert CONFIGURED not in [c.args["user"] for c in bot.fake.calls_to("users.info")]

    listed = await persona(bot, "list", PLAIN)
    assert "*bard*" in listed and "*scribe*" in listed and "sneaky" not in listed
    assert (
        await persona(bot, "edit scribe temperature:1", PLAIN) == "Only admins can edit personas."
    )
    assert await persona(bot, "delete scribe", PLAIN) == "Only admins can delete personas."
    assert await persona(bot, "default scribe", PLAIN) == (
        "Only admins can set a channel's default persona."
    )
    edited = await persona(bot, "edit scribe max_tokens:200", ADMIN)
    assert "temperature 0.2 · max_tokens 200" in edited
    assert await persona(bot, "delete bard", ADMIN) == "Deleted the persona *bard*."
    listed = await persona(bot, "list", PLAIN)
    assert "bard" not in listed and "> Write like a scribe." in listed  # the prompt was kept


async def test_invalid_persona_parameters_are_refused_with_a_clear_message(
    bot: SlackBot,
) -> None:
    cases = {
        "create hot temperature:3 Too hot.": "temperature must be between 0 and 2 (got 3).",
        "create wide top_p:1.5 Too wide.": "top_p must be between 0 and 1 (got 1.5).",
        "create long max_tokens:999999 Too long.": "max_tokens must be between 1 and",
        "create word temperature:warm Words.": "`temperature` must be a number (got 'warm').",
        "create Bad!Name Hi.": "is not a persona name",
        "create mute model:gpt-4o-mini": "`system prompt` is missing.",
        "create ghost model:no-such-model Boo.": "no-such-model",
    }
    for text, message in cases.items():
        answer = await persona(bot, text, ADMIN)
        assert message in answer, (text, answer)
    assert "hot" not in await persona(bot, "list", ADMIN)


async def test_chat_with_a_persona_sends_its_prompt_model_and_parameters(bot: SlackBot) -> None:
    made = await persona(
        bot,
        "create pirate model:gpt-4o-mini temperature:0.3 max_tokens:300 Talk like a pirate.",
        ADMIN,
    )
    assert made.startswith("Created *pirate*")
    thread = await ask(bot, "persona:pirate Where is the treasure?", user=PLAIN, channel="C0SHIP")
    call = call_for(bot, "Where is the treasure?")
    assert call.family == "openai"
    assert call.body["model"] == "gpt-4o-mini"
    assert call.body["temperature"] == 0.3 and call.body["max_tokens"] == 300
    assert call.body["messages"][0] == {"role": "system", "content": "Talk like a pirate."}

    # The thread keeps the persona for the next turn.
    await say_in_thread(
        bot, "And the map?", user=PLAIN, channel="C0SHIP", thread=thread, mention=False
    )
    await asked(bot, "And the map?")
    assert call_for(bot, "And the map?").body["messages"][0]["content"] == "Talk like a pirate."

    # An unknown persona is refused before anything is posted or asked.
    post = await run_command(bot, "/chat", "persona:ghost hello", user=PLAIN, channel="C0SHIP")
    assert post["text"] == "There is no persona named 'ghost' here. Try /persona list."
    assert not [m for m in bot.fake.messages.values() if "hello" in m.text]
    assert not calls_for(bot, "hello")


async def test_a_channel_default_and_the_thread_keyword_choose_the_persona(bot: SlackBot) -> None:
    await persona(bot, "create lawyer Answer like a careful lawyer.", ADMIN)
    await persona(bot, "create poet Answer in verse.", ADMIN)
    said = await persona(bot, "default lawyer", ADMIN, channel="C0LAW")
    assert said == "New conversations in <#C0LAW> use *lawyer* · default model by default."
    thread = await ask(bot, "Can I park here?", user=PLAIN, channel="C0LAW")
    assert call_for(bot, "Can I park here?").body["messages"][0]["content"] == (
        "Answer like a careful lawyer."
    )
    # Elsewhere the default system prompt still applies.
    await ask(bot, "Can I park there?", user=PLAIN, channel="C0OTHER")
    assert "lawyer" not in call_for(bot, "Can I park there?").body["messages"][0]["content"]

    # `@Parley persona poet` in the thread switches it: the thread's owner may, or an admin (as
    # on Discord); nobody else.
    stranger = "U0STRANGER"
    await say_in_thread(
        bot, "persona poet", user=stranger, channel="C0LAW", thread=thread, mention=True
    )
    await bot.fake.wait_for(lambda: ephemerals_to(bot.fake, stranger, "C0LAW"))
    assert ephemerals_to(bot.fake, stranger, "C0LAW") == [
        "Only the person who started this conversation, or an admin, can change its persona."
    ]
    await say_in_thread(
        bot, "persona none", user=ADMIN, channel="C0LAW", thread=thread, mention=True
    )
    await bot.fake.wait_for(lambda: ephemerals_to(bot.fake, ADMIN, "C0LAW"))
    assert ephemerals_to(bot.fake, ADMIN, "C0LAW") == [
        "This conversation is back to the channel's default persona."
    ]
    await say_in_thread(
        bot, "persona poet", user=PLAIN, channel="C0LAW", thread=thread, mention=True
    )
    await bot.fake.wait_for(lambda: ephemerals_to(bot.fake, PLAIN, "C0LAW"))
    assert ephemerals_to(bot.fake, PLAIN, "C0LAW") == [
        "This conversation now uses *poet* · default model."
    ]
    await say_in_thread(
        bot, "And at night?", user=PLAIN, channel="C0LAW", thread=thread, mention=False
    )
    await asked(bot, "And at night?")
    assert call_for(bot, "And at night?").body["messages"][0]["content"] == "Answer in verse."


async def test_usage_shows_my_spend_and_the_workspace_view_to_admins_only(bot: SlackBot) -> None:
    await ask(bot, "count my tokens", user="U0USAGE", channel="C0USAGE")
    # The ledger row is written just after the final message shows: ask until it counts.
    for _ in range(40):
        post = await run_command(bot, "/usage", "", user="U0USAGE", channel="C0USAGE")
        text = post["text"]
        if "over 0 requests" not in text:
            break
        await asyncio.sleep(0.25)
    assert post["response_type"] == "ephemeral"
    assert text.startswith("*Your usage* (UTC)")
    assert "Today: " in text and "over 1 requests" in text
    assert "chat llama-3.1-8b [workers-ai]" in text

    refused = await run_command(bot, "/usage", "workspace", user=PLAIN, channel="C0USAGE")
    assert refused["text"] == "Only admins can see this workspace's usage."
    admin = await run_command(bot, "/usage", "workspace", user=ADMIN, channel="C0USAGE")
    assert admin["text"].startswith("*This workspace's usage* (UTC)")
    assert "Top users this month:" in admin["text"] and "<@U0USAGE>:" in admin["text"]
    assert (await run_command(bot, "/usage", "nonsense", user=PLAIN, channel="C0USAGE"))[
        "text"
    ].startswith("`scope` must be one of me, workspace.\nUsage: `/usage [scope]`")
