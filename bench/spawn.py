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
same jobs again (as a retried job does) is timed too: nothing is created. The CPU seconds of
the server process and of this process (the client: encoding the bodies, decoding the answers)
during the first spawn are printed beside it: where the time goes.

The target is below 10 s for 100,000 runs; it is printed, not asserted.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _common import BenchError, installation, load_average, median, write_packages

from runyard.task import spawn

WORKFLOW = "SpawnBench"


@dataclass(frozen=True, kw_only=True)
class Repeat:
    first: float  # seconds of the first spawn
    again: float  # seconds of spawning the same jobs again
    server_cpu: float  # CPU seconds of the server process during the first spawn
    client_cpu: float  # CPU seconds of this process during the first spawn


def one_repeat(runs: int) -> Repeat:
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
            server_before, client_before = inst.cpu_seconds(), time.process_time()
            started = time.perf_counter()
            spawned = spawn.spawn_jobs(items, client=as_job)
            first = time.perf_counter() - started
            server_after, client_after = inst.cpu_seconds(), time.process_time()
            started = time.perf_counter()
            again = spawn.spawn_jobs(items, client=as_job)
            second = time.perf_counter() - started
        counts = inst.job_counts(WORKFLOW)
        if len({j["run_id"] for j in spawned}) != runs or counts.get("Queued") != runs:
            raise BenchError(f"expected {runs} runs each with a Queued follower; {counts}")
        if [j["serial"] for j in again] != [j["serial"] for j in spawned]:
            raise BenchError("spawning the same jobs again answered other jobs")
        return Repeat(
            first=first,
            again=second,
            server_cpu=server_after.get("server", 0.0) - server_before.get("server", 0.0),
            client_cpu=client_after - client_before,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    repeats = []
    for number in range(args.repeat):
        repeat = one_repeat(args.runs)
        repeats.append(repeat)
        print(
            f"repeat {number + 1}: spawned {args.runs} runs in {repeat.first:.2f} s (CPU: server "
            f"{repeat.server_cpu:.2f} s, client {repeat.client_cpu:.2f} s); again "
            f"{repeat.again:.2f} s; {load_average()}"
        )
    first = median([r.first for r in repeats])
    print(
        f"spawn-{args.runs}: median {first:.2f} s "
        f"({args.runs / first:,.0f} runs/s, each with a follower job; CPU: server "
        f"{median([r.server_cpu for r in repeats]):.2f} s, client "
        f"{median([r.client_cpu for r in repeats]):.2f} s); spawning them again (a retried "
        f"job): median {median([r.again for r in repeats]):.2f} s; target < 10 s for 100,000"
    )


if __name__ == "__main__":
    main()
