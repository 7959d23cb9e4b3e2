"""Benchmark ui-100k: the web UI's runs table with 100,000 runs x 5 tasks.

    .venv/bin/python bench/ui.py [--runs 100000] [--repeat 7] [--chromium /usr/bin/chromium]

Starts a fresh ``runyard server`` (SQLite, temporary data directory, no worker) and fills a
workflow with ``--runs`` runs through the spawn API, as bench/spawn.py does: the workflow
``Source -> Step1`` gets one run, whose Step1 job is claimed as a worker would; with that
job's token it spawns the tasks ``Found``, ``Follow`` (from Found) and ``Then`` (from
Follow), five columns in all, and ``--runs`` jobs of ``Found``, each Done in a new run with
its ``Follow`` job Queued.

Then it times, each ``--repeat`` times, and prints the medians:

- the page query: ``GET /api/workflows/NAME/runs`` for 200 runs at the top, the middle and
  the end of the table, filtered by name, filtered by job state, and sorted by name (over
  HTTP on a kept-alive connection, answer decoded);
- in Chromium (Debian's, through Playwright, a fresh browser context each time, logged in):
  the time from navigating to the runs table until its first rows are painted (measured in
  the page: ``performance.now()`` at the first animation frame that has them), and the time
  from jumping to the middle of the table until the rows there are painted.

The targets are under 50 ms for the page query and under 1 s to first paint; they are
printed, not asserted.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import BenchError, installation, load_average, write_packages

from runyard.client import Client
from runyard.task import spawn

WORKFLOW = "UiBench"
PAGE = 200
ROW_HEIGHT = 30  # px, as in runyard/web/static/js/runs.js


def fill(inst: Any, runs: int) -> float:
    """The workflow with ``runs`` spawned runs; the seconds it took."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        inst.import_packages(write_packages(Path(tmp), WORKFLOW, 1))
    inst.start_workflow(WORKFLOW)
    inst.new_run(WORKFLOW, 0)
    worker_token = inst.client.post("/api/tokens/worker", {"name": "bench"})["token"]
    with Client(inst.url, worker_token) as as_worker:
        as_worker.post("/api/workers/register", {"name": "bench", "max_jobs": 1})
        [claim] = as_worker.post("/api/workers/claim", {"worker": "bench", "max": 1})
    with Client(inst.url, claim["token"]) as as_job:
        found = spawn.spawn_task("Bench.Source", "Found", client=as_job)
        previous = "Found"
        for name in ("Follow", "Then"):
            source = {"mode": "output", "task": previous, "key": "value"}
            spawn.spawn_task(
                "Bench.Increment", name, inputs=[{"key": "value", "source": source}], client=as_job
            )
            previous = name
        items = [
            spawn.job_spec(found, outputs={"value": n}, metadata={"run_display_name": f"r{n}"})
            for n in range(runs)
        ]
        spawn.spawn_jobs(items, client=as_job)
    return time.perf_counter() - started


def time_queries(inst: Any, runs: int, repeat: int) -> dict[str, float]:
    base = f"/api/workflows/{WORKFLOW}/runs"
    queries = {
        "top (offset 0)": {"offset": 0},
        "middle": {"offset": runs // 2},
        "end": {"offset": max(0, runs + 1 - PAGE)},
        "name filter 'r777'": {"name": "r777"},
        "state filter Queued, middle": {"state": "Queued", "offset": runs // 2},
        "sorted by name, middle": {"order": "name", "offset": runs // 2},
    }
    medians = {}
    for label, params in queries.items():
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            page = inst.client.get(base, params={"limit": PAGE, **params})
            times.append(time.perf_counter() - started)
        if not page["runs"] or len(page["tasks"]) != 5:
            raise BenchError(f"{label}: unexpected answer: total {page['total']}, {page['tasks']}")
        medians[label] = statistics.median(times)
    return medians


FIRST_ROWS = """() => new Promise((resolve) => {
  const look = () => document.querySelector('.runs-row.run .cell.job')
    ? resolve(performance.now()) : requestAnimationFrame(look);
  look();
})"""

JUMP = """(rowHeight) => new Promise((resolve) => {
  const scroller = document.querySelector('.runs-scroll');
  const middle = Math.floor(scroller.scrollHeight / rowHeight / 2);
  const started = performance.now();
  scroller.scrollTop = middle * rowHeight;
  const look = () => {
    const shown = [...document.querySelectorAll('.runs-row.run')]
      .some((row) => Math.abs(Number(row.dataset.index) - middle) < 5);
    shown ? resolve(performance.now() - started) : requestAnimationFrame(look);
  };
  look();
})"""


def time_browser(inst: Any, chromium: str, repeat: int) -> tuple[float, float]:
    from playwright.sync_api import sync_playwright

    paints, jumps = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        for _ in range(repeat):
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            answer = page.request.post(inst.url + "/ui/login", data={"token": inst.token})
            if not answer.ok:
                raise BenchError(f"log in failed: {answer.status} {answer.text()}")
            page.goto(f"{inst.url}/ui/#/workflows/{WORKFLOW}", wait_until="commit")
            paints.append(page.evaluate(FIRST_ROWS) / 1000)
            jumps.append(page.evaluate(JUMP, ROW_HEIGHT) / 1000)
            context.close()
        browser.close()
    return statistics.median(paints), statistics.median(jumps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    with installation(up=False, worker=False) as inst:
        seconds = fill(inst, args.runs)
        print(f"filled {WORKFLOW}: {args.runs + 1} runs x 5 tasks in {seconds:.1f} s")
        for label, value in time_queries(inst, args.runs, args.repeat).items():
            print(f"page query ({PAGE} runs), {label}: median {value * 1000:.1f} ms")
        paint, jump = time_browser(inst, args.chromium, args.repeat)
        print(
            f"ui-{args.runs}: page query target < 50 ms; Chromium first paint of the runs table: "
            f"median {paint * 1000:.0f} ms (target < 1 s); jump to the middle: median "
            f"{jump * 1000:.0f} ms; {load_average()}"
        )


if __name__ == "__main__":
    main()
