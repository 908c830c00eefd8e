"""Each image provider against the HTTP fake: wire format, bytes, errors, secrets."""

from __future__ import annotations

import pytest

from bot.images.providers.base import ContentRefused, ImageCall, UnknownOutcome, sniff
from bot.images.providers.workers_ai import WorkersAIImages
from bot.llm.types import ConfigError, QuotaError, TransientError
from tests.fakes.images.server import ACCOUNT, JPEG, PNG, ImageFake
from tests.fakes.images.support import JumpClock, providers_for

CALL = ImageCall(model_id="m", prompt="a red fox", size="1536x1024", seed=7, steps=4)


def call(model_id: str, **kw: object) -> ImageCall:
    fields = {"model_id": model_id, "prompt": "a red fox", "size": "1024x1024", **kw}
    return ImageCall(**fields)  # type: ignore[arg-type]


async def test_openai_decodes_b64_json(fake: ImageFake, clock: JumpClock) -> None:
    provider = providers_for(fake, clock)["openai"]
    result = await provider.generate(call("gpt-image-1.5", params={"quality": "medium"}))
    assert result.data == PNG and result.extension == "png"
    body = fake.calls[-1].body
    assert body["model"] == "gpt-image-1.5" and body["quality"] == "medium" and body["n"] == 1
    await provider.aclose()


async def test_together_asks_for_base64_not_b64_json(fake: ImageFake, clock: JumpClock) -> None:
    provider = providers_for(fake, clock)["together"]
    result = await provider.generate(CALL)
    assert result.data == PNG
    body = fake.calls[-1].body
    assert body["response_format"] == "base64"
    assert (body["width"], body["height"], body["steps"], body["seed"]) == (1536, 1024, 4, 7)
    await provider.aclose()


async def test_replicate_polls_then_downloads_without_the_token(
    fake: ImageFake, clock: JumpClock
) -> None:
    fake.mode["replicate"] = "async"
    fake.replicate_polls = 3
    provider = providers_for(fake, clock)["replicate"]
    result = await provider.generate(call("black-forest-labs/flux-dev"))
    assert result.data == PNG
    create, *polls = fake.calls_to("replicate")
    assert create.headers["prefer"] == "wait=60"
    assert create.path == "/replicate/v1/models/black-forest-labs/flux-dev/predictions"
    assert create.body["input"]["aspect_ratio"] == "1:1"
    assert [c.method for c in polls] == ["GET"] * 3
    (download,) = fake.calls_to("replicate-delivery")
    assert "authorization" not in download.headers
    assert clock.now() == 3.0  # polled on the virtual clock, no real sleeping
    await provider.aclose()


async def test_replicate_loss_after_creation_is_unknown(fake: ImageFake, clock: JumpClock) -> None:
    fake.mode["replicate"] = "async"
    fake.replicate_polls = 10**6
    provider = providers_for(fake, clock)["replicate"]
    with pytest.raises(UnknownOutcome):
        await provider.generate(call("black-forest-labs/flux-dev"))
    assert fake.calls_to("replicate")[-1].path.endswith("/cancel")
    await provider.aclose()


async def test_workers_ai_sdxl_raw_png_and_flux_json_jpeg(
    fake: ImageFake, clock: JumpClock
) -> None:
    provider = providers_for(fake, clock)["workers-ai"]
    sdxl = await provider.generate(call("@cf/bytedance/stable-diffusion-xl-lightning", steps=20))
    assert (sdxl.data, sdxl.mime, sdxl.extension) == (PNG, "image/png", "png")
    assert fake.calls[-1].body["num_steps"] == 20
    flux = await provider.generate(call("@cf/black-forest-labs/flux-1-schnell", steps=4))
    assert (flux.data, flux.mime, flux.extension) == (JPEG, "image/jpeg", "jpg")
    assert fake.calls[-1].body == {"prompt": "a red fox", "steps": 4}  # no width/height
    assert fake.calls[-1].path.startswith(f"/cf/client/v4/accounts/{ACCOUNT}/ai/run/@cf/")
    await provider.aclose()


async def test_workers_ai_flux_2_klein_sends_a_multipart_form(
    fake: ImageFake, clock: JumpClock
) -> None:
    provider = providers_for(fake, clock)["workers-ai"]
    klein = "@cf/black-forest-labs/flux-2-klein-9b"
    result = await provider.generate(call(klein, size="1536x1024", seed=7))
    assert (result.data, result.extension) == (PNG, "png")
    sent = fake.calls[-1]
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert sent.body == {"prompt": "a red fox", "width": "1536", "height": "1024", "seed": "7"}
    assert sent.path.endswith("/ai/run/@cf/black-forest-labs/flux-2-klein-9b")
    await provider.aclose()


