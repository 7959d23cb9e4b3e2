"""The HTTP API through an in-process client: auth, error shape, packages, worker protocol."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from runyard.operations import Runyard
from runyard.packages import folder_zip_bytes
from runyard.server.app import create_app
from tests.conftest import TASK_TYPES, WORKFLOWS


@pytest.fixture
def api(ry: Runyard) -> Iterator[tuple[TestClient, str]]:
    token = ry.auth.ensure_admin_token()
    assert token is not None
    with TestClient(create_app(ry), raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client, token


def import_all(client: TestClient) -> None:
    for folder in [*sorted(TASK_TYPES.iterdir()), WORKFLOWS / "Linear"]:
        r = client.post("/api/packages", content=folder_zip_bytes(folder))
        assert r.status_code == 200, r.text


def error(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    result: dict[str, Any] = body["error"]
    return result


def table_counts(ry: Runyard) -> dict[str, int]:
    with ry.store.read() as conn:
        return {
            t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in ("task_types", "workflows", "tasks", "runs", "jobs")
        }


def test_every_error_has_one_shape(api: tuple[TestClient, str]) -> None:
    client, _ = api
    assert error(client.get("/api/workflows/Nope/status"))["code"] == "not_found"
    assert error(client.get("/api/no-such-route"))["code"] == "not_found"
    bad = client.post("/api/workflows/Nope/runs", json={"tusk": "x"})
    assert bad.status_code == 422 and error(bad)["code"] == "invalid_input"
    assert "task: Field required" in error(bad)["message"]


def test_calls_without_a_valid_token_are_refused(api: tuple[TestClient, str]) -> None:
    client, _ = api
    for headers in (
        {"Authorization": ""},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic abc"},
    ):
        r = client.get("/api/workflows", headers=headers)
        assert r.status_code == 401 and error(r)["code"] == "unauthorized"


def test_a_worker_token_cannot_do_admin_things(api: tuple[TestClient, str], ry: Runyard) -> None:
    client, _ = api
    token = client.post("/api/tokens/worker", json={"name": "w"}).json()["token"]
    r = client.post(
        "/api/tokens/worker", json={"name": "x"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 403 and "needs a token of kind admin" in error(r)["message"]


def test_the_openapi_document_lists_the_routes(api: tuple[TestClient, str]) -> None:
    client, _ = api
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/workers/claim" in paths and "/api/workflows/{name}/status" in paths


def test_a_bad_package_is_refused_whole_and_changes_nothing(
    api: tuple[TestClient, str], ry: Runyard
) -> None:
    client, _ = api
    import_all(client)
    before = table_counts(ry)
    r = client.post("/api/packages", content=b"not a zip")
    assert r.status_code == 422 and error(r)["code"] == "invalid_package"
    assert table_counts(ry) == before


def test_a_workflow_with_the_same_name_is_refused(api: tuple[TestClient, str], ry: Runyard) -> None:
    client, _ = api
    import_all(client)
    before = table_counts(ry)
    r = client.post("/api/packages", content=folder_zip_bytes(WORKFLOWS / "Linear"))
    assert r.status_code == 409 and "exists already" in error(r)["message"]
    assert table_counts(ry) == before


def test_reimporting_the_same_task_type_is_harmless(api: tuple[TestClient, str]) -> None:
    client, _ = api
    import_all(client)
    r = client.post("/api/packages", content=folder_zip_bytes(TASK_TYPES / "Double"))
    assert r.status_code == 200 and r.json()["installed"] is False


def test_the_worker_protocol_over_http(api: tuple[TestClient, str]) -> None:
    client, _ = api
    import_all(client)
    client.post("/api/workflows/Linear/start").raise_for_status()
    run = client.post(
        "/api/workflows/Linear/runs", json={"task": "Source", "outputs": {"value": 5}, "name": "r1"}
    )
    assert run.status_code == 200 and run.json()["state"] == "Done"
    token = client.post("/api/tokens/worker", json={"name": "w1"}).json()["token"]
    worker = {"Authorization": f"Bearer {token}"}
    client.post(
        "/api/workers/register", json={"name": "w1", "max_jobs": 2}, headers=worker
    ).raise_for_status()
    [claim] = client.post(
        "/api/workers/claim", json={"worker": "w1", "max": 2}, headers=worker
    ).json()
    serial, lease = claim["job"]["serial"], claim["lease"]["lease"]
    assert claim["task_type"]["name"] == "Test.Double"

    # The job token reads its own job, and nothing else.
    job_auth = {"Authorization": f"Bearer {claim['token']}"}
    assert client.get(f"/api/jobs/{serial}", headers=job_auth).json()["inputs"] == {"value": 5}
    assert client.get(f"/api/jobs/{serial - 1}", headers=job_auth).status_code == 403

    package = client.get("/api/task-types/Test.Double/1.0.0.0/package", headers=worker)
    assert package.status_code == 200 and package.content[:2] == b"PK"

    client.post(
        f"/api/jobs/{serial}/heartbeat", json={"lease": lease}, headers=worker
    ).raise_for_status()
    stale = client.post(
        f"/api/jobs/{serial}/complete", json={"lease": "x", "outputs": {}}, headers=worker
    )
    assert stale.status_code == 409 and error(stale)["code"] == "stale_lease"
    done = client.post(
        f"/api/jobs/{serial}/complete",
        json={"lease": lease, "outputs": {"value": 10}},
        headers=worker,
    )
    assert done.json()["state"] == "Done"
    # Once the lease is gone, so is the job token.
    assert client.get(f"/api/jobs/{serial}", headers=job_auth).status_code == 401
    status = client.get("/api/workflows/Linear/status").json()
    assert status["runs"][0]["jobs"]["Add"]["state"] == "Queued"


def test_illegal_state_changes_through_the_api_are_refused(
    api: tuple[TestClient, str], ry: Runyard
) -> None:
    client, _ = api
    import_all(client)
    job = client.post(
        "/api/workflows/Linear/runs", json={"task": "Source", "outputs": {"value": 5}}
    ).json()
    before = table_counts(ry)
    r = client.post(f"/api/jobs/{job['serial']}/state", json={"state": "Done"})
    assert r.status_code == 409 and error(r)["code"] == "illegal_transition"
    r = client.post(f"/api/jobs/{job['serial']}/state", json={"state": "Flying"})
    assert r.status_code == 422 and "unknown job state 'Flying'" in error(r)["message"]
    r = client.post("/api/workflows/Linear/explode")
    assert r.status_code == 422 and "unknown workflow action" in error(r)["message"]
    assert table_counts(ry) == before


def test_a_new_run_whose_source_outputs_miss_one_is_refused_and_makes_nothing(
    api: tuple[TestClient, str], ry: Runyard
) -> None:
    """``{}`` made the source job Done without its outputs, and every follower failed."""
    client, _ = api
    import_all(client)
    before = table_counts(ry)
    for outputs, words in (({}, "lack 'value' (Int)"), ({"other": 1}, "output 'other' is not")):
        r = client.post("/api/workflows/Linear/runs", json={"task": "Source", "outputs": outputs})
        assert r.status_code == 422, r.text
        assert words in error(r)["message"], error(r)
    assert table_counts(ry) == before
    r = client.post("/api/workflows/Linear/runs", json={"task": "Source", "outputs": {"value": 1}})
    assert r.status_code == 200 and r.json()["state"] == "Done"
