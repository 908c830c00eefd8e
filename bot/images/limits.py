"""Per-user and per-tenant image caps: counts an hour and a day, spend a day, a tenant's month."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from bot.config import Settings
from bot.images.views import format_usd
from bot.store import ImageUsage


@dataclass(frozen=True, slots=True)
class ImageLimits:
    per_hour: int = 10
    per_day: int = 50
    daily_cost: Decimal = Decimal("10.00")
    tenant_monthly_cost: Decimal = Decimal("100.00")

    @classmethod
    def from_settings(cls, settings: Settings) -> ImageLimits:
        return cls(
            settings.images_per_hour,
            settings.images_per_day,
            settings.daily_cost_limit_usd,
            settings.tenant_monthly_image_cost_limit_usd,
        )

    def check(self, usage: ImageUsage, price: Decimal) -> str | None:
        """A refusal when one more image at `price` would break a limit, else None."""
        if usage.hour_count >= self.per_hour:
            return (
                f"You have made {usage.hour_count} images in the last hour (limit {self.per_hour})."
            )
        if usage.day_count >= self.per_day:
            return (
                f"You have made {usage.day_count} images in the last 24 hours "
                f"(limit {self.per_day})."
            )
        if usage.day_cost + price > self.daily_cost:
            return (
                f"This image ({format_usd(price)}) would take your spending in the last 24 hours "
                f"past the {format_usd(self.daily_cost)} limit."
            )
        if usage.tenant_month_cost + price > self.tenant_monthly_cost:
            return "This workspace has reached its image budget for the month."
        return None
