"""Load test: many workers, one workflow of a million trivial jobs, on PostgreSQL.

    .venv/bin/python bench/load.py --database-url postgresql://USER@HOST/ADMIN_DB
        [--jobs 1000000] [--workers 8] [--slots 4] [--jobs-per-process 100] [--poll 5]
        [--keep DIR]
    .venv/bin/python bench/load.py --measure DIR

Not part of the test suite (it runs for hours at a million jobs on a small machine). The
workflow is ``Source -> Spawn``: one run, created while the workflow is Draft, whose Spawn job
spawns ``--jobs`` runs with ``runyard.task.spawn`` (10,000 per call), each with a ``Found``
job Done and a ``Step`` job (``value + 1``) Queued. Then ``--workers`` ``runyard worker
--max-jobs SLOTS`` processes (one machine) run the steps, in reused processes of
``--jobs-per-process`` jobs.

Printed: the steps' jobs/s over the whole run and per tenth (does it slow down as the tables
grow?), the CPU per job of the server, the workers, the job processes and the PostgreSQL
cluster (when its data directory is readable here), the server's resident memory (peak:
``VmHWM``; target under 300 MB), the database's size, and the runs table's page queries at
that size (median of 5 each; target under 50 ms): the first page, a page in the middle, the
last page, Done runs only (first and middle page), a name filter, the workflows list (its
live job counts) and the reading behind live updates (``ViewManager.fingerprint``). A new
database is made on the given PostgreSQL server and dropped afterwards; with ``--keep DIR``
it is kept, with the server's data directory in DIR, and ``--measure DIR`` starts a server
on them again and measures the queries only (after a change to them). Nothing is asserted;
see docs/performance.md ("Load").
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    RUNYARD,
    BenchError,
    Installation,
    _proc_cpu,
    describe_code,
    first_error,
    installation,
    load_average,
    median,
)
from fanout import VALUE_TYPE, WORKFLOW, postmaster_pid, server_memory, write_packages
from fanout import _tree_cpu as tree_cpu
from seed_spawn import database

DATABASE_URL = "load-database"  # in a --keep DIR: the database's URL and the number of jobs

SPAWN_SCRIPT = """\
from runyard import task
from runyard.task import spawn

job = task.current_job()
runs = job.inputs["runs"]
found = spawn.spawn_task("Fanout.Value", "Found")
spawn.spawn_task(
    "Fanout.Increment",
    "Step",
    inputs=[{"key": "value", "source": {"mode": "output", "task": "Found", "key": "value"}}],
)
for first in range(0, runs, 10_000):
    numbers = range(first, min(runs, first + 10_000))
    spawn.spawn_jobs([spawn.job_spec(found, outputs={"value": n}) for n in numbers])
task.finish({"spawned": runs, "spawn_seconds": 0.0})
"""


def write_load_packages(root: Path, jobs_per_process: int) -> list[Path]:
    """The fan-out benchmark's packages, the Spawn job without the reduce."""
    folders = write_packages(root, jobs_per_process)
    spawn = next(f for f in folders if f.name == "Fanout.Spawn")
    (spawn / "main.py").write_text(SPAWN_SCRIPT)
    return [f for f in folders if f.name != "Fanout.Sum"]


