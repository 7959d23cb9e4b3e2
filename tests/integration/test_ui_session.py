"""The web UI's session through HTTP: log in with the admin token, the HTTP-only session
cookie, the CSRF header that every state change made with the cookie needs, log out; the
UI's pages and their security headers."""

from __future__ import annotations

from fastapi.testclient import TestClient

from runyard.server.deps import CSRF_HEADER, SESSION_COOKIE
from tests.integration.conftest import Server, start_jobs


def log_in(server: Server) -> tuple[TestClient, str]:
    """The server's client without its bearer token, logged in with the cookie; the CSRF."""
    client = server.client
    token = client.headers.pop("Authorization").removeprefix("Bearer ")
    answer = client.post("/ui/login", json={"token": token})
    assert answer.status_code == 200, answer.text
    return client, answer.json()["csrf"]


def test_log_in_sets_an_http_only_strict_session_cookie(server: Server) -> None:
    client = server.client
    token = client.headers.pop("Authorization").removeprefix("Bearer ")
    answer = client.post("/ui/login", json={"token": token})
    assert answer.status_code == 200
    assert answer.json()["kind"] == "admin" and len(answer.json()["csrf"]) == 64
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=ry_session_")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert client.get("/ui/session").json()["csrf"] == answer.json()["csrf"]
    assert client.get("/api/workflows").status_code == 200


def test_state_changes_with_the_cookie_need_the_csrf_header(server: Server) -> None:
    start_jobs(server, 1)
    client, csrf = log_in(server)
    for headers in ({}, {CSRF_HEADER: "0" * 64}):
        refused = client.post("/api/workflows/Linear/stop", headers=headers)
        assert refused.status_code == 403
        error = refused.json()["error"]
        assert error["code"] == "forbidden" and "CSRF token" in error["message"]
        refused = client.post(
            "/api/workflows/Linear/runs",
            json={"task": "Source", "outputs": {"value": 1}, "name": "forged"},
            headers=headers,
        )
        assert refused.status_code == 403
    assert client.get("/api/workflows/Linear").json()["state"] == "Started"
    names = [r["name"] for r in client.get("/api/workflows/Linear/runs").json()["runs"]]
    assert "forged" not in names
    stopped = client.post("/api/workflows/Linear/stop", headers={CSRF_HEADER: csrf})
    assert stopped.status_code == 200 and stopped.json()["state"] == "Draft"


def test_log_out_needs_the_csrf_header_and_ends_the_session(server: Server) -> None:
    client, csrf = log_in(server)
    cookie = client.cookies[SESSION_COOKIE]
    assert client.post("/ui/logout").status_code == 403
    assert client.get("/api/workflows").status_code == 200
    assert client.post("/ui/logout", headers={CSRF_HEADER: csrf}).status_code == 200
    client.cookies.set(SESSION_COOKIE, cookie)  # a copy kept by an attacker
    ended = client.get("/api/workflows")
    assert ended.status_code == 401 and "log in again" in ended.json()["error"]["message"]
    assert client.get("/ui/session").status_code == 401


def test_log_in_refuses_other_tokens_and_other_sites(server: Server) -> None:
    client = server.client
    admin = client.headers.pop("Authorization")
    worker = client.post("/api/tokens/worker", json={"name": "w"}, headers={"Authorization": admin})
    assert client.post("/ui/login", json={"token": "ry_admin_wrong"}).status_code == 401
    refused = client.post("/ui/login", json={"token": worker.json()["token"]})
    assert refused.status_code == 403 and "personal token" in refused.json()["error"]["message"]
    other_site = client.post(
        "/ui/login",
        json={"token": admin.removeprefix("Bearer ")},
        headers={"Origin": "https://evil.example"},
    )
    assert other_site.status_code == 403
    assert SESSION_COOKIE not in client.cookies
    # A session token is no bearer token.
    session = client.post("/ui/login", json={"token": admin.removeprefix("Bearer ")})
    as_bearer = {"Authorization": f"Bearer {session.cookies[SESSION_COOKIE]}"}
    client.cookies.clear()
    assert client.get("/api/workflows", headers=as_bearer).status_code == 401


def test_the_ui_page_and_its_files_are_served_with_security_headers(server: Server) -> None:
    client = server.client
    redirect = client.get("/", follow_redirects=False)
    assert redirect.status_code == 307 and redirect.headers["location"] == "/ui/"
    page = client.get("/ui/")
    assert page.status_code == 200 and '<script type="module"' in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    script = client.get("/ui/static/js/app.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "content-security-policy" not in client.get("/openapi.json").headers
