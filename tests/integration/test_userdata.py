"""User Data through the HTTP API, on each backend: mappings (admins), scoped tokens, listing,
reading and writing, and every way of reaching outside what a token allows."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runyard import task
from runyard.client import Client, RemoteError
from runyard.compat import network, xfworkerutil
from runyard.operations.base import utcnow
from runyard.task import userdata
from tests.integration.conftest import Server, error, start_a_job


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ask_token(server: Server, *scopes: tuple[str, str], headers: Any = None) -> str:
    r = server.client.post(
        "/api/userdata/tokens", json={"scopes": [list(s) for s in scopes]}, headers=headers
    )
    assert r.status_code == 200, r.text
    token: str = r.json()["token"]
    return token


def listing(server: Server, token: str, path: str | None = None) -> Any:
    params = {"path": path} if path is not None else {}
    return server.client.get("/api/userdata/list", params=params, headers=bearer(token))


def read(server: Server, token: str, path: str) -> Any:
    return server.client.get("/api/userdata/file", params={"path": path}, headers=bearer(token))


def write(server: Server, token: str, path: str, data: bytes, **params: Any) -> Any:
    return server.client.put(
        "/api/userdata/file", params={"path": path, **params}, content=data, headers=bearer(token)
    )


@pytest.fixture
def scans(tmp_path: Path) -> Path:
    """A scanner's folder: nested folders, upper and lower case names, a write in progress,
    a name no virtual path can give, and symbolic links inside and out."""
    root = tmp_path / "scans"
    (root / "s1" / "Sub" / "deep").mkdir(parents=True)
    (root / "S2").mkdir()
    (root / "empty").mkdir()
    (root / "s1" / "A.AIM").write_bytes(b"AIM-1")
    (root / "s1" / "b.aim").write_bytes(b"aim-two")
    (root / "s1" / "Sub" / "deep" / "C.isq").write_bytes(b"isq")
    (root / "S2" / "readme.txt").write_text("hello")
    (root / "s1" / ".runyard-upload-0123").write_bytes(b"half")
    (root / "s1" / "back\\slash.txt").write_text("unnameable")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (root / "s1" / "link-out.txt").symlink_to(outside / "secret.txt")
    (root / "s1" / "dir-out").symlink_to(outside)
    (root / "s1" / "link-in.txt").symlink_to(root / "S2" / "readme.txt")
    (root / "s1" / "Sub" / "loop").symlink_to(root / "s1")  # a walker must not loop
    return root


@pytest.fixture
def mapped(server: Server, scans: Path) -> Server:
    r = server.client.put("/api/userdata/mappings", json={"root": "/Scans/", "folder": str(scans)})
    assert r.status_code == 200, r.text
    return server


# -- mappings -------------------------------------------------------------------------------------


def test_an_admin_maps_lists_and_unmaps_a_virtual_root(server: Server, scans: Path) -> None:
    client = server.client
    r = client.put("/api/userdata/mappings", json={"root": "/Scans/", "folder": str(scans)})
    assert r.status_code == 200 and r.json()["root"] == "/Scans/"
    assert r.json()["folder"] == str(scans)
    other = scans / "S2"
    client.put("/api/userdata/mappings", json={"root": "/Other/", "folder": str(other)})
    rows = client.get("/api/userdata/mappings").json()
    assert [(m["root"], m["folder"]) for m in rows] == [
        ("/Other/", str(other)),
        ("/Scans/", str(scans)),
    ]
    assert client.delete("/api/userdata/mappings", params={"root": "/Other/"}).status_code == 200
    assert [m["root"] for m in client.get("/api/userdata/mappings").json()] == ["/Scans/"]
    actions = [e["action"] for e in client.get("/api/activity").json()]
    assert "userdata.map" in actions and "userdata.unmap" in actions


def test_mapping_a_root_again_replaces_its_folder(server: Server, scans: Path) -> None:
    client = server.client
    client.put("/api/userdata/mappings", json={"root": "/Scans/", "folder": str(scans)})
    client.put("/api/userdata/mappings", json={"root": "/Scans/", "folder": str(scans / "s1")})
    rows = client.get("/api/userdata/mappings").json()
    assert [(m["root"], m["folder"]) for m in rows] == [("/Scans/", str(scans / "s1"))]


@pytest.mark.parametrize(
    ("folder", "message"),
    [
        ("missing", "does not exist on the server"),
        ("s1/A.AIM", "is not a folder"),
        ("relative/path", "is not an absolute path"),
    ],
)
def test_mapping_needs_an_existing_folder_given_by_its_absolute_path(
    server: Server, scans: Path, folder: str, message: str
) -> None:
    real = folder if folder == "relative/path" else str(scans / folder)
    r = server.client.put("/api/userdata/mappings", json={"root": "/Scans/", "folder": real})
    assert r.status_code == 422 and message in error(r)["message"]


@pytest.mark.parametrize(
    ("root", "message"),
    [
        ("/", "cannot be a virtual root"),
        ("Scans/", "does not start with '/'"),
        ("/Scans", "is a file path"),
        ("/Scans/../x/", "'.' or '..'"),
        ("/Scans/%2e%2e/", "'.' or '..'"),
    ],
)
def test_mapping_refuses_a_root_that_is_not_a_named_folder(
    server: Server, scans: Path, root: str, message: str
) -> None:
    r = server.client.put("/api/userdata/mappings", json={"root": root, "folder": str(scans)})
    assert r.status_code == 422 and message in error(r)["message"]


def test_virtual_roots_cannot_nest(server: Server, scans: Path) -> None:
    client = server.client
    client.put("/api/userdata/mappings", json={"root": "/Lab/Scans/", "folder": str(scans)})
    for root in ("/Lab/Scans/2026/", "/Lab/"):  # inside it, and around it
        r = client.put("/api/userdata/mappings", json={"root": root, "folder": str(scans / "S2")})
        assert r.status_code == 409 and "cannot nest" in error(r)["message"]
    beside = client.put("/api/userdata/mappings", json={"root": "/Lab/Sc/", "folder": str(scans)})
    assert beside.status_code == 200


def test_the_data_directory_cannot_be_mapped(server: Server, tmp_path: Path) -> None:
    data_dir = server.ry.settings.data_dir
    for folder in (data_dir, tmp_path):  # the data directory, and a folder holding it
        r = server.client.put("/api/userdata/mappings", json={"root": "/X/", "folder": str(folder)})
        assert r.status_code == 422 and "data directory" in error(r)["message"]


def test_unmapping_a_root_that_is_not_mapped_says_so(server: Server) -> None:
    r = server.client.delete("/api/userdata/mappings", params={"root": "/Nope/"})
    assert r.status_code == 404 and "is not a mapped User Data root" in error(r)["message"]


def test_only_admins_manage_mappings(mapped: Server, scans: Path) -> None:
    job = start_a_job(mapped)
    client = mapped.client
    for headers in (job.as_job, job.as_worker):
        assert client.get("/api/userdata/mappings", headers=headers).status_code == 403
        r = client.put(
            "/api/userdata/mappings", json={"root": "/J/", "folder": str(scans)}, headers=headers
        )
        assert r.status_code == 403
        r = client.delete("/api/userdata/mappings", params={"root": "/Scans/"}, headers=headers)
        assert r.status_code == 403


# -- tokens ---------------------------------------------------------------------------------------


def test_a_job_gets_a_token_for_its_scopes_that_lasts_fifteen_minutes(mapped: Server) -> None:
    job = start_a_job(mapped)
    before = utcnow()
    r = mapped.client.post(
        "/api/userdata/tokens",
        json={"scopes": [["list", "/Scans/"], ["read", "/Scans/s1/A.AIM"]]},
        headers=job.as_job,
    )
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["token"].startswith("ry_ud_")
    assert answer["scopes"] == [["list", "/Scans/"], ["read", "/Scans/s1/A.AIM"]]
    lifetime = datetime.fromisoformat(answer["expires_at"]) - before
    assert timedelta(minutes=14) < lifetime <= timedelta(minutes=15)


def test_a_worker_token_cannot_ask_for_a_user_data_token(mapped: Server) -> None:
    job = start_a_job(mapped)
    r = mapped.client.post(
        "/api/userdata/tokens", json={"scopes": [["list", "/Scans/"]]}, headers=job.as_worker
    )
    assert r.status_code == 403


@pytest.mark.parametrize(
    ("scopes", "status", "message"),
    [
        ([], 422, "at least one scope"),
        ([["delete", "/Scans/"]], 422, "unknown User Data operation 'delete'"),
        ([["list", "/Scans/s1/A.AIM"]], 422, "is a file path"),
        ([["read", "/Scans/../etc/"]], 422, "'.' or '..'"),
        ([["read", "/Scans/x", "extra"]], 422, "a scope is a pair"),
        ([["read", "/Elsewhere/"]], 404, "no User Data root covers /Elsewhere/"),
        ([["read", "/"]], 404, "mapped roots: /Scans/"),
        ([["read", f"/Scans/{i}"] for i in range(101)], 422, "too many"),
    ],
)
def test_a_token_is_refused_for_scopes_that_are_not_valid(
    mapped: Server, scopes: list[list[str]], status: int, message: str
) -> None:
    r = mapped.client.post("/api/userdata/tokens", json={"scopes": scopes})
    assert r.status_code == status, r.text
    assert message in error(r)["message"]


def test_a_user_data_token_is_refused_by_every_other_endpoint(mapped: Server) -> None:
    token = ask_token(mapped, ("list", "/Scans/"))
    for path in ("/api/workflows", "/api/userdata/mappings", "/api/files/" + "0" * 32):
        r = mapped.client.get(path, headers=bearer(token))
        assert (
            r.status_code == 401
            and "valid only for the User Data file calls" in (error(r)["message"])
        )
    r = mapped.client.post(
        "/api/userdata/tokens", json={"scopes": [["list", "/Scans/"]]}, headers=bearer(token)
    )
    assert r.status_code == 401  # it cannot mint wider tokens either


# -- listing, reading, writing --------------------------------------------------------------------


def test_listing_gives_files_and_folders_sorted_by_name(mapped: Server, scans: Path) -> None:
    token = ask_token(mapped, ("list", "/Scans/"))
    r = listing(mapped, token, "/Scans/s1/")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["path"] == "/Scans/s1/"
    # no write in progress, no unnameable name, no symbolic link out of the root or to a folder
    assert [(f["name"], f["size"]) for f in body["files"]] == [
        ("A.AIM", 5),
        ("b.aim", 7),
        ("link-in.txt", 5),
    ]
    assert body["folders"] == [{"name": "Sub", "virtual_name": "Sub/"}]
    mtime = datetime.fromisoformat(body["files"][0]["mtime"])
    assert abs(mtime.timestamp() - (scans / "s1" / "A.AIM").stat().st_mtime) < 1
    top = listing(mapped, token, "/Scans/").json()
    assert [f["name"] for f in top["folders"]] == ["S2", "empty", "s1"]
    assert top["files"] == []


def test_folder_names_fit_the_compat_virtual_path_functions(mapped: Server) -> None:
    token = ask_token(mapped, ("list", "/Scans/"))
    found = []

    def walk(folder: str) -> None:
        body = listing(mapped, token, folder).json()
        found.extend(network.virtualpath_join_file(folder, f["name"]) for f in body["files"])
        for sub in body["folders"]:
            walk(network.virtualpath_join_folder(folder, sub["virtual_name"]))

    walk("/Scans/")
    assert found == [
        "/Scans/S2/readme.txt",
        "/Scans/s1/A.AIM",
        "/Scans/s1/b.aim",
        "/Scans/s1/link-in.txt",
        "/Scans/s1/Sub/deep/C.isq",
    ]


def test_listing_without_a_path_lists_the_tokens_one_list_folder(mapped: Server) -> None:
    token = ask_token(mapped, ("list", "/Scans/S2/"), ("read", "/Scans/"))
    body = listing(mapped, token).json()
    assert body["path"] == "/Scans/S2/" and [f["name"] for f in body["files"]] == ["readme.txt"]
    two = ask_token(mapped, ("list", "/Scans/S2/"), ("list", "/Scans/s1/"))
    r = listing(mapped, two)
    assert r.status_code == 422 and "this token has 2 list scopes" in error(r)["message"]


def test_listing_a_missing_folder_or_a_file_says_so(mapped: Server) -> None:
    token = ask_token(mapped, ("list", "/Scans/"))
    missing = listing(mapped, token, "/Scans/nope/")
    assert missing.status_code == 404 and "no folder /Scans/nope/" in error(missing)["message"]
    file = listing(mapped, token, "/Scans/s1/")  # fine
    assert file.status_code == 200
    r = listing(mapped, token, "/Scans/s1/A.AIM")
    assert r.status_code == 422 and "is a file path" in error(r)["message"]


def test_reading_streams_the_file_with_its_checksum(mapped: Server) -> None:
    job = start_a_job(mapped)
    token = ask_token(mapped, ("read", "/Scans/s1/"), headers=job.as_job)
    r = read(mapped, token, "/Scans/s1/Sub/deep/C.isq")
    assert r.status_code == 200 and r.content == b"isq"
    assert r.headers["x-runyard-sha256"] == hashlib.sha256(b"isq").hexdigest()
    assert r.headers["content-length"] == "3"
    missing = read(mapped, token, "/Scans/s1/none.aim")
    assert missing.status_code == 404 and "no file /Scans/s1/none.aim" in error(missing)["message"]
    folder = read(mapped, token, "/Scans/s1/Sub")
    assert folder.status_code == 422 and "is not a file" in error(folder)["message"]


def test_writing_creates_the_file_and_its_folders_once_it_is_whole(
    mapped: Server, scans: Path
) -> None:
    job = start_a_job(mapped)
    token = ask_token(mapped, ("write", "/Scans/results/"), headers=job.as_job)
    data = b"value\n42\n"
    r = write(
        mapped,
        token,
        "/Scans/results/2026/table.csv",
        data,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    assert r.status_code == 200, r.text
    assert r.json()["size"] == len(data) and r.json()["path"] == "/Scans/results/2026/table.csv"
    assert r.json()["sha256"] == hashlib.sha256(data).hexdigest()
    folder = scans / "results" / "2026"
    assert (folder / "table.csv").read_bytes() == data
    assert sorted(p.name for p in folder.iterdir()) == ["table.csv"]  # no temporary file left
    activity = mapped.client.get("/api/activity").json()
    entries = [e for e in activity if e["action"] == "userdata.write"]
    assert entries[0]["actor"] == f"job {job.serial}"
    assert "wrote /Scans/results/2026/table.csv (9 bytes)" in entries[0]["message"]


def test_writing_replaces_an_existing_file(mapped: Server, scans: Path) -> None:
    token = ask_token(mapped, ("write", "/Scans/s1/b.aim"))
    assert write(mapped, token, "/Scans/s1/b.aim", b"new").status_code == 200
    assert (scans / "s1" / "b.aim").read_bytes() == b"new"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"size": 99}, "has the wrong size: received 3 bytes, 99 were announced"),
        ({"sha256": "0" * 64}, "is corrupt"),
        ({"sha256": "nothex"}, "sha256 must be the file's SHA-256"),
    ],
)
def test_a_write_that_does_not_match_its_size_or_checksum_leaves_the_file_as_it_was(
    mapped: Server, scans: Path, params: dict[str, Any], message: str
) -> None:
    token = ask_token(mapped, ("write", "/Scans/s1/"))
    r = write(mapped, token, "/Scans/s1/b.aim", b"bad", **params)
    assert r.status_code == 422 and message in error(r)["message"]
    assert (scans / "s1" / "b.aim").read_bytes() == b"aim-two"
    assert sorted(p.name for p in (scans / "s1").iterdir() if p.name.startswith(".runyard")) == [
        ".runyard-upload-0123"  # the fixture's; none of this write
    ]


def test_writing_over_a_folder_or_to_a_reserved_name_is_refused(mapped: Server) -> None:
    token = ask_token(mapped, ("write", "/Scans/"))
    folder = write(mapped, token, "/Scans/s1/Sub", b"x")
    assert folder.status_code == 409 and "is a folder" in error(folder)["message"]
    reserved = write(mapped, token, "/Scans/s1/.runyard-upload-x", b"x")
    assert reserved.status_code == 422 and "reserved" in error(reserved)["message"]
    trailing = write(mapped, token, "/Scans/s1/", b"x")
    assert trailing.status_code == 422 and "is a folder path" in error(trailing)["message"]


# -- refusals -------------------------------------------------------------------------------------

BAD_PATHS = [
    ("/Scans/../etc/passwd", "'.' or '..'"),
    ("/Scans/s1/../../outside/secret.txt", "'.' or '..'"),
    ("/../Scans/s1/A.AIM", "'.' or '..'"),
    ("/Scans/s1/..", "'.' or '..'"),
    ("/Scans/./s1/A.AIM", "'.' or '..'"),
    ("/Scans/%2e%2e/outside/secret.txt", "'.' or '..'"),
    ("/Scans/%2E%2e/outside/secret.txt", "'.' or '..'"),
    ("/Scans/%252e%252e/outside/secret.txt", "'.' or '..'"),
    ("/Scans/s1/..%2f..%2foutside/secret.txt", "percent-encoded '/'"),
    ("etc/passwd", "does not start with '/'"),
    ("C:/Windows/win.ini", "does not start with '/'"),
    ("//etc/passwd", "empty name"),
    ("/Scans//etc/passwd", "empty name"),
    ("/Scans/s1\\..\\..\\outside\\secret.txt", "backslash"),
    ("\\\\server\\share\\x", "does not start with '/'"),
    ("/Scans/s1/A.AIM\0.txt", "NUL"),
]


def all_scopes(server: Server) -> str:
    return ask_token(server, ("list", "/Scans/"), ("read", "/Scans/"), ("write", "/Scans/"))


@pytest.mark.parametrize(("path", "message"), BAD_PATHS)
def test_paths_that_could_leave_the_root_are_refused_by_every_file_call(
    mapped: Server, scans: Path, path: str, message: str
) -> None:
    token = all_scopes(mapped)
    folder_path = path if path.endswith("/") else path + "/"
    for r in (
        listing(mapped, token, folder_path),
        read(mapped, token, path.rstrip("/") or path),
        write(mapped, token, path.rstrip("/") or path, b"evil"),
    ):
        assert r.status_code == 422, (path, r.text)
        assert message in error(r)["message"], (path, r.text)
    assert (scans.parent / "outside" / "secret.txt").read_text() == "secret"
    assert not list(scans.parent.glob("**/evil*"))


def test_percent_encoded_dots_in_the_raw_url_are_refused(mapped: Server) -> None:
    token = all_scopes(mapped)
    for query in ("path=/Scans/%2e%2e/outside/", "path=/Scans/%252e%252e/outside/"):
        r = mapped.client.get(f"/api/userdata/list?{query}", headers=bearer(token))
        assert r.status_code == 422 and "'.' or '..'" in error(r)["message"], r.text


def test_a_path_under_no_mapping_is_refused(mapped: Server) -> None:
    token = all_scopes(mapped)
    mapped.client.delete("/api/userdata/mappings", params={"root": "/Scans/"})
    for r in (listing(mapped, token, "/Scans/"), read(mapped, token, "/Scans/s1/A.AIM")):
        assert r.status_code == 404 and "no User Data root covers" in error(r)["message"]


def test_symbolic_links_out_of_the_root_are_refused(mapped: Server, scans: Path) -> None:
    token = all_scopes(mapped)
    for r in (
        read(mapped, token, "/Scans/s1/link-out.txt"),
        read(mapped, token, "/Scans/s1/dir-out/secret.txt"),
        listing(mapped, token, "/Scans/s1/dir-out/"),
        write(mapped, token, "/Scans/s1/dir-out/planted.txt", b"x"),
        write(mapped, token, "/Scans/s1/dir-out/new/planted.txt", b"x"),
        write(mapped, token, "/Scans/s1/link-out.txt", b"x"),
    ):
        assert r.status_code == 403 and "leads out of its User Data root" in error(r)["message"]
    outside = scans.parent / "outside"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "secret"
    assert read(mapped, token, "/Scans/s1/link-in.txt").content == b"hello"  # inside: fine


def test_a_symbolic_link_to_a_folder_inside_is_not_listed_but_can_be_named(
    mapped: Server,
) -> None:
    token = all_scopes(mapped)
    assert listing(mapped, token, "/Scans/s1/Sub/").json()["folders"] == [
        {"name": "deep", "virtual_name": "deep/"}
    ]
    assert read(mapped, token, "/Scans/s1/Sub/loop/A.AIM").content == b"AIM-1"


def test_a_root_folder_that_is_itself_a_symbolic_link_works(
    server: Server, scans: Path, tmp_path: Path
) -> None:
    link = tmp_path / "scans-link"
    link.symlink_to(scans)
    server.client.put("/api/userdata/mappings", json={"root": "/Scans/", "folder": str(link)})
    token = ask_token(server, ("read", "/Scans/"))
    assert read(server, token, "/Scans/s1/A.AIM").content == b"AIM-1"


@pytest.mark.parametrize(
    ("scope", "call"),
    [
        (("list", "/Scans/"), "read"),
        (("list", "/Scans/"), "write"),
        (("read", "/Scans/"), "list"),
        (("read", "/Scans/"), "write"),
        (("write", "/Scans/"), "read"),
        (("write", "/Scans/"), "list"),
    ],
)
def test_a_token_is_refused_for_another_operation(
    mapped: Server, scope: tuple[str, str], call: str
) -> None:
    token = ask_token(mapped, scope)
    r = {
        "list": lambda: listing(mapped, token, "/Scans/s1/"),
        "read": lambda: read(mapped, token, "/Scans/s1/A.AIM"),
        "write": lambda: write(mapped, token, "/Scans/s1/A.AIM", b"x"),
    }[call]()
    assert r.status_code == 403 and f"does not allow {call} on" in error(r)["message"]


@pytest.mark.parametrize(
    ("scope", "path"),
    [
        ("/Scans/s1/", "/Scans/S2/readme.txt"),  # a sibling folder
        ("/Scans/s1/", "/Scans/s10/a.aim"),  # a name that only starts the same
        ("/Scans/s1/A.AIM", "/Scans/s1/A.AIM.bak"),  # a file scope covers that file only
        ("/Scans/s1/A.AIM", "/Scans/s1/a.aim"),  # names are case-sensitive
        ("/Scans/s1/Sub/", "/Scans/s1/b.aim"),  # above the scope
    ],
)
def test_a_token_is_refused_outside_its_paths(mapped: Server, scope: str, path: str) -> None:
    token = ask_token(mapped, ("read", scope))
    r = read(mapped, token, path)
    assert r.status_code == 403 and f"does not allow read on {path}" in error(r)["message"]
    listed = ask_token(mapped, ("list", "/Scans/s1/"))
    r = listing(mapped, listed, "/Scans/")
    assert r.status_code == 403


def test_an_expired_token_is_refused(mapped: Server) -> None:
    token = ask_token(mapped, ("read", "/Scans/"))
    manager = mapped.ry.userdata
    start = utcnow()
    manager.now = lambda: start + timedelta(minutes=14)
    assert read(mapped, token, "/Scans/s1/A.AIM").status_code == 200
    manager.now = lambda: start + timedelta(minutes=15, seconds=1)
    r = read(mapped, token, "/Scans/s1/A.AIM")
    assert r.status_code == 401 and "the User Data token expired at" in error(r)["message"]


def _tampered(token: str) -> list[str]:
    body, signature = token.removeprefix("ry_ud_").split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["scopes"] = [["read", "/"]]
    payload["exp"] += 3600
    wider = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    return [
        f"ry_ud_{wider}.{signature}",  # other scopes and expiry, the old signature
        f"ry_ud_{body}.{flipped}",  # one character of the signature changed
        f"ry_ud_{body}.",  # no signature
        f"ry_ud_{body}",  # no dot
    ]


def test_a_tampered_token_is_refused(mapped: Server) -> None:
    token = ask_token(mapped, ("read", "/Scans/s1/A.AIM"))
    for bad in _tampered(token):
        r = read(mapped, bad, "/Scans/s1/A.AIM")
        assert r.status_code == 401, bad
        assert (
            "signature does not match" in error(r)["message"]
            or "malformed" in (error(r)["message"])
        )


def test_a_token_signed_by_another_server_is_refused(mapped: Server) -> None:
    token = ask_token(mapped, ("read", "/Scans/"))
    mapped.ry.auth._secret = os.urandom(32)  # as if another installation had signed it
    r = read(mapped, token, "/Scans/s1/A.AIM")
    assert r.status_code == 401 and "signature does not match" in error(r)["message"]


def test_the_file_calls_accept_only_user_data_tokens(mapped: Server) -> None:
    job = start_a_job(mapped)
    for headers in (None, job.as_job, job.as_worker):  # None: the admin token
        for r in (
            mapped.client.get("/api/userdata/list", params={"path": "/Scans/"}, headers=headers),
            mapped.client.get(
                "/api/userdata/file", params={"path": "/Scans/s1/A.AIM"}, headers=headers
            ),
            mapped.client.put(
                "/api/userdata/file", params={"path": "/Scans/x"}, content=b"x", headers=headers
            ),
        ):
            assert r.status_code == 403 and "accept only a User Data token" in (error(r)["message"])
    r = mapped.client.get(
        "/api/userdata/list", params={"path": "/Scans/"}, headers={"Authorization": ""}
    )
    assert r.status_code == 401 and "no token given" in error(r)["message"]


# -- task scripts: runyard.task.userdata and the compat functions ----------------------------------


def in_process_client(server: Server, token: str) -> Client:
    """A ``runyard.client.Client`` that talks to the in-process server with ``token``."""
    client = Client("http://testserver", token)
    client._http.close()
    client._http = TestClient(server.client.app, headers=bearer(token))  # type: ignore[assignment]
    return client


@pytest.fixture
def job(mapped: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> task.CurrentJob:
    """``runyard.task.current_job()`` as under a worker, its calls going to the in-process
    server (the job's own, and the User Data calls made with User Data tokens)."""
    running = start_a_job(mapped)
    workdir = tmp_path / "job-dir"
    workdir.mkdir()
    (workdir / "job.json").write_text(json.dumps({"inputs": {}, "metadata": {}}))
    for name, value in {
        "RUNYARD_SERVER": "http://testserver",
        "RUNYARD_JOB_SERIAL": str(running.serial),
        "RUNYARD_JOB_TOKEN": running.job_token,
        "RUNYARD_JOB_FILE": str(workdir / "job.json"),
        "RUNYARD_RESULT_FILE": str(workdir / "result.json"),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(workdir)
    monkeypatch.setattr(task, "_current", [])
    current = task.current_job()
    current.__dict__["_shared_client"] = in_process_client(mapped, running.job_token)
    monkeypatch.setattr(userdata, "_client", lambda token, _: in_process_client(mapped, token))
    return current


def test_a_script_lists_reads_and_writes_user_data(job: task.CurrentJob, scans: Path) -> None:
    token = userdata.userdata_token(
        [("list", "/Scans/s1/"), ("read", "/Scans/s1/"), ("write", "/Scans/out/")]
    )
    listed = userdata.list_folder(token, "/Scans/s1/")
    assert listed.path == "/Scans/s1/"
    assert [f.name for f in listed.files] == ["A.AIM", "b.aim", "link-in.txt"]
    assert listed.files[0].size == 5 and listed.files[0].mtime.tzinfo is not None
    assert listed.folders == (userdata.FolderItem(name="Sub", virtual_name="Sub/"),)
    assert userdata.list_folder(token, "/Scans/s1/Sub/deep/").path == "/Scans/s1/Sub/deep/"

    local = userdata.read_file(token, "/Scans/s1/A.AIM", job.working_dir)
    assert local == job.working_dir / "A.AIM" and local.read_bytes() == b"AIM-1"
    assert not list(job.working_dir.glob("*.partial"))

    source = job.working_dir / "summary.txt"
    source.write_text("2 scans\n")
    answer = userdata.write_file(token, "/Scans/out/summary.txt", source)
    assert answer["size"] == 8 and (scans / "out" / "summary.txt").read_text() == "2 scans\n"


def test_a_script_downloads_a_user_data_file_value(job: task.CurrentJob) -> None:
    value = {"type": "ForeignFile", "source": "userdata", "virtualpath": "/Scans/s1/"}
    by_folder = job.download(value | {"filename": "b.aim"})
    assert by_folder == job.working_dir / "b.aim" and by_folder.read_bytes() == b"aim-two"
    by_path = job.download(
        {"source": "userdata", "virtualpath": "/Scans/s1/Sub/deep/C.isq", "filename": "C.isq"},
        job.working_dir / "inputs",
    )
    assert by_path == job.working_dir / "inputs" / "C.isq" and by_path.read_bytes() == b"isq"
    for bad in (
        {"source": "userdata", "filename": "b.aim"},
        {"source": "userdata", "virtualpath": "/Scans/s1/", "filename": ".."},
        {"source": "userdata", "virtualpath": "/Scans/../s1/b.aim"},
    ):
        with pytest.raises(task.TaskError):
            job.download(bad)


def test_a_script_reads_an_image_header_through_the_server_without_the_pixels(
    job: task.CurrentJob, mapped: Server, scans: Path
) -> None:
    import numpy as np

    from runyard.images import Image
    from runyard.images.scanco_writer import write_aim

    pixels = np.zeros((6, 5, 4), dtype=np.int16)
    write_aim(scans / "s1" / "P.AIM;1", Image.from_array(pixels, spacing=(0.03, 0.03, 0.03)))
    token = userdata.userdata_token([("read", "/Scans/s1/")])
    header = userdata.image_header(token, "/Scans/s1/P.AIM;1")
    assert header["size"] == [6, 5, 4] and header["data_type"] == "int16"
    assert header["spacing"] == pytest.approx([0.03, 0.03, 0.03])

    def refused(path: str, scope_token: str = token) -> dict[str, Any]:
        r = mapped.client.get(
            "/api/userdata/image-header", params={"path": path}, headers=bearer(scope_token)
        )
        assert r.status_code >= 400, r.text
        return error(r) | {"status": r.status_code}

    corrupt = refused("/Scans/s1/A.AIM")  # five bytes, not an AIM file
    assert corrupt["status"] == 422 and corrupt["message"].startswith("/Scans/s1/A.AIM: ")
    assert str(scans) not in corrupt["message"], "the server's own path is not shown"
    assert refused("/Scans/S2/readme.txt")["status"] == 403, "outside the token's scope"
    listing_only = userdata.userdata_token([("list", "/Scans/s1/")])
    assert refused("/Scans/s1/P.AIM;1", listing_only)["status"] == 403
    assert refused("/Scans/s1/none.aim")["status"] == 404


def test_a_script_gets_the_servers_refusals_as_errors(job: task.CurrentJob) -> None:
    token = userdata.userdata_token([("list", "/Scans/s1/")])
    with pytest.raises(RemoteError, match=re.escape("does not allow read on /Scans/s1/A.AIM")):
        userdata.read_file(token, "/Scans/s1/A.AIM", job.working_dir)
    with pytest.raises(RemoteError, match="no User Data root covers /Nope/"):
        userdata.userdata_token([("list", "/Nope/")])
    with pytest.raises(task.TaskError, match="an operation of list, read, write"):
        userdata.userdata_token([("delete", "/Scans/")])
    with pytest.raises(task.TaskError, match=re.escape("'.' or '..'")):
        userdata.userdata_token([("read", "/Scans/%2e%2e/")])


def test_the_compat_functions_walk_a_folder_tree_and_download_a_file(
    job: task.CurrentJob,
) -> None:
    worker = xfworkerutil.XFWorkerJob()
    connection = xfworkerutil.ServerConnection(client=job.client(), job_serial=job.serial)

    def search(folder: str) -> list[dict[str, Any]]:
        token = xfworkerutil.get_xf_userdata_token(connection, [("list", folder)])
        files, folders = network.list_files_and_folders_on_filestorage(token)
        for item in files:
            item["virtualpath"] = network.virtualpath_join_file(folder, item["name"])
        for sub in folders:
            files.extend(search(network.virtualpath_join_folder(folder, sub["virtual_name"])))
        return files

    found = search("/Scans/")
    assert [f["virtualpath"] for f in found] == [
        "/Scans/S2/readme.txt",
        "/Scans/s1/A.AIM",
        "/Scans/s1/b.aim",
        "/Scans/s1/link-in.txt",
        "/Scans/s1/Sub/deep/C.isq",
    ]
    assert set(found[0]) == {"name", "size", "mtime", "virtualpath"}
    item = found[-1]
    path = worker.download_input_file(
        dict(
            type="ForeignFile",
            source="userdata",
            virtualpath=item["virtualpath"],
            filename=item["name"],
        )
    )
    assert path == job.working_dir / "C.isq" and path.read_bytes() == b"isq"
