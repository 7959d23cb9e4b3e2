"""Benchmark report-path: the server's work per job without HTTP, processes or a worker.

    .venv/bin/python bench/report.py [--repeat 5] [--runs 300] [--database-url URL]

What one server spends recording a finished job and handing out the next: each repeat makes
a fresh installation in-process (SQLite in a temporary folder, or a new database on the
PostgreSQL server of ``--database-url``), imports the benchmark packages of chain.py and
pipes.py, creates the runs, then plays a worker by calling the report endpoint's function
(``server.protocol.worker_report``, the same call the HTTP route makes) in a loop: each call
reports the jobs claimed by the previous one, each Done with ``value + 1``, and claims as many
again, until nothing is left. Two shapes: chain-40 (one run through 40 steps, one job per
report) and pipes (``--runs`` runs x 3 steps, two jobs per report, as a worker with two slots).

It prints, per shape, the CPU time of this process per job (median of the repeats) and the
SQL statements per job by kind (counted with SQLAlchemy's ``before_cursor_execute``); and as a
baseline measured in the same process, the CPU time of an empty write transaction on the same
database, with the ratio. The HTTP layer, the worker and the job processes are measured by
chain.py and pipes.py; this isolates the operations and the store.
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _common import describe_code, load_average, median, write_packages
from fastapi.responses import JSONResponse
from seed_spawn import database
from sqlalchemy import event

from runyard.operations import Principal, Runyard
from runyard.packages import load_package
from runyard.server import protocol
from runyard.server import schemas as s
from runyard.settings import Settings

WORKER = "bench-worker"


def play(ry: Runyard, batch: int) -> tuple[int, float, collections.Counter[str]]:
    """Report and claim until nothing is left: (jobs, CPU seconds, statements by kind)."""
    caller = Principal(kind="worker", name=WORKER)
    ry.workers.register(WORKER, provides=[], max_jobs=batch, version="bench")
    counts: collections.Counter[str] = collections.Counter()

    def count(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        counts[statement.split(None, 1)[0].upper()] += 1

    def report(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
        body = s.WorkerReport(worker=WORKER, results=results, claim=batch)
        answer: Any = protocol.worker_report(body, ry, caller)  # rendered JSON, as sent
        if isinstance(answer, dict):  # code before the answers were rendered in the handler
            answer = JSONResponse(answer)
        claimed: list[dict[str, Any]] = json.loads(answer.body)["claimed"]
        return claimed

    claimed = report([])
    event.listen(ry.store.engine, "before_cursor_execute", count)
    jobs, start = 0, time.process_time()
    while claimed:
        results = [
            {
                "serial": c["job"]["serial"],
                "lease": c["lease"]["lease"],
                "ok": True,
                "outputs": {"value": c["job"]["inputs"]["value"] + 1},
                "log": "done\n",
            }
            for c in claimed
        ]
        claimed = report(results)
        jobs += len(results)
    cpu = time.process_time() - start
    event.remove(ry.store.engine, "before_cursor_execute", count)
    return jobs, cpu, counts


@contextmanager
def installation(root: Path, database_url: str | None) -> Iterator[Runyard]:
    """A fresh Runyard in-process: SQLite under ``root``, or a new PostgreSQL database on
    the server of ``database_url``."""
    with database(database_url) as url:
        settings = Settings(
            data_dir=root / "data", database_url=url or f"sqlite:///{root / 'ry.db'}"
        )
        ry = Runyard(settings).open()
        try:
            yield ry
        finally:
            ry.close()


def one_repeat(shape: str, runs: int, steps: int, batch: int, url: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="runyard-bench-report-") as tmp:
        root = Path(tmp)
        folders = write_packages(root / "packages", "ReportBench", steps)
        with installation(root, url) as ry:
            for folder in folders[:2]:
                ry.task_types.install(load_package(folder))  # type: ignore[arg-type]
            ry.workflows.import_package(load_package(folders[2]))  # type: ignore[arg-type]
            for value in range(runs):
                ry.jobs.new_run("ReportBench", "Source", outputs={"value": value})
            ry.workflows.set_state("ReportBench", "Started")
            jobs, cpu, counts = play(ry, batch)
            if jobs != runs * steps:
                raise SystemExit(f"{shape}: {jobs} jobs ran, expected {runs * steps}")
            baseline = empty_transaction(ry)
    return {"cpu": cpu / jobs, "counts": counts, "jobs": jobs, "baseline": baseline}


def empty_transaction(ry: Runyard, times: int = 200) -> float:
    """CPU seconds of one empty write transaction (the baseline)."""
    start = time.process_time()
    for _ in range(times):
        with ry.store.write():
            pass
    return (time.process_time() - start) / times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--runs", type=int, default=300, help="runs of pipes (default 300)")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server (postgresql://USER@HOST/DB): a new database "
        "is made on it per repeat (default: SQLite)",
    )
    args = parser.parse_args()
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(f"report-path: worker_report called in-process, {backend}, {args.repeat} repeats")
    print(f"{describe_code()}; {load_average()}")
    for shape, runs, steps, batch in (("chain-40", 1, 40, 1), ("pipes", args.runs, 3, 2)):
        one_repeat(shape, runs, steps, batch, args.database_url)  # warm-up
        repeats = [one_repeat(shape, runs, steps, batch, args.database_url)
                   for _ in range(args.repeat)]  # fmt: skip
        cpu = median([r["cpu"] for r in repeats])
        base = median([r["baseline"] for r in repeats])
        counts = repeats[0]["counts"]
        jobs = repeats[0]["jobs"]
        kinds = " ".join(f"{k} {v / jobs:.1f}" for k, v in counts.most_common())
        print(
            f"{shape}: CPU per job {cpu * 1000:.2f} ms (repeats: "
            + ", ".join(f"{r['cpu'] * 1000:.2f}" for r in repeats)
            + f"); statements per job {sum(counts.values()) / jobs:.1f} ({kinds}); "
            f"= {cpu / base:.1f} x an empty write transaction ({base * 1000:.3f} ms)"
        )


if __name__ == "__main__":
    main()
