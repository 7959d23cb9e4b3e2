"""Benchmark contention: run creation by many clients at once, on SQLite (or PostgreSQL).

    .venv/bin/python bench/contention.py [--clients 20] [--runs 30] [--repeat 5]
        [--no-worker] [--database-url postgresql://USER@HOST/DB]

``--clients`` threads, each with its own ``runyard.client.Client`` (its own connection), create
``--runs`` runs each with ``POST /api/workflows/Contention/runs`` as fast as they can, all
starting together. Each run's source job is created Done, so the server also creates its
follower, which the worker (``runyard worker --max-jobs 2``, unless ``--no-worker``) claims,
runs and reports meanwhile: the write transactions of claims, heartbeats and reports compete
with the run creations, as in a lab. Printed per round: the latency of a run creation (p50,
p99, worst) and the runs created per second; then the medians over the rounds. Each round
starts a fresh installation. Nothing is asserted; see docs/performance.md ("Contention").
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from _common import (
    BenchError,
    Installation,
    describe_code,
    installation,
    load_average,
    median,
    write_packages,
)

from runyard.client import Client

WORKFLOW = "Contention"


@dataclass(frozen=True, kw_only=True)
class Round:
    latencies: list[float]  # seconds per run creation, sorted
    seconds: float  # wall time of the round

    def quantile(self, q: float) -> float:
        index = min(len(self.latencies) - 1, max(0, round(q * len(self.latencies)) - 1))
        return self.latencies[index]

    def describe(self) -> str:
        return (
            f"p50 {self.quantile(0.5) * 1000:.0f} ms, p99 {self.quantile(0.99) * 1000:.0f} ms, "
            f"worst {self.latencies[-1] * 1000:.0f} ms; "
            f"{len(self.latencies) / self.seconds:.0f} runs/s"
        )


def measure(inst: Installation, clients: int, runs: int) -> Round:
    """``clients`` threads creating ``runs`` runs each, started together."""
    start = threading.Barrier(clients + 1)
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client_thread(number: int) -> None:
        with Client(inst.url, inst.token) as client:
            client.get("/api/workflows")  # connected before the start
            start.wait()
            for i in range(runs):
                began = time.perf_counter()
                try:
                    client.post(
                        f"/api/workflows/{WORKFLOW}/runs",
                        {"task": "Source", "outputs": {"value": i}, "name": f"c{number}-{i}"},
                    )
                except BaseException as exc:
                    with lock:
                        errors.append(exc)
                    return
                with lock:
                    latencies.append(time.perf_counter() - began)

    threads = [threading.Thread(target=client_thread, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    if errors:
        raise BenchError(f"{len(errors)} run creations failed; the first: {errors[0]}")
    return Round(latencies=sorted(latencies), seconds=seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20, help="client threads")
    parser.add_argument("--runs", type=int, default=30, help="runs created per client")
    parser.add_argument("--repeat", type=int, default=5, help="rounds (fresh installations)")
    parser.add_argument("--no-worker", action="store_true", help="no worker runs the jobs")
    parser.add_argument("--database-url", default=None, help="PostgreSQL instead of SQLite")
    args = parser.parse_args()
    backend = "PostgreSQL" if args.database_url else "SQLite"
    worker = "no worker" if args.no_worker else "runyard worker --max-jobs 2 running the jobs"
    print(
        f"contention: {args.clients} clients x {args.runs} runs (POST .../runs, source Done, "
        f"one follower each), {backend}, {worker}\n{describe_code()}"
    )
    rounds = []
    with tempfile.TemporaryDirectory(prefix="runyard-bench-packages-") as tmp:
        folders = write_packages(Path(tmp), WORKFLOW, 1)
        for index in range(1, args.repeat + 1):
            with installation(
                up=False, worker=not args.no_worker, database_url=args.database_url
            ) as inst:
                inst.import_packages(folders)
                inst.start_workflow(WORKFLOW)
                result = measure(inst, args.clients, args.runs)
            rounds.append(result)
            print(f"round {index}: {result.describe()}; {load_average()}", flush=True)
    p50 = median([r.quantile(0.5) for r in rounds])
    p99 = median([r.quantile(0.99) for r in rounds])
    worst = max(r.latencies[-1] for r in rounds)
    rate = median([len(r.latencies) / r.seconds for r in rounds])
    spread = statistics.pstdev([r.quantile(0.99) for r in rounds]) * 1000
    print(
        f"median of {len(rounds)} rounds: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms "
        f"(spread {spread:.0f} ms), worst of all {worst * 1000:.0f} ms, {rate:.0f} runs/s"
    )


if __name__ == "__main__":
    main()
