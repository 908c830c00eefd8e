"""Slack's AI app surface, through the real process against the Slack fake: suggested prompts
when an assistant thread starts, a title from the first question, rotating loading messages
while the model works, and feedback buttons when the streamed answer stops."""

from __future__ import annotations

from tests.e2e.slack.conftest import ALICE, SlackBot
from tests.e2e.slack.helpers import finished, wait_answer
from tests.fakes.llm_server import workers_stream

DM = "D0ALICE"


def started(thread: str) -> dict[str, object]:
    return {
        "type": "assistant_thread_started",
        "assistant_thread": {
            "user_id": ALICE,
            "context": {"channel_id": "C0GENERAL", "team_id": "T0001"},
            "channel_id": DM,
            "thread_ts": thread,
        },
        "event_ts": thread,
    }


async def test_an_assistant_thread_gets_prompts_a_title_status_and_feedback(
    bot: SlackBot,
) -> None:
    fake = bot.fake
    root = fake.user_message(DM, ALICE, "(assistant thread)")
    await bot.sender.event(started(root.ts))
    await fake.wait_for(lambda: fake.prompts, 10)
    (prompts,) = fake.prompts
    assert prompts["channel_id"] == DM and prompts["thread_ts"] == root.ts
    assert 1 <= len(prompts["prompts"]) <= 4 and prompts["title"]
    assert all(p["title"] and p["message"] for p in prompts["prompts"])

    bot.llm.queue("workers", workers_stream(["Cats ", "sleep a lot."]), workers_stream(["Yes."]))
    question = "Why do cats sleep so much during the day?"
    await bot.sender.event(bot.sender.message(DM, ALICE, question, thread_ts=root.ts))
    replies = await wait_answer(fake, DM, root.ts)
    [answer] = [m for m in replies if m.streamed and finished(m)]
    assert answer.text == "Cats sleep a lot."
    assert fake.titles == [(root.ts, question)]
    status = next(s for s in fake.statuses if s["thread_ts"] == root.ts)
    assert status["status"] == "is thinking…" and len(status["loading_messages"]) >= 2
    stop = fake.calls_to("chat.stopStream")[-1]
    feedback = [b for b in stop.args["blocks"] if b["type"] == "context_actions"]
    (element,) = feedback[0]["elements"]
    assert element["type"] == "feedback_buttons"
    turn = element["positive_button"]["value"].split(":")[1]

    click = {"user": ALICE, "channel": DM, "message_ts": answer.ts, "thread_ts": root.ts}
    good = element["positive_button"] | {"action_id": element["action_id"]}
    sent = await bot.sender.click(good, **click)
    assert sent.status == 200
    await fake.wait_for(lambda: _rated(bot.output(), turn), 10)

    # A second question in the thread keeps its title.
    await bot.sender.event(bot.sender.message(DM, ALICE, "Really?", thread_ts=root.ts))
    await wait_answer(fake, DM, root.ts, count=2)
    assert fake.titles == [(root.ts, question)]


def _rated(log: str, turn: str) -> bool:
    """The bot logged the feedback event for `turn` (text or JSON logs)."""
    for line in log.splitlines():
        if "feedback" in line and "good" in line and turn in line and "U0ALICE" in line:
            return True
    return False
