"""The calls that a script's client sends again after a lost answer (``idempotent=True`` in
``runyard.task``) do their work once: a spawn batch with reserved serials and state changes,
a task spawned again, a progress report. Sent twice here as a retry would send them."""

from __future__ import annotations

from sqlalchemy import func, select

from runyard.store.schema import jobs, runs, tasks
from runyard.task import spawn
from tests.integration.test_task_library import Script, script

__all__ = ["script"]  # the fixture, used by name

SELECT = {"name": "Test.Source", "version": "1.0.0.0"}


def counts(run: Script) -> dict[str, int]:
    with run.server.ry.store.read() as conn:
        return {
            t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (tasks, runs, jobs)
        }


def test_a_spawn_batch_sent_twice_is_answered_the_same_and_spawns_nothing_twice(
    script: Script,
) -> None:
    task_a = spawn.spawn_task(SELECT, "A")
    assert spawn.spawn_task(SELECT, "A") == task_a  # a spawned task sent again
    client = script.job.client()
    [(first, last)] = [tuple(r) for r in client.post("/api/spawn/serials", {"count": 2})["ranges"]]
    item = {"task": task_a["id"], "outputs": {"value": 1}, "state": "Obsolete"}
    body = {
        "jobs": [item | {"serial": first}, item | {"outputs": {"value": 2}, "serial": last}],
        "states": [{"serial": first, "state": "Done", "after": 2}],
    }
    answer = client.post("/api/spawn/batch", body)
    before = counts(script)
    again = client.post("/api/spawn/batch", body)
    assert [(j["serial"], j["run_id"]) for j in again["jobs"]] == [
        (j["serial"], j["run_id"]) for j in answer["jobs"]
    ]
    assert again["states"] == answer["states"]
    assert counts(script) == before
    # Each job as it is now: the first was set Done by the first call.
    assert [j["state"] for j in again["jobs"]] == ["Done", "Obsolete"]


def test_a_progress_report_sent_twice_leaves_the_same_progress(script: Script) -> None:
    script.job.progress(0.5, "half")
    script.job.progress(0.5, "half")
    job = script.server.client.get(f"/api/jobs/{script.job.serial}").json()
    assert job["progress"] == {"fraction": 0.5, "message": "half"}
