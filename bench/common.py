"""Shared helpers: repeat, summarise (medians and percentiles), print a table row."""

from __future__ import annotations

import platform
import statistics
import sys
from collections.abc import Sequence


def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def machine() -> str:
    import os

    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]},"
        f" {platform.system()} {platform.release()}"
    )


def row(name: str, value: str, target: str = "", verdict: str = "") -> None:
    print(f"  {name:<52} {value:>18}  {target:<16} {verdict}", flush=True)


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"
