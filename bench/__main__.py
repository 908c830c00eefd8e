"""`python -m bench [all|parse|persist|search|startup|stream|delay|replicas|smoke]`: run benchmarks.

Benchmarks, not tests: they need a quiet machine, take minutes, and report medians, percentiles and
ratios against each issue-7 target. Results and the machine they ran on go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from bench import delay, parse, persist, replicas, search, startup, stream
from bench.common import machine

SUITES = {
    "parse": parse.main,
    "persist": persist.main,
    "search": search.main,
    "startup": startup.main,
    "stream": stream.main,
    "delay": delay.main,
    "replicas": replicas.main,
}
EXTRA = {"smoke": stream.smoke}  # not part of "all": the CI correctness check


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("suite", nargs="?", default="all", choices=["all", *SUITES, *EXTRA])
    args = parser.parse_args()
    print(f"machine: {machine()}")
    names = list(SUITES) if args.suite == "all" else [args.suite]
    ok = True
    for name in names:
        ok &= asyncio.run({**SUITES, **EXTRA}[name]())
    print("all targets met" if ok else "some targets MISSED (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
