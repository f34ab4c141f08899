"""`make bench`: run every component benchmark and print one markdown table.

Each ``tests/bench/bench_*.py`` module exposes ``run() -> list[tuple[str, str]]`` (a row name and a
formatted result). Targets live here, in benchmarks, never in timed unit tests.
"""

from __future__ import annotations

import datetime
import importlib
import os
import pkgutil
import platform
import sys
from pathlib import Path


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def main() -> int:
    package_dir = Path(__file__).parent
    names = sorted(
        m.name for m in pkgutil.iter_modules([str(package_dir)]) if m.name.startswith("bench_")
    )
    only = set(sys.argv[1:])
    rows: list[tuple[str, str, str]] = []
    for name in names:
        component = name.removeprefix("bench_")
        if only and component not in only:
            continue
        module = importlib.import_module(f"tests.bench.{name}")
        print(f"running {name} ...", file=sys.stderr, flush=True)
        for row_name, result in module.run():
            rows.append((component, row_name, result))
    today = datetime.date.today().isoformat()
    print(f"Measured {today} on {_machine()}.\n")
    print("| component | benchmark | result |")
    print("|---|---|---|")
    for component, row_name, result in rows:
        print(f"| {component} | {row_name} | {result} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
