"""The model catalog: which models exist, where they run, what they cost. Data lives in TOML."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bot.errors import NotAllowed, UserError
from bot.llm.types import Usage

PROVIDERS = (
    "workers-ai",
    "openai",
    "anthropic",
    "together",
    "groq",
    "openrouter",
    "gemini",
    "xai",
    "ollama",
    "openai-compat",
)
"""Every chat provider name a model may name (bot/llm/registry.py builds them from settings)."""

_MTOK = Decimal(1_000_000)


class UnknownModel(UserError, LookupError):
    """A model name or `provider:model-id` that the catalog cannot resolve."""

    code = "unknown_model"


class UnpricedModel(UnknownModel):
    """A model without a price, named where users may not choose one (ALLOW_UNPRICED_MODELS)."""


class ModelNotAllowed(NotAllowed):
    """Setting a model there needs an admin (or the conversation's owner: ChatEngine.set_model);
    the message says so."""


OPERATOR_PLATFORMS = frozenset({"console", "cli"})
"""The operator's own tools (the console, `python -m bot ask`): any model, priced or not."""


class ModelPrice(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    input_per_mtok: Decimal = Field(ge=0)
    output_per_mtok: Decimal = Field(ge=0)
    source: str
    as_of: date


class Capabilities(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    streaming: bool = True
    tools: bool = False
    vision: bool = False
    reasoning: bool = False
    """The model thinks before it answers (shown as "thinking…", never as the answer)."""


class ModelEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    label: str = ""
    provider: str
    model_id: str
    context_window: int = Field(gt=0)
    default_max_tokens: int = Field(gt=0)
    max_output_tokens: int = Field(gt=0)
    aliases: tuple[str, ...] = ()
    fallbacks: tuple[str, ...] = ()
    capabilities: Capabilities = Capabilities()
    thinks_inline: bool = False
    """It writes its reasoning as `<think>…</think>` in the text, often without the opening tag
    (DeepSeek R1 distills, QwQ): the reply starts inside that block."""
    price: ModelPrice | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ModelEntry:
        if self.provider not in PROVIDERS:
            raise ValueError(f"unknown provider {self.provider!r} (known: {', '.join(PROVIDERS)})")
        if self.default_max_tokens > self.max_output_tokens:
            raise ValueError("default_max_tokens exceeds max_output_tokens")
        if self.max_output_tokens >= self.context_window:
            raise ValueError("max_output_tokens must be below context_window")
        return self

    @property
    def display(self) -> str:
        return self.label or self.name

    def cost(self, usage: Usage) -> Decimal | None:
        """Dollars for this usage, or None when the price or the counts are unknown."""
        if self.price is None or usage.prompt_tokens is None or usage.completion_tokens is None:
            return None
        return (
            Decimal(usage.prompt_tokens) * self.price.input_per_mtok
            + Decimal(usage.completion_tokens) * self.price.output_per_mtok
        ) / _MTOK


# Models named raw (`provider:model-id`) get these conservative limits and no price.
_RAW_CONTEXT = 8192
_RAW_DEFAULT_MAX = 1024
_RAW_MAX = 4096


class Catalog:
    def __init__(self, entries: Iterable[ModelEntry], *, allow_unpriced: bool = False) -> None:
        self.allow_unpriced = allow_unpriced
        """ALLOW_UNPRICED_MODELS: chat platforms' users may choose models without a price."""
        self._entries: dict[str, ModelEntry] = {}
        self._aliases: dict[str, str] = {}
        for entry in entries:
            self._entries[entry.name] = entry
        for entry in self._entries.values():
            for alias in entry.aliases:
                self._aliases.setdefault(alias, entry.name)
        for entry in self._entries.values():
            for name in entry.fallbacks:
                if ":" not in name and self._lookup(name) is None:
                    raise UnknownModel(f"model {entry.name!r} falls back to unknown {name!r}")

    @classmethod
    def load(
        cls, overrides: Iterable[Mapping[str, Any]] = (), *, allow_unpriced: bool = False
    ) -> Catalog:
        """The shipped catalog, with entries from BOT_CONFIG replacing or adding by name."""
        text = resources.files("bot.catalog").joinpath("models.toml").read_text("utf-8")
        raw: dict[str, dict[str, Any]] = {
            item["name"]: item for item in tomllib.loads(text)["models"]
        }
        for item in overrides:
            name = item.get("name")
            if not isinstance(name, str):
                raise UnknownModel("a [[models]] override has no name")
            raw[name] = {**raw.get(name, {}), **item}
        entries = []
        for name, item in raw.items():
            try:
                entries.append(ModelEntry.model_validate(item))
            except ValidationError as exc:
                error = exc.errors()[0]
                where = ".".join(str(part) for part in error["loc"]) or "entry"
                raise UnknownModel(f"catalog model {name!r}: {where}: {error['msg']}") from None
        return cls(entries, allow_unpriced=allow_unpriced)

    def __iter__(self) -> Any:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return list(self._entries)

    def _lookup(self, name: str) -> ModelEntry | None:
        key = name.strip()
        entry = self._entries.get(key) or self._entries.get(self._aliases.get(key, ""))
        if entry is None:
            lowered = key.lower()
            entry = next((e for e in self._entries.values() if e.name.lower() == lowered), None)
        return entry

    def resolve(self, spec: str) -> ModelEntry:
        """A catalog name or alias, or a raw `provider:model-id`, as a ModelEntry."""
        spec = spec.strip()
        entry = self._lookup(spec)
        if entry is not None:
            return entry
        provider, sep, model_id = spec.partition(":")
        if sep and model_id:
            if provider not in PROVIDERS:
                raise UnknownModel(
                    f"unknown provider {provider!r} in {spec!r} (known: {', '.join(PROVIDERS)})"
                )
            # A raw id that the catalog knows keeps the catalog's limits and price.
            known = next(
                (
                    e
                    for e in self._entries.values()
                    if (e.provider, e.model_id) == (provider, model_id)
                ),
                None,
            )
            if known is not None:
                return known
            return ModelEntry(
                name=spec,
                provider=provider,
                model_id=model_id,
                context_window=_RAW_CONTEXT,
                default_max_tokens=_RAW_DEFAULT_MAX,
                max_output_tokens=_RAW_MAX,
            )
        raise UnknownModel(f"unknown model {spec!r}; choose one of: {', '.join(self.names())}")

    def choose(self, spec: str, *, platform: str) -> ModelEntry:
        """A model a user names on `platform`, resolved; raises UnpricedModel for one without a
        price on a chat platform unless ALLOW_UNPRICED_MODELS (its cost could not be counted)."""
        entry = self.resolve(spec)
        if entry.price is None and not self.allow_unpriced and platform not in OPERATOR_PLATFORMS:
            raise UnpricedModel(
                f"`{entry.name}` has no price in Parley's catalog, so its cost could not be"
                " counted: it can't be chosen here unless the operator sets"
                " ALLOW_UNPRICED_MODELS=true."
            )
        return entry

    def chain(self, entry: ModelEntry) -> list[ModelEntry]:
        """The entry and its fallbacks, in order, without repeats."""
        seen: set[tuple[str, str]] = set()
        result = []
        for candidate in (entry, *(self.resolve(name) for name in entry.fallbacks)):
            key = (candidate.provider, candidate.model_id)
            if key not in seen:
                seen.add(key)
                result.append(candidate)
        return result
