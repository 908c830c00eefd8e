"""The two-phase image flow end to end: quote, click, providers over HTTP, store on SQLite."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx

from bot.domain import Actor, ConversationKey
from bot.images.engine import ImageEngine, ImageRequest
from bot.images.flow import handle_click, offer_quote
from bot.images.health import register
from bot.images.limits import ImageLimits
from bot.images.tools import GENERATE_IMAGE_TOOL, quote_from_tool_call
from bot.images.views import history_text
from bot.ops.web import WebServer
from bot.store import ImageStore, Store
from tests.fakes.images.server import PNG, ImageFake
from tests.fakes.images.support import JumpClock, MemoryImageSurface, make_engine

KEY = ConversationKey("discord", "g1", "c1", "t1")
ALICE, BOB = "u-alice", "u-bob"
AS_ALICE, AS_BOB = Actor.at(KEY, ALICE), Actor.at(KEY, BOB)


def ask(prompt: str = "a red fox", user: str = ALICE, **kw: object) -> ImageRequest:
    return ImageRequest(KEY, user, prompt, **kw)  # type: ignore[arg-type]


async def close(engine: ImageEngine) -> None:
    await engine.router.aclose()


async def test_quote_then_click_uploads_one_file_with_badges_and_cost(
    store: Store, fake: ImageFake, clock: JumpClock
) -> None:
    engine = make_engine(store, fake, clock)
    surface = MemoryImageSurface()
    job = await offer_quote(engine, ask("an artistic fox", quality=None), surface)
    assert job is not None and job.tier == "high" and job.provider == "openai"
    assert fake.calls == []  # quoting spends nothing
    (offer,) = surface.offers
    labels = [b.label for b in offer.buttons]
    assert labels[0] == "Generate for $0.0340" and labels[-1] == "Cancel"
    assert len(labels) > 2  # alternatives with their prices
    outcome = await handle_click(engine, offer.buttons[0].custom_id, AS_ALICE, surface)
    assert outcome is not None and outcome.kind == "generated"
    (upload,) = surface.uploads
    assert upload.data == PNG and upload.filename.endswith(".png")
    assert "$0.0340" in upload.badges and "openai" in upload.badges
    assert not any("fallback" in b for b in upload.badges)
    assert upload.buttons[0].action == "regenerate"
    assert len(fake.calls_to("openai")) == 1
    stored = outcome.job
    assert stored is not None and stored.status == "succeeded"
    assert stored.cost == Decimal("0.034") and stored.used_provider == "openai"
    assert stored.fallback_from is None and stored.duration_ms is not None
    await close(engine)


async def test_double_click_generates_once(store: Store, fake: ImageFake, clock: JumpClock) -> None:
    engine = make_engine(store, fake, clock)
    quote = await engine.quote(ask())
    first = await engine.confirm(quote.id, AS_ALICE)
    second = await engine.confirm(quote.id, AS_ALICE)
    assert (first.kind, second.kind) == ("generated", "already")
    assert "already" in second.message
    assert len(fake.calls) == 1
    await close(engine)


async def test_racing_clicks_generate_once(store: Store, fake: ImageFake, clock: JumpClock) -> None:
    engine = make_engine(store, fake, clock)
    quote = await engine.quote(ask())
    outcomes = await asyncio.gather(*(engine.confirm(quote.id, AS_ALICE) for _ in range(6)))
    assert sorted(o.kind for o in outcomes) == ["already"] * 5 + ["generated"]
    assert len(fake.calls) == 1
    await close(engine)


async def test_clicks_on_two_replicas_generate_once(
    store: Store, db_url: str, fake: ImageFake, clock: JumpClock
) -> None:
    other_store = await Store.open(db_url, clock=clock)
    one, two = make_engine(store, fake, clock), make_engine(other_store, fake, clock)
    quote = await one.quote(ask())
    outcomes = await asyncio.gather(
        *(engine.confirm(quote.id, AS_ALICE) for engine in (one, two, one, two))
    )
    assert sorted(o.kind for o in outcomes) == ["already"] * 3 + ["generated"]
    assert len(fake.calls) == 1
    await close(one)
    await close(two)
    await other_store.close()


async def test_expired_quote_generates_nothing(
    store: Store, fake: ImageFake, clock: JumpClock
) -> None:
    engine = make_engine(store, fake, clock)
    quote = await engine.quote(ask())
    clock.advance(901)
    outcome = await engine.confirm(quote.id, AS_ALICE)
    assert outcome.kind == "expired" and "expired" in outcome.message
    assert (await engine.confirm(quote.id, AS_ALICE)).kind == "already"
    assert fake.calls == []
    await close(engine)


async def test_someone_elses_click_does_nothing(
    store: Store, fake: ImageFake, clock: JumpClock
) -> None:
    engine = make_engine(store, fake, clock)
    quote = await engine.quote(ask())
    outcome = await engine.confirm(quote.id, AS_BOB)
    assert outcome.kind == "not_yours"
    assert (await engine.cancel(quote.id, AS_BOB)).kind == "not_yours"
    assert fake.calls == []
    assert (await engine.confirm(quote.id, AS_ALICE)).kind == "generated"  # still the owner's
    await close(engine)


async def test_another_tenants_quote_is_unknown_even_to_a_user_with_the_same_id(
    store: Store, fake: ImageFake, clock: JumpClock
) -> None:
    engine = make_engine(store, fake, clock)
    surface = MemoryImageSurface()
    quote = await engine.quote(ask())
    strangers = (Actor("discord", "g2", ALICE), Actor("slack", "g1", ALICE))
    for stranger in strangers:
        for verb in ("c", "a", "x"):
            ref = f"{quote.id}:0" if verb == "a" else quote.id
            outcome = await handle_click(engine, f"img:{verb}:{ref}", stranger, surface)
            assert outcome is not None and outcome.kind == "not_found" and outcome.job is None
    assert set(surface.notices) == {"That quote no longer exists."}  # as for a made-up id
    assert fake.calls == [] and surface.offers == []
    assert (await engine.confirm(quote.id, AS_ALICE)).kind == "generated"  # untouched
    for stranger in strangers:
        await handle_click(engine, f"img:r:{quote.id}", stranger, surface)
    assert surface.notices[-2:] == ["That image is no longer known."] * 2
    assert surface.offers == [] and len(fake.calls) == 1
    assert [j.id for j in await engine.recent(KEY, ALICE)] == [quote.id]  # no job was written
    await close(engine)


async def test_cancelled_quote_cannot_be_confirmed(
    store: Store, fake: ImageFake, clock: JumpClock
) -> None:
    engine = make_engine(store, fake, clock)
    quote = await engine.quote(ask())
    assert (await engine.cancel(quote.id, AS_ALICE)).kind == "cancelled"
    assert (await engine.confirm(quote.id, AS_ALICE)).kind == "already"
    assert fake.calls == []
    await close(engine)


async def test_hourly_cap_refuses_before_any_provider_call(
    store: Store, fake: ImageFake, clock: JumpClock
) -> None:
    engine = make_engine(store, fake, clock, limits=ImageLimits(1, 50, Decimal(10), Decimal(100)))
    first, second = await engine.quote(ask()), await engine.quote(ask())
    assert (await engine.confirm(first.id, AS_ALICE)).kind == "generated"
    refused = await engine.confirm(second.id, AS_ALICE)
    assert refused.kind == "limit" and "last hour" in refused.message
    assert len(fake.calls) == 1
    clock.advance(3601)
    assert (await engine.confirm(second.id, AS_ALICE)).kind == "expired"  # 15 min TTL passed too
    await close(engine)


async def test_daily_cost_cap_refuses_before_any_provider_call(
    store: Store, fake: ImageFake, clock: JumpClock
) -> None:
    limits = ImageLimits(10, 50, Decimal("0.03"), Decimal(100))
    engine = make_engine(store, fake, clock, limits=limits)
    quote = await engine.quote(ask(quality="high"))  # $0.034
    refused = await engine.confirm(quote.id, AS_ALICE)
    assert refused.kind == "limit" and "$0.0300" in refused.message
    assert fake.calls == []
    await close(engine)


async def test_tenant_monthly_cap_counts_everyone(
    store: Store, fake: ImageFake, clock: JumpClock
) -> None:
    limits = ImageLimits(10, 50, Decimal(10), Decimal("0.05"))
    engine = make_engine(store, fake, clock, limits=limits)
    mine = await engine.quote(ask(quality="high"))
    theirs = await engine.quote(ask(quality="high", user=BOB))
    assert (await engine.confirm(mine.id, AS_ALICE)).kind == "generated"
    refused = await engine.confirm(theirs.id, AS_BOB)
    assert refused.kind == "limit" and "month" in refused.message
    assert len(fake.calls) == 1
    await close(engine)


async def test_prompts_are_validated(store: Store, fake: ImageFake, clock: JumpClock) -> None:
    engine = make_engine(store, fake, clock)
    surface = MemoryImageSurface()
    assert await offer_quote(engine, ask("   "), surface) is None
    assert await offer_quote(engine, ask("x" * 1001), surface) is None
    assert "empty" in surface.notices[0] and "too long" in surface.notices[1]
    assert surface.offers == [] and fake.calls == []
    await close(engine)


async def _health(engine: ImageEngine) -> dict[str, Any]:
    server = WebServer()
    register(server, engine.router)
    port = await server.start("127.0.0.1", 0)
    try:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/health-check/image-providers")
            body: dict[str, Any] = response.json()
            return body
    finally:
        await server.stop()


async def test_five_failures_open_the_breaker_and_the_next_click_falls_back(
    store: Store, fake: ImageFake, clock: JumpClock
) -> None:
    engine = make_engine(store, fake, clock)
    quotes = [await engine.quote(ask(quality="high")) for _ in range(6)]
    assert {q.provider for q in quotes} == {"openai"}
    fake.mode["openai"] = "fail"
    outcomes = [await engine.confirm(q.id, AS_ALICE) for q in quotes]
    assert len(fake.calls_to("openai")) == 5  # the sixth click did not try the open provider
    for outcome in outcomes:
        assert outcome.kind == "generated" and outcome.image is not None
        assert outcome.image.fallback_used and outcome.image.provider == "replicate"
        assert any("fallback used" in badge for badge in outcome.image.badges)
        assert outcome.job is not None and outcome.job.fallback_from == "openai"
    assert fake.calls_to("google") == []  # Imagen ($0.04) is dearer than the $0.034 clicked
    health = await _health(engine)
    openai = health["providers"]["openai"]
    assert openai["circuitBreakerState"] == "OPEN" and openai["available"] is False
    assert openai["reason"] == "circuit breaker open"
    assert health["summary"] == {"total": 5, "available": 4, "unavailable": 1}
    await close(engine)


async def test_after_the_timeout_one_probe_goes_through_while_others_fall_back(
    store: Store, fake: ImageFake, clock: JumpClock
) -> None:
    engine = make_engine(store, fake, clock)
    quotes = [await engine.quote(ask(quality="high")) for _ in range(5)]
    fake.mode["openai"] = "fail"
    for q in quotes:
        await engine.confirm(q.id, AS_ALICE)
    clock.advance(601)  # the breaker's timeout: half-open
    fake.mode["openai"] = "slow"
    racing = [await engine.quote(ask(quality="high")) for _ in range(4)]
    assert {q.provider for q in racing} == {"openai"}  # half-open counts as available
    before = len(fake.calls_to("openai"))
    probe = asyncio.create_task(engine.confirm(racing[0].id, AS_ALICE))
    await fake.arrived("openai")
    others = await asyncio.gather(*(engine.confirm(q.id, AS_ALICE) for q in racing[1:]))
    assert len(fake.calls_to("openai")) == before + 1
    assert all(o.image is not None and o.image.fallback_used for o in others)
    fake.release("openai")
    result = await probe
    assert result.kind == "generated" and result.image is not None
    assert not result.image.fallback_used
    assert (await engine.router.availability("openai")).breaker.value == "CLOSED"
    await close(engine)


async def test_a_dearer_fallback_asks_again(
    store: Store, fake: ImageFake, clock: JumpClock
) -> None:
    engine = make_engine(store, fake, clock, only=("openai", "google"))
    surface = MemoryImageSurface()
    quote = await engine.quote(ask(quality="high"))
    assert quote.provider == "openai"
    fake.mode["openai"] = "fail"
    outcome = await handle_click(engine, f"img:c:{quote.id}", AS_ALICE, surface)
    assert outcome is not None and outcome.kind == "reconfirm"
    assert fake.calls_to("google") == []  # never called without a new confirmation
    assert outcome.quote is not None and outcome.quote.estimate == Decimal("0.04")
    assert surface.offers[-1].buttons[0].label == "Generate for $0.0400"
    assert outcome.job is not None and outcome.job.status == "superseded"
    again = await engine.confirm(outcome.quote.id, AS_ALICE)
    assert again.kind == "generated" and again.image is not None
    assert again.image.provider == "google" and not again.image.fallback_used
    await close(engine)


async def test_restart_between_click_and_delivery_is_unknown_and_not_retried(
    store: Store, db_url: str, fake: ImageFake, clock: JumpClock
) -> None:
    engine = make_engine(store, fake, clock)
    quote = await engine.quote(ask(quality="high"))
    fake.mode["openai"] = "slow"
    click = asyncio.create_task(engine.confirm(quote.id, AS_ALICE))
    await fake.arrived("openai")
    click.cancel()  # the process dies mid-generation
    await asyncio.gather(click, return_exceptions=True)
    await close(engine)
    restarted_store = await Store.open(db_url, clock=clock)
    restarted = make_engine(restarted_store, fake, clock)
    assert await restarted.recover() == []  # the lease still runs: maybe another replica's job
    clock.advance(restarted.job_timeout + 61)
    (lost,) = await restarted.recover()
    assert lost.id == quote.id and lost.status == "unknown"
    fake.mode["openai"] = "ok"
    again = await restarted.confirm(quote.id, AS_ALICE)
    assert again.kind == "already" and "unknown" in again.message
    assert len(fake.calls_to("openai")) == 1
    await close(restarted)
    await restarted_store.close()


async def test_an_unknown_outcome_is_never_retried_elsewhere(
    store: Store, fake: ImageFake, clock: JumpClock
) -> None:
    engine = make_engine(store, fake, clock)
    quote = await engine.quote(ask(quality="high"))
    fake.mode["openai"] = "drop"
    outcome = await engine.confirm(quote.id, AS_ALICE)
    assert outcome.kind == "unknown" and "may have been charged" in outcome.message
    assert [c.provider for c in fake.calls] == ["openai"]
    assert outcome.job is not None and outcome.job.status == "unknown"
    await close(engine)


async def test_a_refused_prompt_is_not_sent_elsewhere_and_does_not_trip_the_breaker(
    store: Store, fake: ImageFake, clock: JumpClock
) -> None:
    engine = make_engine(store, fake, clock)
    fake.mode["openai"] = "policy"
    for _ in range(6):
        quote = await engine.quote(ask(quality="high"))
        outcome = await engine.confirm(quote.id, AS_ALICE)
        assert outcome.kind == "refused"
    assert [c.provider for c in fake.calls] == ["openai"] * 6
    assert (await engine.router.availability("openai")).available
    await close(engine)


async def test_quota_opens_the_breaker_at_once(
    store: Store, fake: ImageFake, clock: JumpClock
) -> None:
    engine = make_engine(store, fake, clock)
    fake.mode["openai"] = "quota"
    quote = await engine.quote(ask(quality="high"))
    assert (await engine.confirm(quote.id, AS_ALICE)).kind == "generated"  # fell back
    status = await engine.router.availability("openai")
    assert not status.available and status.breaker.value == "OPEN"
    await close(engine)


async def test_disabled_and_unconfigured_providers_are_not_offered(
    store: Store, fake: ImageFake, clock: JumpClock
) -> None:
    engine = make_engine(store, fake, clock, only=("together", "openai"), disabled=("openai",))
    quote = await engine.quote(ask(quality="high"))
    assert quote.provider == "together"
    health = await _health(engine)
    providers = health["providers"]
    assert providers["openai"]["reason"] == "disabled by ENABLE_IMAGE_GENERATION_OPENAI=false"
    assert providers["google"]["available"] is False
    await close(engine)


async def test_an_alternative_can_be_picked_at_its_price(
    store: Store, fake: ImageFake, clock: JumpClock
) -> None:
    engine = make_engine(store, fake, clock)
    quote = await engine.quote(ask(quality="high"))
    index = next(i for i, a in enumerate(quote.alternatives) if a.provider == "together")
    outcome = await engine.confirm(quote.id, AS_ALICE, choice=index)
    assert outcome.kind == "generated" and outcome.image is not None
    assert outcome.image.provider == "together" and not outcome.image.fallback_used
    assert outcome.job is not None and outcome.job.confirmed_estimate == Decimal("0.0154")
    await close(engine)


async def test_the_tool_call_quotes_and_never_charges(
    store: Store, fake: ImageFake, clock: JumpClock
) -> None:
    engine = make_engine(store, fake, clock)
    assert GENERATE_IMAGE_TOOL["function"]["name"] == "generate_image"  # type: ignore[index]
    quote = await quote_from_tool_call(engine, KEY, ALICE, {"prompt": "a quick sketch of a cat"})
    assert quote.status == "quoted" and quote.tier == "fast"
    assert fake.calls == []
    await close(engine)


async def test_recent_lists_generations_and_regenerate_quotes_again(
    store: Store, fake: ImageFake, clock: JumpClock
) -> None:
    engine = make_engine(store, fake, clock)
    surface = MemoryImageSurface()
    quote = await engine.quote(ask("a red fox in snow"))
    await handle_click(engine, f"img:c:{quote.id}", AS_ALICE, surface)
    await engine.quote(ask("never confirmed"))
    jobs = await engine.recent(KEY, ALICE)
    assert [j.prompt for j in jobs] == ["a red fox in snow"]
    text = history_text(jobs)
    assert "a red fox in snow" in text and "2026-03-10" in text and "together" in text
    regenerate = surface.uploads[0].buttons[0].custom_id
    await handle_click(engine, regenerate, AS_BOB, surface)  # not the requester: no quote
    assert surface.offers == []
    assert surface.notices[-1] == "Only the person who asked for this image can regenerate it."
    await handle_click(engine, regenerate, AS_ALICE, surface)
    (again,) = surface.offers
    assert again.quote_id != quote.id  # a new quote, nothing generated yet
    renewed = await ImageStore(store).get(again.quote_id)
    assert renewed is not None and (renewed.tenant_id, renewed.user_id) == ("discord:g1", ALICE)
    assert (renewed.channel_id, renewed.thread_id, renewed.prompt) == ("c1", "t1", quote.prompt)
    assert len(fake.calls) == 1
    await close(engine)
