from __future__ import annotations

from decimal import Decimal

import pytest

from bot.catalog import Catalog, UnknownModel, UnpricedModel
from bot.llm.types import Usage


def test_shipped_catalog_has_the_required_models_with_sourced_prices() -> None:
    catalog = Catalog.load()
    ids = {(e.provider, e.model_id) for e in catalog}
    assert ("workers-ai", "@cf/meta/llama-3.1-8b-instruct-fp8-fast") in ids
    assert ("workers-ai", "@cf/meta/llama-3.3-70b-instruct-fp8-fast") in ids
    assert ("workers-ai", "@cf/mistral/mistral-7b-instruct-v0.1") in ids
    assert any(p == "openai" for p, _ in ids)
    assert any(p == "anthropic" for p, _ in ids)
    # Served, named by the design notes, but without a price on the provider's pricing page:
    # shipped unpriced (so not choosable on a chat platform without ALLOW_UNPRICED_MODELS).
    unpriced = {"llama-3.1-8b-instruct-fast", "mistral-7b-v0.2", "qwen1.5-14b"}
    for entry in catalog:
        assert (entry.price is None) == (entry.name in unpriced), entry.name
        assert entry.price is None or entry.price.source.startswith("https://")
        assert entry.default_max_tokens <= entry.max_output_tokens < entry.context_window
    for name in unpriced:
        with pytest.raises(UnpricedModel):
            catalog.choose(name, platform="discord")
        assert catalog.choose(name, platform="cli").name == name


def test_names_aliases_and_raw_ids_resolve() -> None:
    catalog = Catalog.load()
    assert catalog.resolve("llama").name == "llama-3.1-8b"
    assert catalog.resolve("LLAMA-3.3-70B").name == "llama-3.3-70b"
    raw = catalog.resolve("openai:gpt-5-nano")
    assert (raw.provider, raw.model_id, raw.price) == ("openai", "gpt-5-nano", None)
    known = catalog.resolve("workers-ai:@cf/meta/llama-3.1-8b-instruct-fp8-fast")
    assert known.name == "llama-3.1-8b"  # a raw id the catalog knows keeps its price


def test_unknown_names_and_providers_are_refused_clearly() -> None:
    catalog = Catalog.load()
    with pytest.raises(UnknownModel, match="unknown model 'gpt-99'"):
        catalog.resolve("gpt-99")
    with pytest.raises(UnknownModel, match="unknown provider 'nope'"):
        catalog.resolve("nope:model")


def test_overrides_replace_by_name_and_add_models() -> None:
    catalog = Catalog.load(
        [
            {"name": "llama-3.1-8b", "default_max_tokens": 2048},
            {
                "name": "local",
                "provider": "ollama",
                "model_id": "llama3.2",
                "context_window": 8192,
                "default_max_tokens": 512,
                "max_output_tokens": 2048,
            },
        ]
    )
    assert catalog.resolve("llama-3.1-8b").default_max_tokens == 2048
    assert catalog.resolve("llama-3.1-8b").model_id.endswith("fp8-fast")
    assert catalog.resolve("local").provider == "ollama"


def test_a_malformed_override_names_the_model_and_field() -> None:
    with pytest.raises(UnknownModel, match=r"'x'.*context_window"):
        Catalog.load(
            [
                {
                    "name": "x",
                    "provider": "openai",
                    "model_id": "m",
                    "context_window": -1,
                    "default_max_tokens": 1,
                    "max_output_tokens": 2,
                }
            ]
        )


def test_fallback_chain_is_ordered_and_without_repeats() -> None:
    catalog = Catalog.load()
    chain = catalog.chain(catalog.resolve("llama-3.1-8b"))
    assert [e.name for e in chain] == ["llama-3.1-8b", "gpt-4o-mini", "claude-haiku-4-5"]


def test_cost_is_exact_decimal_per_million_tokens() -> None:
    entry = Catalog.load().resolve("llama-3.1-8b")
    assert entry.cost(Usage(1_000_000, 1_000_000)) == Decimal("0.429")
    assert entry.cost(Usage(100, 50)) == Decimal("0.0000237")
    assert entry.cost(Usage(None, 50)) is None


def test_users_on_chat_platforms_may_not_choose_a_model_without_a_price() -> None:
    override = {
        "name": "house-model",
        "provider": "openai-compat",
        "model_id": "house",
        "context_window": 8192,
        "default_max_tokens": 512,
        "max_output_tokens": 1024,
    }
    catalog = Catalog.load([override])
    for spec in ("workers-ai:@cf/some/raw-model", "house-model"):
        for platform in ("discord", "slack"):
            with pytest.raises(UnpricedModel, match="ALLOW_UNPRICED_MODELS=true"):
                catalog.choose(spec, platform=platform)
        assert catalog.choose(spec, platform="console").price is None  # the operator's tool
    assert catalog.choose("gpt-4o-mini", platform="slack").price is not None
    # A raw id the catalog knows keeps its price, so it may be chosen.
    raw_known = "workers-ai:@cf/meta/llama-3.1-8b-instruct-fp8-fast"
    assert catalog.choose(raw_known, platform="discord").name == "llama-3.1-8b"
    with pytest.raises(UnknownModel, match="unknown model"):  # not unpriced: unknown
        catalog.choose("no-such-model", platform="slack")

    allowing = Catalog.load([override], allow_unpriced=True)
    assert allowing.choose("house-model", platform="slack").name == "house-model"


def test_the_readme_lists_every_shipped_chat_and_image_model() -> None:
    from pathlib import Path

    from bot.images.catalog import ImageCatalog

    readme = (Path(__file__).parents[3] / "README.md").read_text("utf-8")
    names = [*Catalog.load().names(), *ImageCatalog.load().models]
    assert [name for name in names if f"| `{name}` |" not in readme] == []