async def test_the_fake_refuses_json_for_flux_2_as_workers_ai_does(fake: ImageFake) -> None:
    import httpx

    url = f"{fake.url}/cf/client/v4/accounts/{ACCOUNT}/ai/run/@cf/black-forest-labs/flux-2-klein-9b"
    headers = {"Authorization": f"Bearer {fake.keys['workers-ai']}"}
    async with httpx.AsyncClient() as client:
        as_json = await client.post(url, json={"prompt": "a fox"}, headers=headers)
        too_wide = await client.post(
            url, files={"prompt": (None, "a fox"), "width": (None, "4096")}, headers=headers
        )
    assert as_json.status_code == 400 and as_json.json()["errors"][0]["code"] == 5006
    assert too_wide.status_code == 400 and "width" in too_wide.text


async def test_workers_ai_sdxl_base_sends_its_fields_and_reads_raw_png(
    fake: ImageFake, clock: JumpClock
) -> None:
    provider = providers_for(fake, clock)["workers-ai"]
    sdxl = "@cf/stabilityai/stable-diffusion-xl-base-1.0"
    result = await provider.generate(
        call(sdxl, negative="blurry", seed=3, steps=20, params={"guidance": 7.5})
    )
    assert (result.data, result.mime) == (PNG, "image/png")
    assert fake.calls[-1].body == {
        "prompt": "a red fox",
        "guidance": 7.5,
        "width": 1024,
        "height": 1024,
        "num_steps": 20,
        "negative_prompt": "blurry",
        "seed": 3,
    }
    await provider.aclose()


async def test_imagen_reads_predictions(fake: ImageFake, clock: JumpClock) -> None:
    provider = providers_for(fake, clock)["google"]
    result = await provider.generate(CALL)
    assert result.data == PNG
    assert fake.calls[-1].path == "/google/v1beta/models/m:predict"
    assert fake.calls[-1].body["parameters"]["aspectRatio"] == "4:3"
    await provider.aclose()


def test_magic_bytes_name_the_file() -> None:
    assert sniff(PNG) == ("image/png", "png")
    assert sniff(JPEG) == ("image/jpeg", "jpg")
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == ("image/webp", "webp")
    assert sniff(b"<html>oops</html>") is None


@pytest.mark.parametrize(
    ("mode", "error"),
    [("fail", TransientError), ("quota", QuotaError), ("auth", ConfigError),
     ("policy", ContentRefused), ("drop", UnknownOutcome)],
)  # fmt: skip
async def test_failures_map_to_the_taxonomy(
    fake: ImageFake, clock: JumpClock, mode: str, error: type[Exception]
) -> None:
    fake.mode["openai"] = mode
    provider = providers_for(fake, clock)["openai"]
    with pytest.raises(error):
        await provider.generate(call("gpt-image-1.5"))
    await provider.aclose()


async def test_workers_ai_daily_quota_is_a_quota_error(fake: ImageFake, clock: JumpClock) -> None:
    fake.mode["workers-ai"] = "quota"
    provider = providers_for(fake, clock)["workers-ai"]
    with pytest.raises(QuotaError) as info:
        await provider.generate(call("@cf/black-forest-labs/flux-1-schnell"))
    assert info.value.reset_at is not None
    await provider.aclose()


@pytest.mark.parametrize("name", ["openai", "together", "replicate", "workers-ai", "google"])
async def test_keys_never_appear_in_error_text(
    fake: ImageFake, clock: JumpClock, name: str
) -> None:
    fake.mode[name] = "auth"
    fake.echo_key_in_errors = True
    provider = providers_for(fake, clock)[name]
    with pytest.raises(ConfigError) as info:
        await provider.generate(call("owner/model"))
    assert fake.keys[name] not in str(info.value)
    assert fake.keys[name] not in repr(info.value.args)
    await provider.aclose()


async def test_a_reply_that_is_not_an_image_is_a_failure(clock: JumpClock) -> None:
    from aiohttp import web

    async def html(_request: web.Request) -> web.Response:
        return web.Response(body=b"<html>", content_type="image/png")  # lies about its type

    app = web.Application()
    app.router.add_post("/client/v4/accounts/a/ai/run/{model:.*}", html)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    provider = WorkersAIImages("a", "tok-12345", api_base_url=f"http://127.0.0.1:{port}/client/v4")
    with pytest.raises(TransientError, match="not an image"):
        await provider.generate(call("@cf/bytedance/stable-diffusion-xl-lightning"))
    await provider.aclose()
    await runner.cleanup()
