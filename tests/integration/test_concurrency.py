"""Many claimers at once, threads and processes, on SQLite and PostgreSQL: no job is claimed
twice and no follower is created twice (or lost) when upstream jobs finish at the same time."""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from typing import Any

import sqlalchemy as sa

from runyard.operations import Runyard
from runyard.packages import load_package
from runyard.settings import Settings
from tests.conftest import WORKFLOWS, install_test_task_types

RUNS = 60
THREADS = 4
PROCESSES = 3


def work(ry: Runyard, name: str, idle_rounds: int = 20) -> list[tuple[int, int]]:
    """Claim and complete jobs until nothing has come for a while; (serial, attempt) claimed."""
    wid = ry.workers.register(name, provides=[], max_jobs=2).id
    claimed: list[tuple[int, int]] = []
    idle = 0
    while idle < idle_rounds:
        batch = ry.leases.claim(wid, [], 2)
        if not batch:
            idle += 1
            ry.changed.wait(ry.changed.version, 0.05)
            continue
        idle = 0
        for job, lease in batch:
            claimed.append((job.serial, job.attempt))
            value = job.inputs.get("value")
            outputs = {"value": value * 2} if value is not None else {"value": 0}
            if "a" in job.inputs:
                outputs = {"value": job.inputs["a"] + job.inputs["b"]}
            ry.leases.complete(job.serial, lease.lease_id, outputs)
    return claimed


def process_worker(settings: Settings, name: str, queue: Any) -> None:
    ry = Runyard(settings)
    try:
        queue.put(work(ry, name))
    finally:
        ry.close()


def test_concurrent_claimers_claim_each_job_once_and_create_each_follower_once(
    ry: Runyard, settings: Settings
) -> None:
    install_test_task_types(ry)
    ry.workflows.import_package(load_package(WORKFLOWS / "Diamond"))  # type: ignore[arg-type]
    ry.workflows.set_state("Diamond", "Started")
    for i in range(RUNS):
        ry.jobs.new_run("Diamond", "Source", outputs={"value": i}, name=f"r{i}")

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [
        context.Process(target=process_worker, args=(settings, f"p{i}", queue))
        for i in range(PROCESSES)
    ]
    for p in processes:
        p.start()
    results: list[list[tuple[int, int]]] = []
    threads = [
        threading.Thread(target=lambda i=i: results.append(work(ry, f"t{i}")))
        for i in range(THREADS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.extend(queue.get(timeout=120) for _ in processes)
    for p in processes:
        p.join(timeout=60)
        assert p.exitcode == 0

    claimed = [item for result in results for item in result]
    serials = Counter(serial for serial, _ in claimed)
    assert serials.most_common(1)[0][1] == 1, "a job was claimed twice"
    assert all(attempt == 1 for _, attempt in claimed)
    assert len(claimed) == 3 * RUNS  # Left, Right and Join of every run

    with ry.store.read() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT t.name, j.state, count(*) AS n FROM jobs j "
                "JOIN tasks t ON t.id = j.task_id GROUP BY t.name, j.state"
            )
        ).all()
    assert {(name, state): n for name, state, n in rows} == {
        ("Source", "Done"): RUNS,
        ("Left", "Done"): RUNS,
        ("Right", "Done"): RUNS,
        ("Join", "Done"): RUNS,
    }
    joins = {
        r["name"]: r["jobs"]["Join"]["outputs"] for r in ry.workflows.status("Diamond")["runs"]
    }
    assert joins == {f"r{i}": {"value": 4 * i} for i in range(RUNS)}
