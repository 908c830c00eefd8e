"""The image catalog: models, prices (with source and date) and quality tiers, from images.toml."""

from __future__ import annotations

import math
import tomllib
from datetime import date
from decimal import Decimal
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Tier = Literal["ultra", "high", "standard", "fast"]
TIERS: tuple[Tier, ...] = ("ultra", "high", "standard", "fast")
IMAGE_PROVIDERS = ("openai", "together", "replicate", "workers-ai", "google")
SIZES = ("1024x1024", "1536x1024", "1024x1536")


class ImageCatalogError(ValueError):
    """images.toml is inconsistent (an unknown model in a tier, a price that cannot be computed)."""


class ImagePrice(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    per_image: Decimal | None = Field(default=None, ge=0)
    per_size: dict[str, Decimal] = Field(default_factory=dict)
    per_tile: Decimal | None = Field(default=None, ge=0)
    per_step: Decimal | None = Field(default=None, ge=0)
    tile: int = Field(default=512, gt=0)
    source: str
    as_of: date


class ImageModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    label: str = ""
    provider: str
    model_id: str
    sizes: tuple[str, ...] = SIZES
    default_steps: int | None = Field(default=None, gt=0)
    max_steps: int | None = Field(default=None, gt=0)
    max_prompt: int = Field(default=1000, gt=0)
    params: dict[str, Any] = Field(default_factory=dict)
    """Extra body fields sent as-is (OpenAI's `quality`)."""
    price: ImagePrice

    @model_validator(mode="after")
    def _consistent(self) -> ImageModel:
        if self.provider not in IMAGE_PROVIDERS:
            raise ValueError(f"unknown image provider {self.provider!r}")
        unknown = [s for s in self.sizes if s not in SIZES]
        if unknown or not self.sizes:
            raise ValueError(f"sizes must be some of {', '.join(SIZES)}")
        for size in self.sizes:
            self.estimate(size)  # every size has a price
        return self

    @property
    def display(self) -> str:
        return self.label or self.name

    @property
    def default_size(self) -> str:
        return self.sizes[0]

    def steps(self, requested: int | None) -> int | None:
        """The step count sent: the request's, capped at the model's maximum, else the default."""
        if requested is None:
            return self.default_steps
        if self.max_steps is not None:
            return max(1, min(requested, self.max_steps))
        return max(1, requested)

    def estimate(self, size: str, steps: int | None = None) -> Decimal:
        """Dollars for one image of `size` (exact for the formula prices)."""
        p = self.price
        if size in p.per_size:
            return p.per_size[size]
        if p.per_image is not None:
            return p.per_image
        if p.per_tile is not None or p.per_step is not None:
            width, height = (int(n) for n in size.split("x"))
            tiles = math.ceil(width / p.tile) * math.ceil(height / p.tile)
            used = self.steps(steps) or 1
            return tiles * (p.per_tile or Decimal(0)) + used * (p.per_step or Decimal(0))
        raise ValueError(f"no price for size {size}")


class ImageCatalog:
    def __init__(
        self,
        models: list[ImageModel],
        tiers: dict[str, list[str]],
        keywords: dict[str, list[str]],
        *,
        tier_order: list[str],
        default_tier: str,
    ) -> None:
        self.models = {m.name: m for m in models}
        for tier, names in tiers.items():
            if tier not in TIERS:
                raise ImageCatalogError(f"unknown tier {tier!r}")
            for name in names:
                if name not in self.models:
                    raise ImageCatalogError(f"tier {tier!r} names unknown image model {name!r}")
        self.tiers: dict[Tier, tuple[ImageModel, ...]] = {
            t: tuple(self.models[n] for n in tiers.get(t, [])) for t in TIERS
        }
        self.keywords: dict[Tier, tuple[str, ...]] = {
            t: tuple(k.lower() for k in keywords.get(t, [])) for t in TIERS
        }
        self.tier_order: tuple[Tier, ...] = tuple(_tier(t) for t in tier_order)
        self.default_tier: Tier = _tier(default_tier)

    @classmethod
    def load(cls) -> ImageCatalog:
        text = resources.files("bot.catalog").joinpath("images.toml").read_text("utf-8")
        return cls.from_toml(text)

    @classmethod
    def from_toml(cls, text: str) -> ImageCatalog:
        raw = tomllib.loads(text)
        models = []
        for item in raw.get("image_models", []):
            try:
                models.append(ImageModel.model_validate(item))
            except ValidationError as exc:
                error = exc.errors()[0]
                where = ".".join(str(part) for part in error["loc"]) or "entry"
                name = item.get("name", "?")
                raise ImageCatalogError(f"image model {name!r}: {where}: {error['msg']}") from None
        return cls(
            models,
            raw.get("tiers", {}),
            raw.get("keywords", {}),
            tier_order=raw.get("tier_order", list(TIERS)),
            default_tier=raw.get("default_tier", "standard"),
        )

    def get(self, name: str) -> ImageModel | None:
        return self.models.get(name)

    def tiers_of(self, model: ImageModel) -> list[Tier]:
        return [t for t in TIERS if model in self.tiers[t]]


def _tier(name: str) -> Tier:
    for tier in TIERS:
        if tier == name:
            return tier
    raise ImageCatalogError(f"unknown tier {name!r}")
