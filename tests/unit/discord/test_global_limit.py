"""Discord's global request limit: the shared budget, the bot's pacing, and the fake's 429s."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
import yarl

from adapters.discord.surface import GLOBAL, DiscordSurface, RateLimitWatch
from bot.config import ConfigurationError, load_settings
from bot.pacing import TeamBudget
from bot.ports import Control, MessageRef, RateLimited
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.ratelimit import BucketSpec

API = "https://discord.com/api/v10"


def test_wait_tells_the_next_free_slot_without_reserving_it() -> None:
    now = [50.0]
    budget = TeamBudget(10 * 60, clock=lambda: now[0])  # ten a second
    assert budget.wait("k") == 0
    assert budget.claim("k", max_wait=0) == 0
    assert budget.wait("k") == pytest.approx(0.1)
    assert budget.wait("k") == pytest.approx(0.1)  # asking twice reserves nothing
    assert budget.wait("other") == 0
    now[0] += 0.25
    assert budget.wait("k") == 0  # a slot in the past is free now, with no credit banked
    assert budget.claim("k", max_wait=0) == 0
    assert budget.claim("k", max_wait=1) == pytest.approx(0.1)


def test_claims_are_evenly_spaced_and_a_429_pushes_everyone_back() -> None:
    now = [0.0]
    budget = TeamBudget(45 * 60, clock=lambda: now[0])
    waits = [budget.claim(GLOBAL, max_wait=float("inf")) for _ in range(90)]
    assert waits == pytest.approx([i / 45 for i in range(90)])  # 90 calls take two seconds
    with pytest.raises(RateLimited):
        budget.claim(GLOBAL, max_wait=1.0)  # the next slot is 2 s away
    budget.back_off(GLOBAL, 5.0)
    assert budget.wait(GLOBAL) == pytest.approx(5.0)


def test_the_global_rate_defaults_under_discords_50_and_must_be_positive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BOT_CONFIG", raising=False)
    monkeypatch.delenv("DISCORD_GLOBAL_RATE_PER_SECOND", raising=False)
    assert load_settings(_env_file=None).discord_global_rate_per_second == 45
    monkeypatch.setenv("DISCORD_GLOBAL_RATE_PER_SECOND", "0")
    with pytest.raises(ConfigurationError, match="DISCORD_GLOBAL_RATE_PER_SECOND"):
        load_settings(_env_file=None)


@pytest.mark.parametrize(
    ("url", "paced"),
    [
        (f"{API}/channels/1/messages", True),
        (f"{API}/channels/1/messages/2", True),
        (f"{API}/users/@me", True),
        (f"{API}/gateway/bot", True),
        (f"{API}/interactions/1/tok-abc/callback", False),
        (f"{API}/webhooks/1/tok-abc/messages/@original", False),
        (f"{API}/webhooks/1/tok-abc", False),
        ("wss://gateway.discord.gg/?v=10&encoding=json", False),
        ("https://cdn.discordapp.com/attachments/1/2/a.png", False),
        ("http://127.0.0.1:9/api/v10/channels/1/messages", False),  # another host
    ],
)
def test_only_rest_requests_the_global_limit_counts_are_paced(url: str, paced: bool) -> None:
    watch = RateLimitWatch(budget=TeamBudget(60), api_base=API)
    assert watch.paced(yarl.URL(url)) is paced


def test_the_fake_gateway_next_to_the_fake_api_is_not_paced() -> None:
    watch = RateLimitWatch(budget=TeamBudget(60), api_base="http://127.0.0.1:8000/api/v10")
    assert watch.paced(yarl.URL("http://127.0.0.1:8000/api/v10/channels/1/messages"))
    assert not watch.paced(yarl.URL("ws://127.0.0.1:8000/gateway"))


class _Unreachable:
    """A message the test must never edit: the surface refuses before reaching it."""

    async def edit(self, **kwargs: object) -> None:
        raise AssertionError("the interim edit should have been refused")


async def test_interim_edit_is_refused_when_the_global_slot_is_far_and_reserves_nothing() -> None:
    now = [0.0]
    budget = TeamBudget(60, clock=lambda: now[0])  # one a second
    watch = RateLimitWatch(budget=budget, api_base=API)
    for _ in range(3):
        budget.claim(GLOBAL, max_wait=float("inf"))
    surface = DiscordSurface(object(), "1", watch)  # type: ignore[arg-type]
    surface._partials["7"] = _Unreachable()  # type: ignore[assignment]
    stop = (Control("stop", "1", "Stop"),)
    with pytest.raises(AssertionError, match="should have been refused"):
        await surface.edit(MessageRef("7", "1"), "first text", stop)  # the first: never refused
    surface._shown = True  # as after the reply's first text went out
    with pytest.raises(RateLimited) as refused:
        await surface.edit(MessageRef("7", "1"), "partial text", stop)
    assert refused.value.retry_after == pytest.approx(3.0)
    assert budget.wait(GLOBAL) == pytest.approx(3.0)  # nothing was reserved
    regenerate = (Control("regenerate", "1", "Regenerate"),)
    with pytest.raises(AssertionError, match="should have been refused"):
        await surface.edit(
            MessageRef("7", "1"), "final text", regenerate, final=True
        )  # never refused


@pytest_asyncio.fixture
async def limited() -> AsyncIterator[tuple[FakeDiscord, aiohttp.ClientSession]]:
    async with FakeDiscord(global_limit=BucketSpec(50, 1.0)) as fake:
        headers = {"Authorization": f"Bot {fake.token}"}
        async with aiohttp.ClientSession(fake.api_base + "/", headers=headers) as session:
            yield fake, session


async def test_the_fake_answers_the_51st_request_in_a_second_with_a_global_429(
    limited: tuple[FakeDiscord, aiohttp.ClientSession],
) -> None:
    fake, http = limited
    channels = fake.channel_ids
    statuses = []
    for i in range(50):  # spread over channels: no per-channel bucket is involved
        async with http.get(f"channels/{channels[i % len(channels)]}") as r:
            statuses.append(r.status)
    assert statuses == [200] * 50
    async with http.post(f"channels/{channels[0]}/typing") as r:
        assert r.status == 429
        assert r.headers["Content-Type"] == "application/json"
        assert r.headers["X-RateLimit-Global"] == "true"
        assert r.headers["X-RateLimit-Scope"] == "global"
        assert r.headers["Via"] == "1.1 google"
        assert int(r.headers["Retry-After"]) >= 1
        body = await r.json()
    assert body["message"] == "You are being rate limited."
    assert body["global"] is True and 0 < body["retry_after"] <= 1.0
    assert [c.route for c in fake.global_limited] == ["typing"]
    assert fake.rate_limited == fake.global_limited


async def test_interaction_callbacks_and_webhooks_are_exempt_from_the_global_limit(
    limited: tuple[FakeDiscord, aiohttp.ClientSession],
) -> None:
    fake, http = limited
    for _ in range(50):
        async with http.get("users/@me") as r:
            assert r.status == 200
    payload = fake._interaction(2, {"name": "chat"}, "alice", None)
    callback = f"interactions/{payload['id']}/{payload['token']}/callback"
    async with http.post(callback, json={"type": 5}) as r:
        assert r.status == 200
    original = f"webhooks/{fake.app_id}/{payload['token']}/messages/@original"
    async with http.patch(original, json={"content": "done"}) as r:
        assert r.status == 200
    async with http.get("users/@me") as r:
        assert r.status == 429  # the window is still spent for everything else
    assert [c.route for c in fake.global_limited] == ["me"]
