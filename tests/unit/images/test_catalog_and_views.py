"""The image catalog as data, tier choice, prices as text and the button id scheme."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.images.catalog import TIERS, ImageCatalog, ImageCatalogError
from bot.images.tiers import choose_tier
from bot.images.views import custom_id, format_usd, parse_custom_id

CATALOG = ImageCatalog.load()


def test_every_tier_has_providers_and_every_price_a_source_and_date() -> None:
    for tier in TIERS:
        assert CATALOG.tiers[tier]
    for model in CATALOG.models.values():
        assert model.price.source and model.price.as_of.year >= 2026
    assert not any("dall-e" in m.model_id for m in CATALOG.models.values())  # retired


def test_workers_ai_flux_price_is_the_tile_and_step_formula() -> None:
    flux = CATALOG.models["flux-schnell-workers-ai"]
    # 4 tiles x $0.0000528 + 4 steps x $0.0001056 (providers.md §1.7)
    assert flux.estimate("1024x1024") == Decimal("0.0006336")
    assert flux.estimate("1024x1024", steps=20) == flux.estimate("1024x1024", steps=8)  # capped


@pytest.mark.parametrize(
    ("prompt", "explicit", "tier"),
    [
        ("a photorealistic portrait", None, "ultra"),
        ("concept art of a castle", None, "high"),
        ("an instant thumbnail", None, "fast"),
        ("a simple sketch", None, "standard"),
        ("a fox", None, "standard"),
        ("a photorealistic portrait", "fast", "fast"),  # the user's choice wins
        ("breakfast", None, "standard"),  # whole words only
    ],
)
def test_tier_from_keywords_unless_chosen(prompt: str, explicit: str | None, tier: str) -> None:
    assert choose_tier(prompt, CATALOG, explicit) == tier


def test_a_tier_naming_an_unknown_model_is_refused() -> None:
    with pytest.raises(ImageCatalogError, match="unknown image model"):
        ImageCatalog.from_toml('[tiers]\nfast = ["nope"]\n')


@pytest.mark.parametrize(
    ("amount", "text"),
    [("0.04", "$0.0400"), ("0.034", "$0.0340"), ("0.0006336", "$0.00064"), ("0", "$0.00"),
     ("0.133", "$0.1330"), ("1.5", "$1.5000")],
)  # fmt: skip
def test_prices_show_the_precision_they_need(amount: str, text: str) -> None:
    assert format_usd(Decimal(amount)) == text


def test_button_ids_round_trip() -> None:
    assert custom_id("confirm", "abc123") == "img:c:abc123"
    assert parse_custom_id(custom_id("alternative", "abc123", 2)) == ("alternative", "abc123", 2)
    assert parse_custom_id("img:x:abc") == ("cancel", "abc", None)
    assert parse_custom_id("img:r:job1") == ("regenerate", "job1", None)
    assert parse_custom_id("chat:stop:1") is None
    assert parse_custom_id("img:a:abc:two") is None
