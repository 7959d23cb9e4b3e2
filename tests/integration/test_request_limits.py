"""Request limits (runyard/server/limits.py): a body without a credential is not read, a
JSON body over its limit is refused with 413, streamed file routes keep their own limits."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi.testclient import TestClient

from runyard.server.app import create_app
from runyard.server.limits import CHECK_TOKEN_FROM, MAX_JSON_BODY
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
    def chunks() -> Iterator[bytes]:
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


def test_a_large_body_with_a_wrong_token_is_refused_before_it_is_read(server: Server) -> None:
    read = []

    def chunks() -> Iterator[bytes]:
        for _ in range(4):
            read.append(1)
            yield b" " * (1024 * 1024)

    wrong = {"Authorization": "Bearer ry_worker_not-a-token", "content-type": "application/json"}
    for body in (chunks(), b" " * (CHECK_TOKEN_FROM + 1)):  # of unknown length; declared
        answer = server.client.post("/api/workflows", content=body, headers=wrong)
        assert answer.status_code == 401, answer.text
        assert error(answer)["message"] == "the token is not valid (unknown or revoked)"
    assert len(read) <= 1, "the body was read (the client sends its first chunk anyway)"
    # A valid token: the large body reaches the handler (which finds it is no JSON).
    right = server.client.post(
        "/api/workflows",
        content=b" " * (CHECK_TOKEN_FROM + 1),
        headers={"content-type": "application/json"},
    )
    assert right.status_code == 422, right.text