def start_workers(inst: Installation, count: int, slots: int) -> list[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
    env["RUNYARD_DATA_DIR"] = str(inst.data_dir)
    workers = []
    for index in range(count):
        with open(inst.data_dir / f"worker-{index}.log", "wb") as log:
            workers.append(
                subprocess.Popen(
                    [*RUNYARD, "worker", "--max-jobs", str(slots), "--name", f"load-{index}"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=inst.data_dir,
                )
            )
    deadline = time.monotonic() + 60
    while len(inst.client.get("/api/workers")) < count:
        if time.monotonic() > deadline:
            raise BenchError(f"{count} workers did not register:\n{inst.log_tail()}")
        time.sleep(0.2)
    return workers


def cpu(
    inst: Installation, workers: list[subprocess.Popen[bytes]], postmaster: int | None
) -> dict[str, float]:
    """CPU seconds so far: the server, the workers, their job processes, PostgreSQL."""
    found = {"server": sum(_proc_cpu(inst.processes[0].pid))}
    worker_total = 0.0
    job_total = 0.0
    for worker in workers:
        own, _ = _proc_cpu(worker.pid)
        worker_total += own
        job_total += tree_cpu(worker.pid) - own  # its reaped and live job processes
    found["workers"] = worker_total
    found["job processes"] = job_total
    if postmaster is not None:
        found["postgres"] = tree_cpu(postmaster)
    return found


def done_steps(inst: Installation) -> int:
    counts = inst.job_counts(WORKFLOW)
    if counts.get("Failed"):
        raise BenchError(f"a job failed: {first_error(inst, WORKFLOW)}")
    return int(counts.get("Done", 0))


def timed(call: Any, times: int = 5) -> float:
    seconds = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return median(seconds)


def page_queries(inst: Installation, url: str, runs: int) -> dict[str, float]:
    def page(**params: Any) -> Any:
        return inst.client.get(f"/api/workflows/{WORKFLOW}/runs", params={"limit": 100} | params)

    return {
        "first page": timed(lambda: page()),
        "middle page": timed(lambda: page(offset=runs // 2)),
        "last page": timed(lambda: page(offset=max(0, runs - 100))),
        "Done runs, first page": timed(lambda: page(state="Done")),
        "Done runs, middle page": timed(lambda: page(state="Done", offset=runs // 2)),
        "name filter": timed(lambda: page(name="run 99999")),
        "workflows list": timed(lambda: inst.client.get("/api/workflows")),
        "live updates' reading": fingerprint(url),
    }


def fingerprint(url: str) -> float:
    """How long the reading behind each live update takes (``store.views.fingerprint``, the
    statements only: median of 5 on one connection)."""
    import sqlalchemy as sa

    from runyard.store.views import fingerprint as read

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            workflow_id = conn.execute(
                sa.text("SELECT id FROM workflows WHERE name = :name"), {"name": WORKFLOW}
            ).scalar_one()
            return timed(lambda: read(conn, workflow_id))
    finally:
        engine.dispose()


def database_size(url: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar_one()
            )
    finally:
        engine.dispose()


def run(args: argparse.Namespace, folders: list[Path]) -> None:
    jobs = args.jobs
    keep: Path | None = args.keep
    if keep is not None:
        keep.mkdir(parents=True)
    with (
        database(args.database_url, keep=keep is not None) as url,
        installation(up=False, worker=False, database_url=url, data_dir=keep) as inst,
    ):
        assert url is not None
        if keep is not None:
            (keep / DATABASE_URL).write_text(f"{url}\n{jobs}\n")
        inst.import_packages(folders)
        inst.client.post(
            f"/api/workflows/{WORKFLOW}/runs",
            {"task": "Source", "outputs": {"value": jobs}, "name": "load"},
        )
        workers = start_workers(inst, args.workers, args.slots)
        postmaster = postmaster_pid(url)
        try:
            total = 2 * jobs + 2  # Source, Spawn, the Found and the Step jobs
            before = cpu(inst, workers, postmaster)
            started = time.perf_counter()
            inst.start_workflow(WORKFLOW)
            marks: list[tuple[float, int]] = []
            next_mark = total // 10
            while (done := done_steps(inst)) < total:
                now = time.perf_counter()
                if done >= next_mark:
                    marks.append((now - started, done))
                    print(
                        f"  {done:,} Done after {now - started:.0f} s ({load_average()})",
                        flush=True,
                    )
                    next_mark += total // 10
                time.sleep(args.poll)
            seconds = time.perf_counter() - started
            after = cpu(inst, workers, postmaster)
            memory = server_memory(inst)
            size = database_size(url)
            pages = page_queries(inst, url, jobs + 1)
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.wait(timeout=60)
    per_job = {role: (after[role] - before.get(role, 0.0)) / jobs for role in after}
    print(
        f"{jobs:,} step jobs on {args.workers} workers x {args.slots} slots: {seconds:.0f} s, "
        f"{jobs / seconds:.0f} jobs/s (with the spawning of their runs)"
    )
    previous = (0.0, 0)
    rates = []
    for at, done in marks:
        rates.append((done - previous[1]) / max(at - previous[0], 1e-9))
        previous = (at, done)
    if rates:
        # The first tenth holds the Found jobs, which the spawn creates Done.
        print("  jobs Done per second by tenth: " + ", ".join(f"{r:.0f}" for r in rates))
    print("  CPU per job: " + ", ".join(f"{role} {s * 1000:.2f} ms" for role, s in per_job.items()))
    print(
        f"  server RSS peak {memory['VmHWM'] / 1024:.0f} MB (target < 300), at the end "
        f"{memory['VmRSS'] / 1024:.0f} MB; database {size / 2**20:.0f} MB"
    )
    print_pages(pages)
    if keep is not None:
        print(f"  kept: the database {url} and the data directory {keep}")


def print_pages(pages: dict[str, float]) -> None:
    print(
        "  page queries (median of 5; target < 50 ms): "
        + ", ".join(f"{name} {s * 1000:.0f} ms" for name, s in pages.items())
    )


def measure(data_dir: Path) -> None:
    """The page queries of a run kept with --keep, by a server of this code."""
    url, jobs = (data_dir / DATABASE_URL).read_text().split()
    with installation(up=False, worker=False, database_url=url, data_dir=data_dir) as inst:
        print(f"  {int(jobs):,} step jobs, database {database_size(url) / 2**20:.0f} MB")
        print_pages(page_queries(inst, url, int(jobs) + 1))
        memory = server_memory(inst)
        print(f"  server RSS peak {memory['VmHWM'] / 1024:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a PostgreSQL server (any database)")
    parser.add_argument(
        "--keep", type=Path, metavar="DIR", help="keep the database; the data directory in DIR"
    )
    parser.add_argument(
        "--measure", type=Path, metavar="DIR", help="only the page queries of a --keep DIR"
    )
    parser.add_argument("--jobs", type=int, default=1_000_000, help="step jobs (and runs)")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--slots", type=int, default=4, help="each worker's --max-jobs")
    parser.add_argument("--jobs-per-process", type=int, default=100)
    parser.add_argument("--poll", type=float, default=5.0, help="seconds between progress polls")
    args = parser.parse_args()
    print(f"load: {describe_code()}; {load_average()}; {VALUE_TYPE} source, PostgreSQL")
    if args.measure is not None:
        measure(args.measure)
        return
    if args.database_url is None:
        parser.error("--database-url is needed (or --measure DIR)")
    with tempfile.TemporaryDirectory(prefix="runyard-load-") as tmp:
        run(args, write_load_packages(Path(tmp), args.jobs_per_process))


if __name__ == "__main__":
    main()
