"""Benchmark study-table-100k: the study table of a task with 100,000 Done runs.

    .venv/bin/python bench/study_table.py [--runs 100000] [--repeat 5]

Starts a fresh ``runyard server`` (SQLite, temporary data directory, no worker) and fills a
workflow with ``--runs`` runs as bench/ui.py does (the task ``Found`` has a Done job with an
Int output in each), then times ``GET /api/workflows/NAME/study-table?task=Found``, as JSON
and as CSV (over HTTP, the whole answer read), ``--repeat`` times each, and prints the
medians. The server reads the table in one statement (tests/integration/test_study_table.py
checks that); the target is under 2 s at 100,000 runs: printed, not asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time

import httpx
from _common import BenchError, Installation, installation, load_average
from ui import WORKFLOW, fill


def time_table(inst: Installation, runs: int, repeat: int, fmt: str) -> float:
    url = f"{inst.url}/api/workflows/{WORKFLOW}/study-table"
    headers = {"Authorization": f"Bearer {inst.token}"}
    times = []
    with httpx.Client(headers=headers, timeout=120) as client:
        for _ in range(repeat):
            started = time.perf_counter()
            answer = client.get(url, params={"task": "Found", "format": fmt})
            answer.raise_for_status()
            rows = len(answer.json()["rows"]) if fmt == "json" else answer.text.count("\n") - 1
            times.append(time.perf_counter() - started)
            if rows != runs:
                raise BenchError(f"{fmt}: {rows} rows, expected {runs}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with installation(up=False, worker=False) as inst:
        seconds = fill(inst, args.runs)
        print(f"filled {WORKFLOW}: {args.runs + 1} runs in {seconds:.1f} s")
        for fmt in ("json", "csv"):
            median = time_table(inst, args.runs, args.repeat, fmt)
            print(
                f"study-table-{args.runs} ({fmt}): median {median * 1000:.0f} ms "
                f"(target < 2 s); {load_average()}"
            )


if __name__ == "__main__":
    main()
