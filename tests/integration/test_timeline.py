"""The timeline of a workflow (GET /api/workflows/{name}/timeline): each job's times as the
store keeps them, the window, the cap, the jobs ended per minute, and who may see it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runyard.operations import Runyard
from runyard.packages import load_package
from runyard.server.app import create_app
from runyard.settings import Settings
from tests.conftest import WORKFLOWS, install_test_task_types
from tests.integration.conftest import error

T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.time = T0

    def __call__(self) -> datetime:
        return self.time

    def at(self, minutes: float) -> datetime:
        self.time = T0 + timedelta(minutes=minutes)
        return self.time


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


@pytest.fixture
def played(settings: Settings) -> Iterator[tuple[Runyard, Clock]]:
    """'Linear' (Source -> Double -> Add), one attempt per job: run 1's Double ran on w1
    (claimed 10:01, script started 10:01:30, Done 10:03), its Add on w2 (claimed 10:04,
    Failed 10:05:30); run 2's Double has been Queued since 10:06. Now: 10:10."""
    clock = Clock()
    ry = Runyard(replace(settings, max_attempts=1), now=clock).open()
    install_test_task_types(ry)
    ry.workflows.import_package(load_package(WORKFLOWS / "Linear"))  # type: ignore[arg-type]
    ry.workflows.set_state("Linear", "Started")
    w1 = ry.workers.register("w1", provides=[], max_jobs=1).id
    w2 = ry.workers.register("w2", provides=[], max_jobs=1).id
    ry.jobs.new_run("Linear", "Source", outputs={"value": 1})
    clock.at(1)
    [(double, lease)] = ry.leases.claim(w1, [], 1)
    clock.at(1.5)
    ry.leases.heartbeat(double.serial, lease.lease_id, started=True)
    clock.at(3)
    ry.leases.complete(double.serial, lease.lease_id, {"value": 2})
    clock.at(4)
    [(add, lease)] = ry.leases.claim(w2, [], 1)
    clock.at(5.5)
    ry.leases.fail(add.serial, lease.lease_id, "it broke")
    clock.at(6)
    ry.jobs.new_run("Linear", "Source", outputs={"value": 2})
    clock.at(10)
    yield ry, clock
    ry.close()


@pytest.fixture
def client(played: tuple[Runyard, Clock]) -> Iterator[TestClient]:
    ry = played[0]
    token = ry.auth.ensure_admin_token()
    with TestClient(create_app(ry), raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def timeline(client: TestClient, **query: Any) -> dict[str, Any]:
    answer = client.get("/api/workflows/Linear/timeline", params=query)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def moments(job: dict[str, Any]) -> list[datetime | None]:
    keys = ("created_at", "claimed_at", "script_started_at", "ended_at")
    return [datetime.fromisoformat(job[k]) if job[k] else None for k in keys]


def test_the_timeline_shows_each_jobs_worker_state_and_times_newest_first(
    client: TestClient,
) -> None:
    found = timeline(client)
    queued, add, double = found["jobs"]  # the Source jobs never waited for a worker
    assert [j["task"] for j in found["jobs"]] == ["Double", "Add", "Double"]
    assert [j["state"] for j in found["jobs"]] == ["Queued", "Failed", "Done"]
    assert [j["worker"] for j in found["jobs"]] == [None, "w2", "w1"]
    assert queued["run_id"] > add["run_id"] == double["run_id"] and found["cut"] is False
    t = lambda minutes: T0 + timedelta(minutes=minutes)  # noqa: E731
    assert moments(double) == [t(0), t(1), t(1.5), t(3)]
    assert moments(add) == [t(3), t(4), None, t(5.5)]
    assert moments(queued) == [t(6), None, None, None]
    assert datetime.fromisoformat(found["now"]) == t(10)


def test_the_window_keeps_the_jobs_whose_time_meets_it(client: TestClient) -> None:
    tasks = lambda found: [(j["task"], j["state"]) for j in found["jobs"]]  # noqa: E731
    assert tasks(timeline(client, since=at(4), until=at(5))) == [("Add", "Failed")]
    assert tasks(timeline(client, since=at(5.75))) == [("Double", "Queued")]
    assert tasks(timeline(client, until=at(2))) == [("Double", "Done")]
    assert timeline(client, since=at(20))["jobs"] == [
        j for j in timeline(client)["jobs"] if j["state"] == "Queued"
    ]


def test_the_timeline_is_cut_at_the_limit_and_says_so(client: TestClient) -> None:
    cut = timeline(client, limit=2)
    assert [j["task"] for j in cut["jobs"]] == ["Double", "Add"] and cut["cut"] is True
    assert timeline(client, limit=3)["cut"] is False
    for limit in (0, 5001):
        refused = client.get("/api/workflows/Linear/timeline", params={"limit": limit})
        assert refused.status_code == 422 and "limit" in error(refused)["message"]


def test_the_throughput_counts_the_jobs_ended_in_each_minute_of_the_last_hour(
    client: TestClient,
) -> None:
    minutes = timeline(client)["throughput"]
    assert len(minutes) == 60
    starts = [datetime.fromisoformat(m["minute"]) for m in minutes]
    assert starts[0] == T0 + timedelta(minutes=10 - 59) and starts[-1] == T0 + timedelta(minutes=10)
    assert all(b - a == timedelta(minutes=1) for a, b in pairwise(starts))
    ended = {m["minute"]: (m["ended"], m["failed"]) for m in minutes if m["ended"]}
    assert ended == {at(3): (1, 0), at(5): (1, 1)}


def test_an_hour_later_the_throughput_is_empty(
    client: TestClient, played: tuple[Runyard, Clock]
) -> None:
    played[1].at(70)
    assert not any(m["ended"] for m in timeline(client)["throughput"])


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ({"since": "2026-01-01T10:00:00"}, "has no time zone"),
        ({"since": at(5), "until": at(4)}, "is after until"),
        ({"until": "yesterday"}, "until"),
        ({"until": "9999-12-31T23:59:59-14:00"}, "out of range in UTC"),
    ],
)
def test_a_bad_window_is_refused_naming_the_problem(
    client: TestClient, query: dict[str, str], says: str
) -> None:
    refused = client.get("/api/workflows/Linear/timeline", params=query)
    assert refused.status_code == 422 and says in error(refused)["message"]


def test_the_timeline_of_an_unknown_workflow_is_not_found(client: TestClient) -> None:
    answer = client.get("/api/workflows/Nope/timeline")
    assert answer.status_code == 404 and "no workflow named 'Nope'" in error(answer)["message"]


def _user(client: TestClient, name: str) -> dict[str, str]:
    client.post("/api/users", json={"name": name, "password": "a long password"})
    made = client.post("/api/tokens", json={"label": "t", "user": name})
    made.raise_for_status()
    return {"Authorization": f"Bearer {made.json()['token']}"}


def test_only_callers_who_may_see_the_workflow_see_its_timeline(client: TestClient) -> None:
    bob, viola = _user(client, "bob"), _user(client, "viola")
    client.put(
        "/api/workflows/Linear/shares", json={"user": "viola", "level": "view"}
    ).raise_for_status()
    hidden = client.get("/api/workflows/Linear/timeline", headers=bob)
    assert hidden.status_code == 404 and error(hidden)["code"] == "not_found"
    shown = client.get("/api/workflows/Linear/timeline", headers=viola)
    assert shown.status_code == 200 and len(shown.json()["jobs"]) == 3
    anonymous = client.get("/api/workflows/Linear/timeline", headers={"Authorization": ""})
    assert anonymous.status_code == 401
