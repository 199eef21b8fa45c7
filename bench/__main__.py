"""Run the benchmarks: ``python -m bench [name ...]`` (all when no name is given).

Each benchmark writes ``bench/results/<name>.json``. Size: ``BENCH_PAPERS`` (default
1,000,000) papers for the store benchmark; smaller values give a quick run.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import time
from pathlib import Path

# name -> "module:function"; the function is async, takes no argument and returns a
# JSON-serialisable dict. Add new benchmarks here.
BENCHMARKS: dict[str, str] = {
    "store": "bench.bench_store:run",
    "relevance": "bench.bench_relevance:run",
    "slack": "bench.bench_slack:run",
    "watches": "bench.bench_watches:run",
    "fanout": "bench.bench_fanout:run",
    "outbox": "bench.bench_outbox:run",
}

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
        return 2
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    for name in names:
        module_name, _, function_name = BENCHMARKS[name].partition(":")
        function = getattr(importlib.import_module(module_name), function_name)
        started = time.perf_counter()
        result = asyncio.run(function())
        result.setdefault("benchmark", name)
        result.setdefault("wall_seconds", round(time.perf_counter() - started, 1))
        path = RESULTS_DIR / f"{name}.json"
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"{name}: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
