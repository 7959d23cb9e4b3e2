"""The views the web UI is built on: the runs table by pages (filters, orders, paging) and
the fingerprint that live updates follow."""

from __future__ import annotations

from typing import Any

from runyard.packages import folder_zip_bytes
from tests.conftest import TASK_TYPES, WORKFLOWS
from tests.integration.conftest import Server, error


def make_runs(server: Server) -> None:
    """Linear with 12 runs: 'run-00'..'run-09' Done at their source, then 'waiting 50%'
    and 'other' whose source jobs wait for a user."""
    for folder in [*sorted(TASK_TYPES.iterdir()), WORKFLOWS / "Linear"]:
        server.client.post("/api/packages", content=folder_zip_bytes(folder)).raise_for_status()
    server.client.post("/api/workflows/Linear/start").raise_for_status()
    for i in range(10):
        server.client.post(
            "/api/workflows/Linear/runs",
            json={"task": "Source", "outputs": {"value": i}, "name": f"run-{i:02d}"},
        ).raise_for_status()
    for name in ("waiting 50%", "other"):
        server.client.post(
            "/api/workflows/Linear/runs", json={"task": "Source", "name": name}
        ).raise_for_status()


def page(server: Server, **query: object) -> dict[str, object]:
    answer = server.client.get("/api/workflows/Linear/runs", params=query)
    assert answer.status_code == 200, answer.text
    data: dict[str, object] = answer.json()
    return data


def names(data: dict[str, object]) -> list[str]:
    runs = data["runs"]
    assert isinstance(runs, list)
    return [r["name"] for r in runs]


def runs_of(data: dict[str, object]) -> list[dict[str, Any]]:
    runs = data["runs"]
    assert isinstance(runs, list)
    return runs


def test_a_page_of_runs_has_its_jobs_and_the_total(server: Server) -> None:
    make_runs(server)
    first = page(server, offset=0, limit=5)
    assert first["total"] == 12 and first["tasks"] == ["Source", "Double", "Add"]
    assert names(first) == [f"run-{i:02d}" for i in range(5)]
    runs = first["runs"]
    assert isinstance(runs, list)
    source = runs[0]["jobs"]["Source"]
    assert source["state"] == "Done"
    assert set(source) == {"serial", "state", "error", "attempt", "numbers"}
    assert source["numbers"] == {"value": 0}  # what its cell shows (results.py)
    assert runs[0]["jobs"]["Double"]["state"] == "Queued"
    assert names(page(server, offset=10, limit=5)) == ["waiting 50%", "other"]
    assert names(page(server, offset=20, limit=5)) == []


def test_runs_are_filtered_by_state_and_name_and_sorted(server: Server) -> None:
    make_runs(server)
    waiting = page(server, state="Waiting")
    assert waiting["total"] == 2 and names(waiting) == ["waiting 50%", "other"]
    assert names(page(server, name="RUN-0", limit=3)) == ["run-00", "run-01", "run-02"]
    assert names(page(server, name="50%")) == ["waiting 50%"]  # % is not a wildcard
    assert page(server, name="_")["total"] == 0
    by_name = page(server, order="name", desc="true", limit=3)
    assert names(by_name) == ["waiting 50%", "run-09", "run-08"]
    assert names(page(server, order="name", limit=2)) == ["other", "run-00"]


def test_bad_page_queries_are_refused(server: Server) -> None:
    make_runs(server)
    for query in ({"state": "Sleeping"}, {"order": "size"}, {"limit": 5000}, {"offset": -1}):
        answer = server.client.get("/api/workflows/Linear/runs", params=query)
        assert answer.status_code == 422 and answer.json()["error"]["code"] == "invalid_input"
    missing = server.client.get("/api/workflows/Nope/runs")
    assert missing.status_code == 404


def test_the_fingerprint_changes_with_every_cell(server: Server) -> None:
    make_runs(server)
    before = server.ry.views.fingerprint("Linear")
    assert before["runs"] == 12 and before["jobs"] == {"Done": 10, "Queued": 10, "Waiting": 2}
    assert server.ry.views.fingerprint("Linear") == before
    serial = page(server, limit=1)["runs"][0]["jobs"]["Double"]["serial"]  # type: ignore[index]
    server.client.post(f"/api/jobs/{serial}/state", json={"state": "Aborted"}).raise_for_status()
    after = server.ry.views.fingerprint("Linear")
    assert after != before and after["jobs"]["Aborted"] == 1


