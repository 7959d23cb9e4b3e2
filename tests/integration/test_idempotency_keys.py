"""Creating a run with an ``Idempotency-Key``: the same request sent again (its answer lost)
creates nothing and is answered the first run's job; the key with another request, or a
malformed key, is refused. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from runyard.models import Job
from runyard.operations import Runyard
from runyard.operations.idempotency import KEPT_FOR
from tests.integration.conftest import Server, error

KEY = "7f0c6c1e-3b54-4a43-9d0e-2f3c0b1e8a51"
BODY = {"task": "Source", "outputs": {"value": 5}, "name": "r1"}


def new_run(server: Server, body: dict[str, Any], key: str | None = KEY) -> Any:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return server.client.post("/api/workflows/Linear/runs", json=body, headers=headers)


def runs(server: Server) -> list[str]:
    status = server.client.get("/api/workflows/Linear/status").json()
    return [run["name"] for run in status["runs"]]


def test_the_same_run_creation_sent_twice_with_a_key_makes_one_run_and_the_same_answer(
    linear: Runyard, server: Server
) -> None:
    first = new_run(server, BODY)
    again = new_run(server, BODY)
    assert first.status_code == again.status_code == 200, again.text
    assert again.json()["serial"] == first.json()["serial"]
    assert again.json()["run_id"] == first.json()["run_id"]
    assert runs(server) == ["r1"]
    news = [e for e in linear.activity() if e["action"] == "run.new"]
    assert len(news) == 1


def test_a_key_sent_with_another_request_is_refused_and_creates_nothing(
    linear: Runyard, server: Server
) -> None:
    assert new_run(server, BODY).status_code == 200
    other = new_run(server, BODY | {"outputs": {"value": 6}})
    assert other.status_code == 422
    problem = error(other)
    assert problem["code"] == "invalid_input"
    assert KEY in problem["message"] and "different request" in problem["message"]
    assert problem["details"] == {"header": "Idempotency-Key"}
    assert runs(server) == ["r1"]


def test_without_a_key_or_with_another_key_each_call_makes_a_run(
    linear: Runyard, server: Server
) -> None:
    assert new_run(server, BODY, key=None).status_code == 200
    assert new_run(server, BODY, key=None).status_code == 200
    assert new_run(server, BODY, key="a").status_code == 200
    assert new_run(server, BODY, key="b").status_code == 200
    assert runs(server) == ["r1"] * 4


def test_a_malformed_key_is_refused_naming_the_header(linear: Runyard, server: Server) -> None:
    for key in ["x" * 256, "with space", "tab\there"]:
        refused = new_run(server, BODY, key=key)
        assert refused.status_code == 422, key
        assert "Idempotency-Key" in error(refused)["message"]
    assert runs(server) == []


def test_keys_are_the_callers_own(linear: Runyard, server: Server) -> None:
    """The same key from another caller is another key."""
    linear.runs.new_run_once(KEY, "user:ana", "Linear", "Source", outputs={"value": 5}, name="r1")
    assert new_run(server, BODY).status_code == 200
    assert runs(server) == ["r1", "r1"]


def test_a_key_is_forgotten_after_a_day(linear: Runyard) -> None:
    now = linear.jobs.now()
    first = linear.runs.new_run_once(KEY, "user:admin", "Linear", "Source", outputs={"value": 5})
    later = now + KEPT_FOR + timedelta(minutes=1)
    linear.runs.now = lambda: later
    linear.runs.new_run_once("other", "user:admin", "Linear", "Source", outputs={"value": 1})
    again = linear.runs.new_run_once(KEY, "user:admin", "Linear", "Source", outputs={"value": 5})
    assert again.serial != first.serial


def test_the_same_key_sent_at_once_from_many_threads_makes_one_run(linear: Runyard) -> None:
    answers: list[Job] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def create() -> None:
        start.wait()
        try:
            job = linear.runs.new_run_once(
                KEY, "user:admin", "Linear", "Source", outputs={"value": 5}, name="once"
            )
            answers.append(job)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert {job.serial for job in answers} == {answers[0].serial}
    status = linear.workflows.status("Linear")
    assert [run["name"] for run in status["runs"]] == ["once"]
