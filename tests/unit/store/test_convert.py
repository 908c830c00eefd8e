"""Values at the Store's boundary: money, titles, tenant ids, URLs."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.domain import ConversationKey
from bot.store import from_nano, tenant_id_for, title_from_text, to_nano
from bot.store.convert import key_at, platform_tenant
from bot.store.engine import create_engine, normalize_url


@pytest.mark.parametrize(
    ("usd", "nano"),
    [
        ("0.000004500", 4500),
        ("0.04", 40_000_000),
        ("1", 1_000_000_000),
        ("0.0000000005", 0),  # half-even: ties go to the even neighbour
        ("0.0000000015", 2),
        ("0.0000000025", 2),
        ("0.00000000251", 3),
        ("-0.0000000015", -2),
    ],
)
def test_usd_converts_to_nano_usd_half_even(usd: str, nano: int) -> None:
    assert to_nano(Decimal(usd)) == nano


def test_nano_usd_converts_back_exactly() -> None:
    assert from_nano(4500) == Decimal("0.000004500")
    assert str(from_nano(4500)) == "0.000004500"
    assert from_nano(0) == 0
    assert from_nano(123_456_789_012) == Decimal("123.456789012")


@pytest.mark.parametrize("bad", [0.1, Decimal("NaN"), Decimal("Infinity")])
def test_non_decimal_or_non_finite_costs_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="finite Decimal"):
        to_nano(bad)  # type: ignore[arg-type]


def test_tenant_id_is_qualified_by_platform() -> None:
    assert tenant_id_for(ConversationKey("discord", "123", "c")) == "discord:123"
    assert tenant_id_for(ConversationKey("slack", "T01", "C01", "1.2")) == "slack:T01"


def test_short_titles_are_kept_and_whitespace_collapsed() -> None:
    assert title_from_text("  Bake   bread\n") == "Bake bread"
    assert title_from_text("x" * 100) == "x" * 100
    assert title_from_text("x" * 101) == "x" * 99 + "…"


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("sqlite:///parley.db", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///:memory:", "sqlite+aiosqlite"),
        ("postgres://u@h/db", "postgresql+asyncpg"),
        ("postgresql://u@h/db", "postgresql+asyncpg"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg"),
    ],
)
def test_bare_urls_get_the_async_driver(url: str, driver: str) -> None:
    assert normalize_url(url).drivername == driver


def test_a_postgresql_pool_holds_the_set_size_and_as_many_again_in_a_burst() -> None:
    pytest.importorskip("asyncpg")
    engine = create_engine("postgresql://parley@127.0.0.1:1/parley", pool_size=25)
    pool = engine.sync_engine.pool
    assert pool.size() == 25 and pool._max_overflow == 25  # type: ignore[attr-defined]


def test_a_stored_tenant_id_is_taken_apart_in_one_place() -> None:
    key = ConversationKey("slack", "T1:odd", "C1", "1.2")  # a colon inside the tenant survives
    assert tenant_id_for(key) == "slack:T1:odd"
    assert platform_tenant("slack:T1:odd") == "T1:odd"
    assert key_at("slack", tenant_id_for(key), "C1", "1.2") == key
    assert platform_tenant("discord:dm") == "dm"
    for bad in ("T1", ":T1", ""):
        with pytest.raises(ValueError, match="platform-qualified"):
            platform_tenant(bad)
