"""What the security tier (tests/security) found, pinned on each backend: requests that
made the server fail (5xx) or answer a status its OpenAPI document did not list are
refused with the one error shape, and the OpenAPI document lists the error answers."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from runyard.packages import folder_zip_bytes
from tests.conftest import WORKFLOWS
from tests.integration.conftest import Server, error, start_a_job

BEYOND_INT32 = 2**31  # the first integer PostgreSQL's INTEGER cannot hold
BEYOND_INT64 = 2**64  # nor SQLite's


def test_export_of_a_workflow_with_a_non_latin_name_names_the_file_in_utf8(
    server: Server,
) -> None:
    name = 'Études "ω" 研究'
    server.client.post("/api/workflows", json={"name": name}).raise_for_status()
    r = server.client.get(f"/api/workflows/{quote(name)}/export")
    assert r.status_code == 200, r.text
    disposition = r.headers["content-disposition"]
    assert disposition == (
        'attachment; filename="_tudes ___ __.xfp"; '
        "filename*=UTF-8''%C3%89tudes%20%22%CF%89%22%20%E7%A0%94%E7%A9%B6.xfp"
    )


@pytest.mark.parametrize("number", [BEYOND_INT32, BEYOND_INT64, -BEYOND_INT64])
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/jobs/{n}", None),
        ("GET", "/api/jobs/{n}/history", None),
        ("POST", "/api/jobs/{n}/heartbeat", {"lease": "x"}),
        ("PUT", "/api/runs/{n}/name", {"name": "a"}),
        ("GET", "/api/workflows/Linear/runs?offset={n}", None),
        ("PUT", "/api/workers/w1/max-jobs", {"max_jobs": "{n}"}),
        (
            "POST",
            "/api/workers/heartbeat",
            {"worker": "w1", "beats": [{"serial": "{n}", "lease": "x"}]},
        ),
    ],
)
def test_integers_beyond_what_the_database_holds_are_refused_with_422(
    server: Server, method: str, path: str, body: Any, number: int
) -> None:
    start_a_job(server)  # the workflow Linear, its runs, the worker w1
    content = None if body is None else json.dumps(body).replace('"{n}"', str(number))
    r = server.client.request(
        method,
        path.format(n=number),
        content=content,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422, r.text
    assert error(r)["code"] == "invalid_input"
    assert "SELECT" not in r.text and "UPDATE" not in r.text


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/api/activity?before={n}"), ("DELETE", "/api/tokens/{n}")]
)
def test_integers_of_the_accounts_and_activity_routes_are_bounded_too(
    server: Server, method: str, path: str
) -> None:
    r = server.client.request(method, path.format(n=BEYOND_INT64))
    assert r.status_code == 422, r.text
    assert error(r)["code"] == "invalid_input"


def test_a_spawned_job_naming_a_task_beyond_the_database_range_is_refused(
    server: Server,
) -> None:
    job = start_a_job(server)
    body = {"jobs": [{"task": BEYOND_INT32, "outputs": {}}]}
    r = server.client.post("/api/spawn/jobs", json=body, headers=job.as_job)
    assert r.status_code == 422, r.text
    assert "jobs.0.task" in error(r)["message"]


@pytest.mark.parametrize("value", [True, 2.0, "2"])
def test_a_body_integer_must_be_a_json_integer(server: Server, value: Any) -> None:
    start_a_job(server)
    r = server.client.put("/api/workers/w1/max-jobs", json={"max_jobs": value})
    assert r.status_code == 422, r.text
    assert error(r)["message"].startswith("max_jobs: ")


def test_a_body_that_is_not_utf8_json_is_refused_with_422(server: Server) -> None:
    r = server.client.post(
        "/api/workflows", content=b"\xc5\xb3\xff", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422, r.text
    assert error(r)["code"] == "invalid_input"


def test_a_workflow_package_named_with_a_slash_is_refused(server: Server, tmp_path: Path) -> None:
    package = tmp_path / "Slashed"
    package.mkdir()
    for item in (WORKFLOWS / "Linear").iterdir():
        (package / item.name).write_bytes(item.read_bytes())
    metadata = json.loads((package / "metadata.json").read_text())
    (package / "metadata.json").write_text(json.dumps(metadata | {"name": "Scans/2026"}))
    r = server.client.post("/api/packages", content=folder_zip_bytes(package))
    assert r.status_code == 422, r.text
    found = error(r)
    assert found["code"] == "invalid_package"
    assert found["details"] == {"file": "metadata.json", "field": "name"}
    assert "no slash" in found["message"]
    assert server.client.get("/api/workflows").json() == []


def test_a_user_data_name_longer_than_255_bytes_is_refused_without_the_real_folder(
    server: Server, tmp_path: Path
) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    mapping = {"root": "/Scans/", "folder": str(folder)}
    server.client.put("/api/userdata/mappings", json=mapping).raise_for_status()
    scopes = [["list", "/Scans/"], ["read", "/Scans/"], ["write", "/Scans/"]]
    token = server.client.post("/api/userdata/tokens", json={"scopes": scopes}).json()["token"]
    long_name = "é" * 128  # 256 bytes in UTF-8
    for method, path in [
        ("GET", "/api/userdata/list"),
        ("GET", "/api/userdata/file"),
        ("PUT", "/api/userdata/file"),
    ]:
        suffix = "/" if path.endswith("list") else ""
        r = server.client.request(
            method,
            path,
            params={"path": f"/Scans/{long_name}{suffix}"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 422, (method, path, r.text)
        assert "longer than 255 bytes" in error(r)["message"]
        assert str(folder) not in r.text


@pytest.mark.parametrize(
    ("exception", "said", "hidden"),
    [
        (
            RuntimeError(
                "(psycopg.errors.NumericValueOutOfRange) integer out of range\n"
                "[SQL: SELECT secret FROM jobs WHERE serial = %(serial)s]\n"
                "[parameters: {'serial': 2147483648}]"
            ),
            "RuntimeError: (psycopg.errors.NumericValueOutOfRange) integer out of range",
            "SELECT",
        ),
        (
            OSError(36, "File name too long", "/srv/real/folder/scan.aim"),
            "OSError: File name too long",
            "/srv/real/folder",
        ),
    ],
)
def test_an_internal_error_shows_neither_sql_nor_a_path_on_the_server(
    server: Server, monkeypatch: pytest.MonkeyPatch, exception: Exception, said: str, hidden: str
) -> None:
    def fail() -> None:
        raise exception

    monkeypatch.setattr(server.ry.workflows, "list_all", fail)
    r = server.client.get("/api/workflows")
    assert r.status_code == 500
    assert error(r) == {
        "code": "internal_error",
        "message": f"internal error: {said}",
        "details": {},
    }
    assert hidden not in r.text


def test_the_openapi_document_lists_the_error_answers_of_every_route(server: Server) -> None:
    document = server.client.get("/openapi.json").json()
    error_answer = document["components"]["schemas"]["ErrorAnswer"]
    assert error_answer["required"] == ["error"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert {"401", "403", "404", "409", "422"} <= set(responses), (method, path)
            schema = responses["422"]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorAnswer"}, (method, path)


def test_a_user_data_name_that_is_not_utf8_is_left_out_of_the_listing_and_named_in_it(
    server: Server, tmp_path: Path
) -> None:
    """A name in bytes that are not UTF-8 (a Latin-1 name from an old share) has no
    virtual path: the listing leaves it out and says so, showing each undecodable byte as
    ``\\xNN``; a symbolic link to such a file reads under the link's own name."""
    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    os.close(os.open(os.path.join(os.fsencode(folder), b"scan\xe9.aim"), os.O_CREAT, 0o644))
    os.mkdir(os.path.join(os.fsencode(folder), b"r\xe9sultats"))
    os.symlink(b"scan\xe9.aim", os.path.join(os.fsencode(folder), b"link.aim"))
    mapping = {"root": "/Scans/", "folder": str(folder)}
    server.client.put("/api/userdata/mappings", json=mapping).raise_for_status()
    scopes = [["list", "/Scans/"], ["read", "/Scans/"]]
    token = server.client.post("/api/userdata/tokens", json={"scopes": scopes}).json()["token"]
    as_token = server.as_token(token)

    r = server.client.get("/api/userdata/list", params={"path": "/Scans/"}, headers=as_token)
    assert r.status_code == 200, r.text
    listing = r.json()
    assert [f["name"] for f in listing["files"]] == ["a.txt", "link.aim"]
    assert listing["folders"] == []
    assert listing["unnamable"] == [
        {"name": "r\\xe9sultats", "problem": "is not valid UTF-8; rename it to reach it"},
        {"name": "scan\\xe9.aim", "problem": "is not valid UTF-8; rename it to reach it"},
    ]
    r = server.client.get(
        "/api/userdata/file", params={"path": "/Scans/link.aim"}, headers=as_token
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"] == 'attachment; filename="link.aim"'
