"""Request limits (runyard/server/limits.py): a body without a credential is not read, a
JSON body over its limit is refused with 413, streamed file routes keep their own limits."""

from __future__ import annotations

from fastapi.testclient import TestClient

from runyard.server.app import create_app
from runyard.server.limits import MAX_JSON_BODY
from tests.integration.conftest import Server, error


def test_a_body_without_any_credential_is_refused_unread(server: Server) -> None:
    answer = server.client.post(
        "/api/workflows", content=b"x" * 1000, headers={"Authorization": ""}
    )
    assert answer.status_code == 401 and "no token given" in error(answer)["message"]


def test_a_json_body_over_the_limit_is_refused(server: Server) -> None:
    declared = server.client.post(
        "/api/workflows",
        content=b" " * (MAX_JSON_BODY + 1),
        headers={"content-type": "application/json"},
    )
    assert declared.status_code == 413 and "larger than 32 MiB" in error(declared)["message"]


def test_a_streamed_body_over_the_limit_is_refused_without_its_length(server: Server) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b" " * (1024 * 1024)

    answer = server.client.post(
        "/api/workflows", content=chunks(), headers={"content-type": "application/json"}
    )
    assert answer.status_code == 413


def test_bodies_under_the_limit_and_log_ins_pass(server: Server) -> None:
    made = server.client.post("/api/workflows", json={"name": "Fine"})
    assert made.status_code == 200
    app = create_app(server.ry)
    with TestClient(app, raise_server_exceptions=False) as anonymous:
        login = anonymous.post("/ui/login", json={"name": "admin", "password": "wrong one!"})
        assert login.status_code == 403  # reached the handler: no password for admin
