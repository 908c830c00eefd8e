"""Environment variables that point a `python -m bot` subprocess's image providers at ImageFake."""

from __future__ import annotations

from tests.fakes.images.server import ACCOUNT, PROVIDERS, ImageFake


def image_env(fake: ImageFake, only: tuple[str, ...] = PROVIDERS) -> dict[str, str]:
    """Keys and base URLs for the providers in `only`; the others stay unconfigured."""
    k, b = fake.keys, fake.base
    every = {
        "openai": {"OPENAI_API_KEY": k["openai"], "OPENAI_BASE_URL": b("openai")},
        "together": {"TOGETHER_API_KEY": k["together"], "TOGETHER_BASE_URL": b("together")},
        "replicate": {
            "REPLICATE_API_TOKEN": k["replicate"],
            "REPLICATE_BASE_URL": b("replicate"),
        },
        "workers-ai": {
            "CLOUDFLARE_ACCOUNT_ID": ACCOUNT,
            "CLOUDFLARE_API_TOKEN": k["workers-ai"],
            "CLOUDFLARE_API_BASE_URL": b("workers-ai"),
        },
        "google": {"GOOGLE_API_KEY": k["google"], "GOOGLE_BASE_URL": b("google")},
    }
    env: dict[str, str] = {}
    for name in only:
        env |= every[name]
    return env
