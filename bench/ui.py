"""Benchmark ui-100k: the web UI's runs table with 100,000 runs x 5 tasks.

    .venv/bin/python bench/ui.py [--runs 100000] [--repeat 7] [--chromium /usr/bin/chromium]

Starts a fresh ``runyard server`` (SQLite, temporary data directory, no worker) and fills a
workflow with ``--runs`` runs through the spawn API, as bench/spawn.py does: the workflow
``Source -> Step1`` gets one run, whose Step1 job is claimed as a worker would; with that
job's token it spawns the tasks ``Found``, ``Follow`` (from Found) and ``Then`` (from
Follow), five columns in all, and ``--runs`` jobs of ``Found``, each Done in a new run with
its ``Follow`` job Queued. A second workflow, ``UiBenchImages``, is filled the same way, but
each ``Found`` job has an ``Image`` output too: one small OMNI image (64 x 64 x 16 int16),
uploaded once through the file API, the same value in every job, so each Done cell of that
column shows a thumbnail (GET /api/jobs/{serial}/thumbnail).

Then it times, each ``--repeat`` times, and prints the medians:

- the page query: ``GET /api/workflows/NAME/runs`` for 200 runs at the top, the middle and
  the end of the table, filtered by name, filtered by job state, and sorted by name (over
  HTTP on a kept-alive connection, answer decoded);
- in Chromium (Debian's, through Playwright, a fresh browser context each time, logged in):
  the time from navigating to the runs table until its first rows are painted (measured in
  the page: ``performance.now()`` at the first animation frame that has them), and the time
  from jumping to the middle of the table until the rows there are painted;
- in Chromium, scrolling: from the middle of the table, ``SCROLL_FRAMES`` programmatic scroll
  steps of ``SCROLL_STEP`` px, one per animation frame (a fast wheel), then the same number
  of one-screen jumps; the frame times (deltas between animation frames: median and p95),
  the thumbnail requests the page made (against the runs' rows drawn, each for a moment),
  the most runs' rows in the page at once, and the JS heap used at the end
  (``performance.memory``), for the table with thumbnails and, as the baseline in the same
  process, the one without; and their ratio.

The targets are under 50 ms for the page query and under 1 s to first paint; they are
printed, not asserted.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import BenchError, installation, load_average, write_packages

from runyard.client import Client
from runyard.images import Image
from runyard.task import spawn

WORKFLOW = "UiBench"
IMAGES_WORKFLOW = "UiBenchImages"  # the same, with an Image output in every Found job
SCAN_TYPE = "Bench.Scan"  # Bench.Source with an Image output, scan
PAGE = 200
ROW_HEIGHT = 30  # px, as in runyard/web/static/js/runs.js
SCROLL_FRAMES = 300  # animation frames of each scrolling phase
SCROLL_STEP = 120  # px per frame in the first phase: four rows, a fast wheel


def stored_image(inst: Any, folder: Path) -> dict[str, Any]:
    """An ``Image`` value: a small OMNI image uploaded through the file API."""
    x, y, z = np.meshgrid(np.arange(64), np.arange(64), np.arange(16), indexing="ij")
    pixels = ((x * 7 + y * 3 + z * 50) % 2000).astype(np.int16)
    saved = Image.from_array(pixels).save(folder / "bench.omni")
    omni, raw = inst.client.upload(saved), inst.client.upload(saved.with_suffix(".raw"))
    return {
        "type": "Image",
        "source": "filestore",
        "file_id": omni["file_id"],
        "filename": saved.name,
        "raw_file_id": raw["file_id"],
        "raw_filename": "bench.raw",
        "size": [64, 64, 16],
        "data_type": "int16",
    }


def scan_type(source: Path) -> Path:
    """The package of SCAN_TYPE: Bench.Source's (the folder ``source``) with an Image output."""
    metadata = json.loads((source / "metadata.json").read_text())
    (source / "metadata.json").write_text(json.dumps(metadata | {"name": SCAN_TYPE}))
    interface = json.loads((source / "interface.json").read_text())
    interface["outputs"].append({"key": "scan", "type": "Image"})
    (source / "interface.json").write_text(json.dumps(interface))
    return source


