"""Benchmark chain-40: the latency of one run through a line of 40 trivial jobs.

    .venv/bin/python bench/chain.py [--repeat 5] [--length 40] [--poll 0.1] [--up]
        [--jobs-per-process N]

The workflow is ``Source -> Step1 -> ... -> Step40``: the source job is created Done with
output ``value``; every step is the task type ``Bench.Increment`` (a Python script that outputs
``value + 1``; with ``--jobs-per-process N``, run in reused processes, at most N jobs each), so
each job waits for the one before it and nothing runs in parallel. The figure is the time from
the source job's creation to the last job Done, from the server's own timestamps (the source
job's created_at, the last job's finished_at), so the completion poll's interval does not
count. Beside it: the time the benchmark saw, from just before POST /api/workflows/Chain/runs
(which creates the source job and queues Step1) until the poll saw every job Done; and the
split per job into the wait until a worker claimed it (created_at -> started_at) and the run
until the server recorded its completion (started_at -> finished_at: the claim answer reaching
the worker, its preparation, the script's process, and the completion request, in which the
server creates the follower).

Each repeat starts a fresh ``runyard server`` and ``runyard worker --max-jobs 2`` (or
``runyard up --max-jobs 2`` with ``--up``) on SQLite in a temporary data directory. The target
is at most 0.4 s on a 2-core machine; it is printed, not asserted. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _common import (
    Baseline,
    BenchError,
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
    write_packages,
)

WORKFLOW = "Chain"
TARGET_SECONDS = 0.4
FIRST_VALUE = 1000


@dataclass(frozen=True, kw_only=True)
class ChainResult:
    seconds: float  # server: source created_at -> last finished_at
    client_seconds: float  # client: POST of the run until the poll saw the last job Done
    claim_wait: float  # median per job: created_at -> started_at
    run: float  # median per job: started_at -> finished_at
    cpu: dict[str, float]  # CPU seconds per job by process role


def measure(folders: list[Path], length: int, *, up: bool, poll: float) -> ChainResult:
    with installation(up=up) as inst:
        inst.import_packages(folders)
        inst.start_workflow(WORKFLOW)
        cpu_before = inst.cpu_seconds()
        start = time.perf_counter()
        source = inst.new_run(WORKFLOW, FIRST_VALUE)
        end = inst.wait_done(WORKFLOW, length + 1, poll)
        cpu = cpu_per_job(cpu_before, inst.cpu_seconds(), length)
        status = inst.client.get(f"/api/workflows/{WORKFLOW}/status")
        (run,) = status["runs"]
        last = run["jobs"][f"Step{length}"]
        if last["outputs"].get("value") != FIRST_VALUE + length:
            raise BenchError(f"wrong result: {last}")
        jobs = [inst.job(run["jobs"][f"Step{i}"]["serial"]) for i in range(1, length + 1)]
    created = [parse_time(j["created_at"]) for j in jobs]
    started = [parse_time(j["started_at"]) for j in jobs]
    finished = [parse_time(j["finished_at"]) for j in jobs]
    return ChainResult(
        seconds=(finished[-1] - parse_time(source["created_at"])).total_seconds(),
        client_seconds=end - start,
        claim_wait=median([(s - c).total_seconds() for c, s in zip(created, started, strict=True)]),
        run=median([(f - s).total_seconds() for s, f in zip(started, finished, strict=True)]),
        cpu=cpu,
    )


def describe(result: ChainResult) -> str:
    return (
        f"{result.seconds:.3f} s (seen by the poll after {result.client_seconds:.3f} s; "
        f"per job: claim wait {ms(result.claim_wait)}, run {ms(result.run)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    parser.add_argument("--length", type=int, default=40, help="jobs in the chain")
    parser.add_argument(
        "--jobs-per-process",
        type=int,
        help="Bench.Increment's jobs_per_process (default: absent, a new process per job)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="runyard-bench-packages-") as tmp:
        folders = write_packages(
            Path(tmp), WORKFLOW, args.length, jobs_per_process=args.jobs_per_process
        )
        print(
            f"chain-{args.length}: one run through Source -> {args.length} x Bench.Increment "
            f"(jobs_per_process {args.jobs_per_process or 'absent: a new process per job'})"
        )
        print(describe_system(args.up, 2, args.poll))
        baseline = measure_baseline(folders, WORKFLOW)
        print(baseline.describe())
        results = []
        for index in range(1, args.repeat + 1):
            result = measure(folders, args.length, up=args.up, poll=args.poll)
            results.append(result)
            print(f"repeat {index}: {describe(result)}; {load_average()}")
            print(f"          {describe_cpu(result.cpu)}", flush=True)
    summarize(results, args.length, baseline)


def summarize(results: list[ChainResult], length: int, baseline: Baseline) -> None:
    seconds = median([r.seconds for r in results])
    verdict = "meets" if seconds <= TARGET_SECONDS else f"{seconds / TARGET_SECONDS:.1f} x over"
    print(
        f"median: {seconds:.3f} s   target <= {TARGET_SECONDS} s ({verdict})\n"
        f"        seen by the poll {median([r.client_seconds for r in results]):.3f} s; "
        f"{baseline.ratios(seconds / length)}\n"
        f"        median {describe_cpu(median_cpu([r.cpu for r in results]))}"
    )


if __name__ == "__main__":
    main()
