"""Benchmark spawn-100k: one job spawns 100,000 runs, each with a follower job.

    .venv/bin/python bench/spawn.py [--runs 100000] [--repeat 3]

Each repeat starts a fresh ``runyard server`` (SQLite, temporary data directory, no worker),
imports a workflow ``Source -> Step1``, starts one run and claims its Step1 job as a worker
would, so that the benchmark holds a Running job and its job token. With that token it
spawns a task ``Found`` (``Bench.Source``) and a task ``Follow`` (``Bench.Increment`` taking
``Found``'s value), then ``--runs`` jobs of ``Found``, each created Done in a new run, through
``runyard.task.spawn.spawn_jobs`` (batches of 10,000 per call, one transaction each): every
job creates its ``Follow`` job (Queued) in the same transaction. The figure is the time of
the ``spawn_jobs`` calls; then it is checked that every run has its follower. Spawning the
same jobs again (as a retried job does) is timed too: nothing is created.

The target is below 10 s for 100,000 runs; it is printed, not asserted.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import BenchError, installation, median, write_packages

from runyard.task import spawn

WORKFLOW = "SpawnBench"


def one_repeat(runs: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp, installation(up=False, worker=False) as inst:
        inst.import_packages(write_packages(Path(tmp), WORKFLOW, 1))
        inst.start_workflow(WORKFLOW)
        inst.new_run(WORKFLOW, 0)
        worker_token = inst.client.post("/api/tokens/worker", {"name": "bench"})["token"]
        from runyard.client import Client

        with Client(inst.url, worker_token) as as_worker:
            as_worker.post("/api/workers/register", {"name": "bench", "max_jobs": 1})
            [claim] = as_worker.post("/api/workers/claim", {"worker": "bench", "max": 1})
        with Client(inst.url, claim["token"]) as as_job:
            found = spawn.spawn_task("Bench.Source", "Found", client=as_job)
            source = {"mode": "output", "task": "Found", "key": "value"}
            spawn.spawn_task(
                "Bench.Increment",
                "Follow",
                inputs=[{"key": "value", "source": source}],
                client=as_job,
            )
            items = [
                spawn.job_spec(found, outputs={"value": n}, metadata={"run_display_name": f"r{n}"})
                for n in range(runs)
            ]
            started = time.perf_counter()
            spawned = spawn.spawn_jobs(items, client=as_job)
            first = time.perf_counter() - started
            started = time.perf_counter()
            again = spawn.spawn_jobs(items, client=as_job)
            second = time.perf_counter() - started
        counts = inst.job_counts(WORKFLOW)
        if len({j["run_id"] for j in spawned}) != runs or counts.get("Queued") != runs:
            raise BenchError(f"expected {runs} runs each with a Queued follower; {counts}")
        if [j["serial"] for j in again] != [j["serial"] for j in spawned]:
            raise BenchError("spawning the same jobs again answered other jobs")
        return first, second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    firsts, seconds = [], []
    for number in range(args.repeat):
        first, second = one_repeat(args.runs)
        firsts.append(first)
        seconds.append(second)
        print(
            f"repeat {number + 1}: spawned {args.runs} runs in {first:.2f} s; "
            f"again {second:.2f} s"
        )
    print(
        f"spawn-{args.runs}: median {median(firsts):.2f} s "
        f"({args.runs / median(firsts):,.0f} runs/s, each with a follower job); "
        f"spawning them again (a retried job): median {median(seconds):.2f} s; target < 10 s "
        "for 100,000"
    )


if __name__ == "__main__":
    main()