def fill(inst: Any, runs: int, workflow: str = WORKFLOW, image: Any = None) -> float:
    """The workflow with ``runs`` spawned runs (each Found job with ``image`` as its output
    ``scan`` if given); the seconds it took."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folders = write_packages(Path(tmp), workflow, 1)
        # The task types are imported with the first workflow; the next brings its own only.
        inst.import_packages(
            folders if workflow == WORKFLOW else [scan_type(folders[0]), folders[-1]]
        )
    inst.start_workflow(workflow)
    inst.new_run(workflow, 0)
    worker = f"bench-{workflow}"
    worker_token = inst.client.post("/api/tokens/worker", {"name": worker})["token"]
    with Client(inst.url, worker_token) as as_worker:
        as_worker.post("/api/workers/register", {"name": worker, "max_jobs": 1})
        [claim] = as_worker.post("/api/workers/claim", {"worker": worker, "max": 1})
    with Client(inst.url, claim["token"]) as as_job:
        found_type = SCAN_TYPE if image else "Bench.Source"
        found = spawn.spawn_task(found_type, "Found", client=as_job)
        previous = "Found"
        for name in ("Follow", "Then"):
            source = {"mode": "output", "task": previous, "key": "value"}
            spawn.spawn_task(
                "Bench.Increment", name, inputs=[{"key": "value", "source": source}], client=as_job
            )
            previous = name
        extra = {"scan": image} if image else {}
        items = [
            spawn.job_spec(
                found, outputs={"value": n, **extra}, metadata={"run_display_name": f"r{n}"}
            )
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


SCROLL = """([frames, step]) => new Promise((resolve) => {
  const scroller = document.querySelector('.runs-scroll');
  const deltas = [];
  let rows = 0;
  const passed = new Set();
  let frame = 0;
  let last = performance.now();
  scroller.scrollTop = scroller.scrollHeight / 2;
  const tick = (now) => {
    deltas.push(now - last);
    last = now;
    const drawn = document.querySelectorAll('.runs-row.run');
    rows = Math.max(rows, drawn.length);
    for (const row of drawn) passed.add(row.dataset.index);
    frame += 1;
    if (frame > 2 * frames) {
      const heap = performance.memory ? performance.memory.usedJSHeapSize : null;
      resolve({ deltas: deltas.slice(1), rows, heap, passed: passed.size });
      return;
    }
    scroller.scrollTop += frame <= frames ? step : scroller.clientHeight;
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})"""


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def time_scrolling(inst: Any, chromium: str, workflow: str, repeat: int) -> dict[str, float]:
    """Medians over ``repeat`` scrolls through ``workflow``'s table (see SCROLL): frame time
    median and p95 (ms), thumbnail requests, most rows in the page, JS heap (MB)."""
    from playwright.sync_api import sync_playwright

    figures: dict[str, list[float]] = {
        "frame": [],
        "p95": [],
        "thumbs": [],
        "rows": [],
        "heap": [],
        "passed": [],
    }
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--enable-precise-memory-info"]
        )
        for _ in range(repeat):
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            thumbs = []
            page.on("request", lambda r: "/thumbnail" in r.url and thumbs.append(r.url))
            answer = page.request.post(inst.url + "/ui/login", data={"token": inst.token})
            if not answer.ok:
                raise BenchError(f"log in failed: {answer.status} {answer.text()}")
            page.goto(f"{inst.url}/ui/#/workflows/{workflow}", wait_until="commit")
            page.evaluate(FIRST_ROWS)
            seen = page.evaluate(SCROLL, [SCROLL_FRAMES, SCROLL_STEP])
            page.wait_for_load_state("networkidle")
            figures["frame"].append(statistics.median(seen["deltas"]))
            figures["p95"].append(percentile(seen["deltas"], 0.95))
            figures["thumbs"].append(len(thumbs))
            figures["rows"].append(seen["rows"])
            figures["passed"].append(seen["passed"])
            figures["heap"].append((seen["heap"] or 0) / 2**20)
            context.close()
        browser.close()
    return {key: statistics.median(values) for key, values in figures.items()}


def print_scrolling(runs: int, plain: dict[str, float], images: dict[str, float]) -> None:
    labels = {
        "frame": "frame time, median (ms)",
        "p95": "frame time, p95 (ms)",
        "thumbs": "thumbnail requests",
        "rows": "most runs' rows in the page",
        "passed": "runs' rows drawn while scrolling",
        "heap": "JS heap used (MB)",
    }
    steps = f"{SCROLL_FRAMES} frames of {SCROLL_STEP} px, then {SCROLL_FRAMES} one-screen jumps"
    print(f"scrolling {runs} runs from the middle, {steps}:")
    for key, label in labels.items():
        ratio = f"{images[key] / plain[key]:.2f}" if plain[key] else "-"
        print(
            f"  {label}: with thumbnails {images[key]:.1f}, without {plain[key]:.1f}, ratio {ratio}"
        )


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
        with tempfile.TemporaryDirectory() as tmp:
            image = stored_image(inst, Path(tmp))
        seconds = fill(inst, args.runs, IMAGES_WORKFLOW, image)
        print(f"filled {IMAGES_WORKFLOW} (an Image in each Found job) in {seconds:.1f} s")
        for label, value in time_queries(inst, args.runs, args.repeat).items():
            print(f"page query ({PAGE} runs), {label}: median {value * 1000:.1f} ms")
        paint, jump = time_browser(inst, args.chromium, args.repeat)
        print(
            f"ui-{args.runs}: page query target < 50 ms; Chromium first paint of the runs table: "
            f"median {paint * 1000:.0f} ms (target < 1 s); jump to the middle: median "
            f"{jump * 1000:.0f} ms; {load_average()}"
        )
        plain = time_scrolling(inst, args.chromium, WORKFLOW, args.repeat)
        images = time_scrolling(inst, args.chromium, IMAGES_WORKFLOW, args.repeat)
        print_scrolling(args.runs, plain, images)
        print(load_average())


if __name__ == "__main__":
    main()
