"""Benchmark pipes: the throughput of many short runs on two local job slots.

    .venv/bin/python bench/pipes.py [--repeat 5] [--runs 300] [--steps 3] [--poll 0.1] [--up]
        [--jobs-per-process N]
        [--database-url postgresql://USER@HOST/ADMIN_DB [--processes N]]

The workflow is ``Source -> Step1 -> Step2 -> Step3``; every step is the task type
``Bench.Increment`` (a Python script that outputs ``value + 1``). All runs are created over the
HTTP API while the workflow is stopped (Draft: the server accepts new runs, their source jobs
are Done and their Step1 jobs Queued, but no worker may claim them), then the workflow is
started (with ``--jobs-per-process N``, ``Bench.Increment`` runs its jobs in reused processes,
at most N each). The figure is jobs per second (runs x steps jobs; the source jobs run nothing)
from the start of the workflow to the last job Done, from the server's own timestamps (the
workflow's start in the activity log, the latest finished_at of the last runs' jobs), so the
completion poll's interval does not count. Beside it: the rate the benchmark saw, from just
before POST /api/workflows/Pipes/start until the poll saw every job Done.

Each repeat starts a fresh ``runyard server`` and one ``runyard worker --max-jobs 2`` (or
``runyard up --max-jobs 2`` with ``--up``) on SQLite in a temporary data directory (or on a
new database made on the given PostgreSQL server and dropped afterwards; ``--processes N``:
``runyard server --processes N``). The target
on a 2-core machine is at least 300 jobs/s with a new process per job, 600 jobs/s with reused
processes (``--jobs-per-process``); it is printed, not asserted.
See docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from _common import (
    Baseline,
    BenchError,
    Installation,
    common_arguments,
    cpu_per_job,
    describe_cpu,
    describe_system,
    installation,
    load_average,
    measure_baseline,
    median,
    median_cpu,
    ms,
    parse_time,
    scale_arguments,
    write_packages,
)
from seed_spawn import database

WORKFLOW = "Pipes"
TARGET_JOBS_PER_SECOND = 300.0  # a new process per job
TARGET_REUSED_JOBS_PER_SECOND = 600.0  # reused processes (--jobs-per-process N > 1)
LAST_RUNS_CHECKED = 5  # the last job Done is one of these runs' (claims go in run order)


@dataclass(frozen=True, kw_only=True)
class PipesResult:
    jobs: int
    seconds: float  # server: workflow started -> last job finished_at
    client_seconds: float  # client: POST start until the poll saw every job Done
    create_seconds: float  # creating the runs while the workflow was Draft
    cpu: dict[str, float]  # CPU seconds per job by process role

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds


def measure(
    folders: list[Path],
    runs: int,
    steps: int,
    args: argparse.Namespace,
    *,
    admin_url: str | None = None,
) -> PipesResult:
    up, poll = args.up, args.poll
    with (
        database(admin_url) as url,
        installation(up=up, database_url=url, server_processes=args.processes) as inst,
    ):
        inst.import_packages(folders)
        created = time.perf_counter()
        for value in range(runs):
            inst.new_run(WORKFLOW, value)
        cpu_before = inst.cpu_seconds()
        start = time.perf_counter()
        inst.start_workflow(WORKFLOW)
        end = inst.wait_done(WORKFLOW, runs * (steps + 1), poll)
        cpu = cpu_per_job(cpu_before, inst.cpu_seconds(), runs * steps)
        server_start, server_end = _server_span(inst, steps)
    return PipesResult(
        jobs=runs * steps,
        seconds=(server_end - server_start).total_seconds(),
        client_seconds=end - start,
        create_seconds=start - created,
        cpu=cpu,
    )


def _server_span(inst: Installation, steps: int) -> tuple[datetime, datetime]:
    """When the server started the workflow, and when it recorded the last job Done."""
    starts = [
        parse_time(entry["at"])
        for entry in inst.client.get("/api/activity", params={"limit": 20})
        if entry["action"] == "workflow.state" and entry["message"].endswith("-> Started")
    ]
    if not starts:
        raise BenchError("the workflow's start is not in the activity log")
    status = inst.client.get(f"/api/workflows/{WORKFLOW}/status")
    values = {run["jobs"][f"Step{steps}"]["outputs"]["value"] for run in status["runs"]}
    if len(values) != len(status["runs"]):
        raise BenchError("two runs ended with the same value: a job saw the wrong input")
    finished = [
        parse_time(inst.job(run["jobs"][f"Step{steps}"]["serial"])["finished_at"])
        for run in status["runs"][-LAST_RUNS_CHECKED:]
    ]
    return max(starts), max(finished)


def describe(result: PipesResult) -> str:
    return (
        f"{result.rate:.1f} jobs/s ({result.jobs} jobs in {result.seconds:.2f} s; "
        f"seen by the poll: {result.jobs / result.client_seconds:.1f} jobs/s; "
        f"runs created beforehand in {result.create_seconds:.1f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    parser.add_argument("--runs", type=int, default=300, help="runs to create")
    parser.add_argument("--steps", type=int, default=3, help="jobs per run (after the source)")
    parser.add_argument(
        "--jobs-per-process",
        type=int,
        help="Bench.Increment's jobs_per_process (default: absent, a new process per job)",
    )
    scale_arguments(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="runyard-bench-packages-") as tmp:
        folders = write_packages(
            Path(tmp), WORKFLOW, args.steps, jobs_per_process=args.jobs_per_process
        )
        print(
            f"pipes: {args.runs} runs x Source -> {args.steps} x Bench.Increment "
            f"(jobs_per_process {args.jobs_per_process or 'absent: a new process per job'}), "
            "created while Draft, then the workflow started"
        )
        print(
            describe_system(
                args.up,
                2,
                args.poll,
                processes=args.processes,
                postgres=args.database_url is not None,
            )
        )
        baseline = measure_baseline(folders, WORKFLOW)
        print(baseline.describe())
        results = []
        for index in range(1, args.repeat + 1):
            result = measure(folders, args.runs, args.steps, args, admin_url=args.database_url)
            results.append(result)
            print(f"repeat {index}: {describe(result)}; {load_average()}")
            print(f"          {describe_cpu(result.cpu)}", flush=True)
    reused = (args.jobs_per_process or 1) > 1
    summarize(
        results, baseline, TARGET_REUSED_JOBS_PER_SECOND if reused else TARGET_JOBS_PER_SECOND
    )


def summarize(results: list[PipesResult], baseline: Baseline, target: float) -> None:
    rate = median([r.rate for r in results])
    verdict = "meets" if rate >= target else f"{target / rate:.1f} x short"
    per_slot = 2 / rate  # two job slots: each slot finishes a job every 2 / rate seconds
    cpu = median_cpu([r.cpu for r in results])
    print(
        f"median: {rate:.1f} jobs/s   target >= {target:.0f} jobs/s ({verdict})\n"
        f"        seen by the poll {median([r.jobs / r.client_seconds for r in results]):.1f} "
        f"jobs/s; per slot {baseline.ratios(per_slot)}\n"
        f"        median {describe_cpu(cpu)}"
    )
    cores = os.cpu_count() or 1
    if cpu:
        print(
            f"        {cores} cores at this CPU cost allow at most "
            f"{cores / sum(cpu.values()):.0f} jobs/s; the target needs at most "
            f"{ms(cores / target)} per job"
        )


if __name__ == "__main__":
    main()