def test_the_fingerprint_changes_when_a_restarted_job_ends_as_the_old_one_did(
    server: Server,
) -> None:
    """A restart whose new job runs and ends between two readings leaves every count as it
    was: the fingerprint still changes (a table showing the new job Running must update)."""
    from tests.integration.test_engine import run_all, worker_id

    make_runs(server)
    ry = server.ry
    run_all(ry, worker_id(ry))
    before = ry.views.fingerprint("Linear")
    last = [r["jobs"]["Add"]["serial"] for r in page(server)["runs"] if "Add" in r["jobs"]]
    ry.jobs.restart_new_job(last[-1])
    assert run_all(ry, worker_id(ry)) == 1
    after = ry.views.fingerprint("Linear")
    assert after["jobs"] == before["jobs"] and after != before


def test_the_fingerprint_changes_when_a_run_is_renamed_or_one_replaces_another(
    server: Server,
) -> None:
    """Renaming a run, or one run obsoleted and another restored between two readings,
    leaves the counts as they were: the fingerprint changes all the same."""
    make_runs(server)
    ry = server.ry
    ids = [r["id"] for r in page(server)["runs"]]
    ry.runs.set_obsolete(ids[0], True)
    before = ry.views.fingerprint("Linear")
    ry.runs.rename(ids[1], "renamed")
    renamed = ry.views.fingerprint("Linear")
    assert renamed != before
    ry.runs.set_obsolete(ids[0], False)
    ry.runs.set_obsolete(ids[2], True)
    after = ry.views.fingerprint("Linear")
    assert after["runs"] == renamed["runs"] and after != renamed


def test_obsolete_runs_are_listed_marked_when_asked_and_leave_when_restored(
    server: Server,
) -> None:
    make_runs(server)
    ids = {r["name"]: r["id"] for r in runs_of(page(server))}
    for name in ("run-03", "run-07"):
        obsoleted = server.client.post(f"/api/runs/{ids[name]}/obsolete")
        assert obsoleted.status_code == 200, obsoleted.text
    live = page(server)
    assert live["total"] == 10 and "run-03" not in names(live)
    assert live["obsolete"] == "exclude"
    assert all(r["obsolete"] is False for r in runs_of(live))
    only = page(server, obsolete="only")
    assert only["total"] == 2 and names(only) == ["run-03", "run-07"]
    assert all(r["obsolete"] is True for r in runs_of(only))
    assert runs_of(only)[0]["jobs"]["Source"]["state"] == "Done"  # its jobs are as they were
    both = page(server, obsolete="include", limit=5)
    assert both["total"] == 12 and names(both) == [f"run-{i:02d}" for i in range(5)]
    assert [r["obsolete"] for r in runs_of(both)] == [False, False, False, True, False]
    assert names(page(server, obsolete="only", name="07")) == ["run-07"]
    assert page(server, obsolete="only", state="Waiting")["total"] == 0
    assert names(page(server, obsolete="only", order="name", desc="true")) == ["run-07", "run-03"]
    restored = server.client.post(f"/api/runs/{ids['run-03']}/restore")
    assert restored.status_code == 200 and restored.json()["obsolete"] is False
    assert names(page(server, obsolete="only")) == ["run-07"]
    assert page(server)["total"] == 11 and "run-03" in names(page(server))


def test_an_unknown_obsolete_value_is_refused_naming_the_parameter(server: Server) -> None:
    make_runs(server)
    for bad in ("all", "true", "ONLY", ""):
        answer = server.client.get("/api/workflows/Linear/runs", params={"obsolete": bad})
        assert answer.status_code == 422, (bad, answer.text)
        found = error(answer)
        assert found["code"] == "invalid_input" and found["details"] == {"obsolete": bad}
        assert "obsolete" in found["message"] and "exclude, only, include" in found["message"]
