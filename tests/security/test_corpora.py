"""The security corpora of issue 15: attack strings sent as real requests to the real app (in
process, on SQLite), each answered with its exact refusal (status, error code, a message that
names the problem) and leaving nothing changed or leaked (no server path or SQL in messages,
no file written outside where it belongs).

1. Path traversal: User Data paths, symbolic links out of a mapped folder, file store ids and
   upload names, package entries and the names that become package folders.
2. Tokens: job, User Data, personal, session and worker tokens, changed, cut, expired, revoked
   or used where they do not belong.
3. Zip bombs: packages that expand hugely, by one entry, many entries or a lying header.
4. CSRF: state changes with the session cookie but no or a wrong CSRF header; log ins posted
   from another site.
5. Bodies: over the JSON limit, nested 100,000 deep, large and unauthenticated.

One server serves the whole module (starting one takes most of a second); each case makes
the objects it changes, so cases do not depend on one another.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import struct
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from runyard.operations import Runyard
from runyard.operations.base import utcnow
from runyard.packages import folder_zip_bytes, read_package_bytes, write_files
from runyard.server.app import create_app
from runyard.server.deps import CSRF_HEADER, SESSION_COOKIE
from runyard.server.limits import MAX_JSON_BODY
from runyard.settings import Settings
from tests.conftest import TASK_TYPES, WORKFLOWS
from tests.integration.conftest import RunningJob, error

ALICE_PASSWORD = "alice's password"
SECRET = b"what lies outside the mapped folder"


@dataclass
class Yard:
    """The module's server: its admin client, its installation and where its files are."""

    client: TestClient  # authenticated as the admin
    ry: Runyard
    root: Path  # everything of this server lives below it
    scans: Path  # mapped as /Scans/
    outside: Path  # beside the mapped folder: never to be reached through it
    userdata_token: str  # list, read and write on /Scans/
    worker_token: str  # of the registered worker w1
    alice_token: str  # a personal token of the user alice (not an admin)

    @property
    def data(self) -> Path:
        return self.ry.settings.data_dir

    @property
    def as_worker(self) -> dict[str, str]:
        return bearer(self.worker_token)


def bearer(token: str | bytes) -> dict[str, Any]:
    return {
        "Authorization": (b"Bearer " + token) if isinstance(token, bytes) else f"Bearer {token}"
    }


@pytest.fixture(scope="module")
def yard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Yard]:
    root = tmp_path_factory.mktemp("corpora")
    settings = Settings(
        data_dir=root / "data", database_url=f"sqlite:///{root / 'runyard.db'}", lease_seconds=600
    )
    ry = Runyard(settings).open()
    try:
        token = ry.auth.ensure_admin_token()
        assert token is not None
        with TestClient(create_app(ry), raise_server_exceptions=False) as client:
            client.headers["Authorization"] = f"Bearer {token}"
            yield _populate(client, ry, root)
    finally:
        ry.close()


def _populate(client: TestClient, ry: Runyard, root: Path) -> Yard:
    """The test packages and the started workflow Linear, a worker, the user alice, and a
    mapped User Data folder with symbolic links that lead out of it."""

    def call(method: str, path: str, **kwargs: Any) -> Any:
        answer = client.request(method, path, **kwargs)
        assert answer.status_code == 200, (method, path, answer.text)
        return answer.json()

    for folder in [*sorted(TASK_TYPES.iterdir()), WORKFLOWS / "Linear"]:
        call("POST", "/api/packages", content=folder_zip_bytes(folder))
    call("POST", "/api/workflows/Linear/start")
    worker_token = call("POST", "/api/tokens/worker", json={"name": "w1"})["token"]
    call(
        "POST",
        "/api/workers/register",
        json={"name": "w1", "max_jobs": 200},
        headers=bearer(worker_token),
    )
    call("POST", "/api/users", json={"name": "alice", "password": ALICE_PASSWORD})
    alice = call("POST", "/api/tokens", json={"label": "laptop", "user": "alice"})["token"]

    scans, outside = root / "scans", root / "outside"
    (scans / "s1").mkdir(parents=True)
    outside.mkdir()
    (scans / "s1" / "a.txt").write_text("a scan")
    (outside / "secret.txt").write_bytes(SECRET)
    (scans / "s1" / "link-out.txt").symlink_to(outside / "secret.txt")
    (scans / "s1" / "dangling").symlink_to(outside / "new.txt")  # not there yet
    (scans / "dir-out").symlink_to(outside)
    (scans / "rel-out").symlink_to(Path("..") / "outside")
    (scans / "s1" / "chain").symlink_to(scans / "dir-out")  # a link to a link out
    (scans / "db-link").symlink_to(root / "runyard.db")  # the server's own database
    call("PUT", "/api/userdata/mappings", json={"root": "/Scans/", "folder": str(scans)})
    scopes = [[operation, "/Scans/"] for operation in ("list", "read", "write")]
    userdata_token = call("POST", "/api/userdata/tokens", json={"scopes": scopes})["token"]
    return Yard(
        client=client,
        ry=ry,
        root=root,
        scans=scans,
        outside=outside,
        userdata_token=userdata_token,
        worker_token=worker_token,
        alice_token=alice,
    )


# -- helpers ------------------------------------------------------------------------------------

LEAKS = ("SELECT", "INSERT", "UPDATE ", "sqlite", "sqlalchemy", "Traceback")


def refused(
    answer: Response, status: int, code: str, *words: str, yard: Yard, said: str = ""
) -> str:
    """Assert the refusal (status, code, the words of its message) and that it leaks neither
    a real path of the server nor SQL; ``said`` is what the attack itself sent (echoed)."""
    assert answer.status_code == status, answer.text[:2000]
    found = error(answer)
    assert found["code"] == code, found
    message: str = found["message"]
    for word in words:
        assert word in message, (word, message[:2000])
    text = answer.text.replace(json.dumps(said)[1:-1], "") if said else answer.text
    for real in {str(yard.root), os.path.realpath(yard.root)}:
        assert real not in text, text[:2000]
    for leak in LEAKS:
        assert leak not in text, (leak, text[:2000])
    return message


def snapshot(*folders: Path) -> dict[str, str]:
    """What is below ``folders``: each path with its link target, or its content's hash."""
    seen: dict[str, str] = {}
    for folder in folders:
        for path in [folder, *sorted(folder.rglob("*"))]:
            if path.is_symlink():
                seen[str(path)] = "-> " + os.readlink(path)
            elif path.is_file():
                seen[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                seen[str(path)] = "folder"
    return seen


def planted(yard: Yard) -> list[Path]:
    """Files an attack named ``evil``/``planted``/``forged`` that exist anywhere."""
    names = ("*evil*", "*planted*", "*forged*")
    return [p for name in names for p in yard.root.rglob(name)]


def running_job(yard: Yard) -> RunningJob:
    """A new run of Linear, and its Double job claimed by the worker w1 (Running)."""
    yard.client.post(
        "/api/workflows/Linear/runs", json={"task": "Source", "outputs": {"value": 1}}
    ).raise_for_status()
    claims = yard.client.post(
        "/api/workers/claim", json={"worker": "w1", "max": 1}, headers=yard.as_worker
    ).json()
    assert len(claims) == 1, claims
    return RunningJob(
        serial=claims[0]["job"]["serial"],
        lease=claims[0]["lease"]["lease"],
        job_token=claims[0]["token"],
        worker_token=yard.worker_token,
    )


# -- 1. path traversal: User Data -----------------------------------------------------------------

DOTS = "'.' or '..'"
ENCODED = "percent-encoded '/', backslash or NUL"
NOT_ROOTED = "does not start with '/'"
BAD_PATHS = [
    ("/Scans/../outside/secret.txt", DOTS),
    ("/Scans/s1/../../outside/secret.txt", DOTS),
    ("/Scans/./s1/a.txt", DOTS),
    ("/Scans/s1/..", DOTS),
    ("/Scans/%2e%2e/outside/secret.txt", DOTS),
    ("/Scans/%2E%2E/outside/secret.txt", DOTS),
    ("/Scans/.%2e/outside/secret.txt", DOTS),
    ("/Scans/%252e%252e/outside/secret.txt", DOTS),
    ("/Scans/%25252e%25252e/outside/secret.txt", DOTS),
    ("/Scans/..%2f..%2foutside/secret.txt", ENCODED),
    ("/Scans/s1%2F..%2F..%2Foutside/secret.txt", ENCODED),
    ("/Scans/..%5coutside%5csecret.txt", ENCODED),
    ("/Scans/s1/a.txt%00.png", ENCODED),
    ("/Scans/..\\outside\\secret.txt", "contains a backslash"),
    ("/Scans/s1\\..\\..\\outside/secret.txt", "contains a backslash"),
    ("/Scans/s1/a.txt\x00.png", "contains a NUL character"),
    ("/Scans//outside/secret.txt", "an empty name ('//')"),
    ("//etc/passwd", "an empty name ('//')"),
    ("Scans/s1/a.txt", NOT_ROOTED),
    ("../outside/secret.txt", NOT_ROOTED),
    ("~/secret.txt", NOT_ROOTED),
    ("C:\\outside\\secret.txt", NOT_ROOTED),
    ("\\\\server\\share\\secret.txt", NOT_ROOTED),
    ("/Scans/" + "a" * 256, "longer than 255 bytes"),
    ("/Scans/" + "é" * 128, "longer than 255 bytes"),
    ("/Scans/" + "a/" * 2100 + "x", "too long for the server's file system"),
]


def userdata_calls(yard: Yard, path: str) -> dict[str, Response]:
    """The four User Data calls on ``path`` (as a folder path for the listing)."""
    client, token = yard.client, bearer(yard.userdata_token)
    folder = path if path.endswith("/") else path + "/"
    return {
        "list": client.get("/api/userdata/list", params={"path": folder}, headers=token),
        "read": client.get("/api/userdata/file", params={"path": path}, headers=token),
        "header": client.get("/api/userdata/image-header", params={"path": path}, headers=token),
        "write": client.put(
            "/api/userdata/file", params={"path": path}, content=b"evil", headers=token
        ),
    }


@pytest.mark.parametrize(("path", "problem"), BAD_PATHS, ids=lambda v: repr(v)[:40])
def test_a_user_data_path_that_could_leave_its_root_is_refused_by_every_call(
    yard: Yard, path: str, problem: str
) -> None:
    before = snapshot(yard.scans, yard.outside)
    for answer in userdata_calls(yard, path).values():
        refused(answer, 422, "invalid_input", problem, yard=yard, said=path)
    assert snapshot(yard.scans, yard.outside) == before
    assert planted(yard) == []


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("/Scans/%2e%2e/outside/secret.txt", DOTS),  # the server decodes it to '..'
        ("%2FScans%2F%2E%2E%2Foutside%2Fsecret.txt", DOTS),
        ("/Scans/%252e%252e/outside/secret.txt", DOTS),  # decoded once: '%2e%2e'
        ("/Scans/..%5Coutside%5Csecret.txt", "contains a backslash"),
        ("/Scans/s1/a.txt%00", "contains a NUL character"),
    ],
)
def test_a_user_data_path_encoded_in_the_raw_url_is_refused(
    yard: Yard, query: str, problem: str
) -> None:
    answer = yard.client.get(
        f"/api/userdata/file?path={query}", headers=bearer(yard.userdata_token)
    )
    refused(answer, 422, "invalid_input", problem, yard=yard)


def test_overlong_utf8_dots_are_no_dots_but_a_missing_name(yard: Yard) -> None:
    answer = yard.client.get(
        "/api/userdata/file?path=/Scans/%c0%ae%c0%ae/outside/secret.txt",
        headers=bearer(yard.userdata_token),
    )
    refused(answer, 404, "not_found", "no file", yard=yard)


LINKS_OUT = [
    ("read", "/Scans/s1/link-out.txt"),
    ("read", "/Scans/dir-out/secret.txt"),
    ("read", "/Scans/rel-out/secret.txt"),
    ("read", "/Scans/s1/chain/secret.txt"),
    ("read", "/Scans/db-link"),
    ("read", "/Scans/s1/dangling"),
    ("header", "/Scans/s1/link-out.txt"),
    ("header", "/Scans/db-link"),
    ("list", "/Scans/dir-out/"),
    ("list", "/Scans/rel-out/"),
    ("list", "/Scans/s1/chain/"),
    ("write", "/Scans/dir-out/planted.txt"),
    ("write", "/Scans/rel-out/planted.txt"),
    ("write", "/Scans/dir-out/new/deeper/planted.txt"),
    ("write", "/Scans/s1/chain/planted.txt"),
    ("write", "/Scans/s1/link-out.txt"),
    ("write", "/Scans/s1/dangling"),
    ("write", "/Scans/db-link"),
]


@pytest.mark.parametrize(("call", "path"), LINKS_OUT)
def test_a_symbolic_link_out_of_the_mapped_folder_is_refused(
    yard: Yard, call: str, path: str
) -> None:
    before = snapshot(yard.scans, yard.outside)
    database = (yard.root / "runyard.db").stat().st_size
    client, token = yard.client, bearer(yard.userdata_token)
    answer = {
        "read": lambda: client.get("/api/userdata/file", params={"path": path}, headers=token),
        "header": lambda: client.get(
            "/api/userdata/image-header", params={"path": path}, headers=token
        ),
        "list": lambda: client.get("/api/userdata/list", params={"path": path}, headers=token),
        "write": lambda: client.put(
            "/api/userdata/file", params={"path": path}, content=b"planted", headers=token
        ),
    }[call]()
    refused(answer, 403, "forbidden", path, "leads out of its User Data root", yard=yard)
    assert SECRET not in answer.content and b"SQLite format" not in answer.content
    assert snapshot(yard.scans, yard.outside) == before
    assert not (yard.outside / "new.txt").exists()
    assert (yard.root / "runyard.db").stat().st_size >= database  # not replaced by 'planted'
    assert planted(yard) == []


def test_a_listing_leaves_out_the_links_that_lead_out(yard: Yard) -> None:
    answer = yard.client.get(
        "/api/userdata/list", params={"path": "/Scans/s1/"}, headers=bearer(yard.userdata_token)
    )
    assert answer.status_code == 200, answer.text
    assert [f["name"] for f in answer.json()["files"]] == ["a.txt"]
    assert answer.json()["folders"] == []
    top = yard.client.get(
        "/api/userdata/list", params={"path": "/Scans/"}, headers=bearer(yard.userdata_token)
    ).json()
    assert top["files"] == [] and [f["name"] for f in top["folders"]] == ["s1"]


# -- 1. path traversal: the file store ----------------------------------------------------------

NOT_AN_ID = "is not a file id (32 hexadecimal digits)"


@pytest.mark.parametrize(
    "file_id",
    [
        "%2e%2e",
        "%2E%2E%5C%2E%2E%5Crunyard.db",
        "..%5C..%5Crunyard.db",
        "g" * 32,
        "0" * 31,
        "0" * 33,
        "A" * 32,  # ids are lower case
        "0" * 32 + "%0A",  # a trailing line break
        "0" * 32 + "%00",
        "0" * 30 + "..",
        "0" * 10_000,
        "%00",
    ],
    ids=lambda v: v[:40],
)
def test_a_file_store_id_that_is_not_32_hex_digits_is_refused(yard: Yard, file_id: str) -> None:
    answer = yard.client.get(f"/api/files/{file_id}")
    refused(answer, 422, "invalid_input", NOT_AN_ID, yard=yard)


@pytest.mark.parametrize(
    "file_id", ["..%2F..%2Frunyard.db", "..%2F..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd"]
)
def test_a_file_store_id_with_a_slash_names_no_route(yard: Yard, file_id: str) -> None:
    answer = yard.client.get(f"/api/files/{file_id}")
    refused(answer, 404, "not_found", "Not Found", yard=yard)
    assert b"SQLite format" not in answer.content and b"root:" not in answer.content


def test_another_users_file_store_id_is_not_found_for_a_user(yard: Yard) -> None:
    stored = yard.client.post("/api/files", params={"filename": "admin.txt"}, content=b"mine")
    file_id = stored.json()["file_id"]
    for asked in (file_id, "%2e%2e", "0" * 10_000):
        answer = yard.client.get(f"/api/files/{asked}", headers=bearer(yard.alice_token))
        refused(answer, 404, "not_found", "no file", yard=yard)


@pytest.mark.parametrize(
    "filename",
    [
        "..",
        ".",
        "../evil.txt",
        "../../evil.txt",
        "a/../evil.txt",
        "/tmp/evil.txt",
        "C:\\evil.txt",
        "..\\evil.txt",
        "evil\x00.txt",
        "evil\n.txt",
        "evil\x7f.txt",
        "e" * 256,
        "é" * 128,
    ],
    ids=repr,
)
def test_an_upload_named_with_a_path_or_control_character_is_refused(
    yard: Yard, filename: str
) -> None:
    before = _data_files(yard)
    answer = yard.client.post("/api/files", params={"filename": filename}, content=b"evil")
    refused(answer, 422, "invalid_input", "is not a valid file name", yard=yard, said=filename)
    assert _data_files(yard) == before
    assert planted(yard) == []


# -- 1. path traversal: package imports (zip slip) ----------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One entry of a zip made byte by byte (zipfile refuses to write the bad ones)."""

    name: bytes
    data: bytes = b""  # as stored: deflated if ``deflated``
    size: int | None = None  # the uncompressed size the headers declare (default: len(data))
    crc: int | None = None
    deflated: bool = False
    mode: int = 0o100644  # the Unix mode, in the external attributes


def zip_bytes(entries: list[Entry]) -> bytes:
    out, central = bytearray(), bytearray()
    for e in entries:
        size = len(e.data) if e.size is None else e.size
        crc = zlib.crc32(e.data) if e.crc is None else e.crc
        method = 8 if e.deflated else 0
        offset = len(out)
        fields = (0x800, method, 0, 0x21, crc, len(e.data), size, len(e.name), 0)
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, *fields) + e.name + e.data
        central += (
            struct.pack(
                "<4s6H3L5H2L", b"PK\x01\x02", 0x0314, 20, *fields, 0, 0, 0, e.mode << 16, offset
            )
            + e.name
        )
    count = len(entries)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(central), len(out), 0)
    return bytes(out + central + end)


def task_type_package(extra: list[Entry], **metadata: Any) -> bytes:
    """A valid task type package (Test.Evil) with ``extra`` entries and ``metadata``."""
    fields = {"package_format": "XFP-TT1.0", "name": "Test.Evil", "version": "1.0.0.0"}
    return zip_bytes(
        [
            Entry(b"metadata.json", json.dumps(fields | metadata).encode()),
            Entry(b"interface.json", b'{"inputs": [], "outputs": []}'),
            Entry(b"main.py", b"print('evil')\n"),
            *extra,
        ]
    )


def imported(yard: Yard, package: bytes) -> tuple[Response, dict[str, str], dict[str, str]]:
    """Import ``package``; the answer, and the data directory before and after (without the
    database's own files)."""
    before = _data_files(yard)
    answer = yard.client.post("/api/packages", content=package)
    return answer, before, _data_files(yard)


def _data_files(yard: Yard) -> dict[str, str]:
    return {k: v for k, v in snapshot(yard.data).items() if "runyard.db" not in k}


def assert_nothing_installed(yard: Yard, before: dict[str, str], after: dict[str, str]) -> None:
    assert after == before
    assert not list(yard.data.rglob(".import-*"))
    assert planted(yard) == []
    assert "Test.Evil" not in [t["name"] for t in yard.client.get("/api/task-types").json()]


ENTRY_REFUSALS = [
    (b"../evil.py", "contains '..', which would leave the package"),
    (b"../../evil.py", "contains '..'"),
    (b"a/../../evil.py", "contains '..'"),
    (b"../", "contains '..'"),
    (b"/etc/evil.py", "is an absolute path"),
    (b"/tmp/evil.py", "is an absolute path"),
    (b"C:/evil.py", "is an absolute path"),
    (b"c:evil.py", "is an absolute path"),
    (b"C:\\evil.py", "contains a backslash"),
    (b"..\\..\\evil.py", "contains a backslash"),
    (b"\\\\server\\share\\evil.py", "contains a backslash"),
    (b"./evil.py", "an empty or '.' folder name"),
    (b"a//evil.py", "an empty or '.' folder name"),
    (b"evil\x00.py", "contains a NUL character"),
]


@pytest.mark.parametrize(("name", "problem"), ENTRY_REFUSALS, ids=lambda v: repr(v)[:30])
def test_a_package_entry_outside_the_package_folder_is_refused(
    yard: Yard, name: bytes, problem: str
) -> None:
    answer, before, after = imported(yard, task_type_package([Entry(name, b"evil")]))
    message = refused(answer, 422, "invalid_package", problem, "repack the package", yard=yard)
    assert error(answer)["details"]["field"] == name.decode().replace("\x00", "<NUL>")
    assert message.startswith("upload.xfp: ")
    assert_nothing_installed(yard, before, after)


@pytest.mark.parametrize(
    "target", [b"/etc/passwd", b"../../../../etc", b"/tmp", b"main.py"], ids=repr
)
def test_a_package_entry_that_is_a_symbolic_link_is_refused(yard: Yard, target: bytes) -> None:
    link = Entry(b"evil-link", target, mode=0o120777)
    slip = Entry(b"evil-link/evil.py", b"through the link")
    answer, before, after = imported(yard, task_type_package([link, slip]))
    refused(answer, 422, "invalid_package", "is a symbolic link", yard=yard)
    assert error(answer)["details"]["field"] == "evil-link"
    assert_nothing_installed(yard, before, after)


@pytest.mark.parametrize(
    ("metadata", "field", "problem"),
    [
        ({"name": ".."}, "name", "not only dots"),
        ({"name": "."}, "name", "not only dots"),
        ({"name": "..."}, "name", "not only dots"),
        ({"name": "../evil"}, "name", "letters, digits and dots"),
        ({"name": "a/evil"}, "name", "letters, digits and dots"),
        ({"name": "evil\\x"}, "name", "letters, digits and dots"),
        ({"version": "../1.0.0.0"}, "version", "four whole numbers"),
        ({"version": "1.0.0.0/../.."}, "version", "four whole numbers"),
        ({"entry_point": "../evil.py"}, "entry_point", "contains '..'"),
        ({"entry_point": "/etc/passwd"}, "entry_point", "is an absolute path"),
        ({"entry_point": "C:\\evil.py"}, "entry_point", "contains a backslash"),
        ({"description_filename": "../../../../etc/passwd"}, "description_filename", ""),
    ],
    ids=lambda v: repr(v)[:40],
)
def test_a_package_whose_name_or_files_name_a_place_outside_is_refused(
    yard: Yard, metadata: dict[str, str], field: str, problem: str
) -> None:
    """The name and version of a task type name its folder (task-types/NAME/VERSION):
    a name of dots would install it outside the task types' folder."""
    answer, before, after = imported(yard, task_type_package([], **metadata))
    refused(answer, 422, "invalid_package", problem, yard=yard)
    assert error(answer)["details"]["field"].startswith(field), error(answer)
    assert b"root:" not in answer.content
    assert_nothing_installed(yard, before, after)  # nor in data/1.0.0.0, for a name '..'


# -- 2. tokens -------------------------------------------------------------------------------------

JobTampering = Callable[[RunningJob, RunningJob], str | bytes]


def _signature(job: RunningJob) -> str:
    return job.job_token.rsplit("_", 1)[1]


def _flip(text: str) -> str:
    return text[:-1] + ("0" if text[-1] != "0" else "1")


JOB_TAMPERING: dict[str, tuple[JobTampering, str]] = {
    "another running job's serial": (
        lambda job, other: f"ry_job_{other.serial}_{_signature(job)}",
        "has expired",
    ),
    "a serial of no job": (
        lambda job, _: f"ry_job_{job.serial + 10_000}_{_signature(job)}",
        "has expired",
    ),
    "a serial beyond the database's integers": (
        lambda job, _: f"ry_job_{2**64 + job.serial}_{_signature(job)}",
        "malformed",
    ),
    "a negative serial": (lambda job, _: f"ry_job_-{job.serial}_{_signature(job)}", "malformed"),
    "a serial that is no number": (
        lambda job, _: f"ry_job_x{job.serial}_{_signature(job)}",
        "malformed",
    ),
    "a changed signature": (lambda job, _: _flip(job.job_token), "has expired"),
    "another job's signature": (
        lambda job, other: f"ry_job_{job.serial}_{_signature(other)}",
        "has expired",
    ),
    "a cut signature": (lambda job, _: job.job_token[:-10], "has expired"),
    "no signature": (lambda job, _: f"ry_job_{job.serial}_", "has expired"),
    "no signature part": (lambda job, _: f"ry_job_{job.serial}", "malformed"),
    "a signature in capitals": (
        lambda job, _: job.job_token.upper().replace("RY_JOB_", "ry_job_"),
        "has expired",
    ),
    "a non-ASCII signature": (
        lambda job, _: job.job_token[:-1].encode() + b"\xe9",
        "malformed",
    ),
    "the signature of the lease alone": (
        lambda job, _: f"ry_job_{job.serial}_{job.lease}",
        "has expired",
    ),
}


@pytest.mark.parametrize("how", list(JOB_TAMPERING))
def test_a_tampered_job_token_is_refused(yard: Yard, how: str) -> None:
    job, other = running_job(yard), running_job(yard)
    make, problem = JOB_TAMPERING[how]
    token = make(job, other)
    for answer in (
        yard.client.get("/api/workflows", headers=bearer(token)),
        yard.client.post(
            f"/api/jobs/{job.serial}/progress", json={"message": "forged"}, headers=bearer(token)
        ),
        yard.client.post(
            "/api/userdata/tokens", json={"scopes": [["read", "/Scans/"]]}, headers=bearer(token)
        ),
    ):
        refused(answer, 401, "unauthorized", "job token", problem, yard=yard)
    got = yard.client.get(f"/api/jobs/{job.serial}").json()
    assert got["state"] == "Running" and "forged" not in json.dumps(got)
    assert yard.client.get("/api/me", headers=job.as_job).json()["kind"] == "job"  # intact


@pytest.mark.parametrize("end", ["completed", "failed", "released", "restarted"])
def test_a_job_token_dies_with_its_lease(yard: Yard, end: str) -> None:
    job = running_job(yard)
    lease = {"lease": job.lease}
    path, body = {
        "completed": ("complete", lease | {"outputs": {"value": 2}}),
        "failed": ("fail", lease | {"error": "no"}),
        "released": ("release", lease),
        "restarted": ("restart", None),
    }[end]
    headers = None if end == "restarted" else job.as_worker  # the admin restarts it
    done = yard.client.post(f"/api/jobs/{job.serial}/{path}", json=body, headers=headers)
    assert done.status_code == 200, done.text
    for answer in (
        yard.client.get("/api/workflows", headers=job.as_job),
        yard.client.post("/api/spawn/serials", json={"count": 1}, headers=job.as_job),
    ):
        refused(
            answer, 401, "unauthorized", f"job token of job {job.serial} has expired", yard=yard
        )


def _ud_parts(token: str) -> tuple[dict[str, Any], str, str]:
    body, signature = token.removeprefix("ry_ud_").split(".")
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))), body, signature


def _ud_body(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()


def _ud_changed(token: str, **changes: Any) -> str:
    payload, _, signature = _ud_parts(token)
    return f"ry_ud_{_ud_body(payload | changes)}.{signature}"


SIGNATURE = "signature does not match"
MALFORMED = "User Data token is malformed"
UD_TAMPERING: dict[str, tuple[Callable[[str], str | bytes], str]] = {
    "a wider scope": (lambda t: _ud_changed(t, scopes=[["write", "/"]]), SIGNATURE),
    "another root": (lambda t: _ud_changed(t, scopes=[["read", "/Other/"]]), SIGNATURE),
    "another operation": (
        lambda t: _ud_changed(t, scopes=[["write", "/Scans/s1/a.txt"]]),
        SIGNATURE,
    ),
    "a later expiry": (lambda t: _ud_changed(t, exp=_ud_parts(t)[0]["exp"] + 86400), SIGNATURE),
    "another holder": (lambda t: _ud_changed(t, by="admin"), SIGNATURE),
    "a changed signature": (lambda t: _flip(t), SIGNATURE),
    "a cut signature": (lambda t: t[:-8], SIGNATURE),
    "no signature": (lambda t: t.rsplit(".", 1)[0] + ".", SIGNATURE),
    "no dot": (lambda t: t.rsplit(".", 1)[0], MALFORMED),
    "an empty payload": (lambda t: "ry_ud_." + _ud_parts(t)[2], MALFORMED),
    "a cut payload": (lambda t: "ry_ud_" + t[10:], SIGNATURE),
    "a non-ASCII payload": (lambda t: b"ry_ud_\xe9" + t[6:].encode(), MALFORMED),
    "a signature of zeros": (lambda t: "ry_ud_" + _ud_parts(t)[1] + "." + "0" * 43, SIGNATURE),
}


@pytest.mark.parametrize("how", list(UD_TAMPERING))
def test_a_tampered_user_data_token_is_refused(yard: Yard, how: str) -> None:
    token = yard.client.post(
        "/api/userdata/tokens", json={"scopes": [["read", "/Scans/s1/a.txt"]]}
    ).json()["token"]
    make, problem = UD_TAMPERING[how]
    forged = make(token)
    before = snapshot(yard.scans, yard.outside)
    for answer in (
        yard.client.get(
            "/api/userdata/file", params={"path": "/Scans/s1/a.txt"}, headers=bearer(forged)
        ),
        yard.client.get("/api/userdata/list", params={"path": "/Scans/"}, headers=bearer(forged)),
        yard.client.put(
            "/api/userdata/file",
            params={"path": "/Scans/s1/evil.txt"},
            content=b"evil",
            headers=bearer(forged),
        ),
    ):
        refused(answer, 401, "unauthorized", problem, yard=yard)
    assert snapshot(yard.scans, yard.outside) == before


def test_an_expired_user_data_token_is_refused_with_its_expiry(
    yard: Yard, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = yard.client.post("/api/userdata/tokens", json={"scopes": [["read", "/Scans/"]]}).json()
    start = utcnow()
    monkeypatch.setattr(yard.ry.userdata, "now", lambda: start + timedelta(minutes=15, seconds=1))
    answer = yard.client.get(
        "/api/userdata/file", params={"path": "/Scans/s1/a.txt"}, headers=bearer(token["token"])
    )
    refused(answer, 401, "unauthorized", "the User Data token expired at", yard=yard)
    assert error(answer)["details"]["expired_at"] == token["expires_at"]


def test_a_user_data_token_is_no_token_for_the_other_routes(yard: Yard) -> None:
    for answer in (
        yard.client.get("/api/workflows", headers=bearer(yard.userdata_token)),
        yard.client.post(
            "/api/userdata/tokens",
            json={"scopes": [["write", "/Scans/"]]},
            headers=bearer(yard.userdata_token),
        ),
    ):
        refused(answer, 401, "unauthorized", "valid only for the User Data file calls", yard=yard)


def _personal_token(yard: Yard, label: str) -> tuple[int, str]:
    made = yard.client.post("/api/tokens", json={"label": label, "user": "alice"}).json()
    return made["id"], made["token"]


PERSONAL_TAMPERING: dict[str, Callable[[str], str | bytes]] = {
    "the last character cut": lambda t: t[:-1],
    "half of it": lambda t: t[: len(t) // 2],
    "its prefix alone": lambda t: t.split("_", 2)[0] + "_" + t.split("_", 2)[1] + "_",
    "one character changed": _flip,
    "in capitals": lambda t: t.upper(),
    "a character added": lambda t: t + "A",
    "a non-ASCII character added": lambda t: t.encode() + b"\xe9",
}


@pytest.mark.parametrize("how", list(PERSONAL_TAMPERING))
def test_a_changed_personal_token_is_refused(yard: Yard, how: str) -> None:
    _, token = _personal_token(yard, f"tampered {how}")
    forged = PERSONAL_TAMPERING[how](token)
    for answer in (
        yard.client.get("/api/workflows", headers=bearer(forged)),
        yard.client.post("/api/tokens", json={"label": "forged"}, headers=bearer(forged)),
    ):
        refused(
            answer, 401, "unauthorized", "the token is not valid (unknown or revoked)", yard=yard
        )
    assert yard.client.get("/api/me", headers=bearer(token)).json()["name"] == "alice"


def test_a_revoked_personal_token_is_refused_at_once(yard: Yard) -> None:
    token_id, token = _personal_token(yard, "to revoke")
    assert yard.client.get("/api/me", headers=bearer(token)).status_code == 200  # now cached
    yard.client.delete(f"/api/tokens/{token_id}").raise_for_status()
    for answer in (
        yard.client.get("/api/me", headers=bearer(token)),
        yard.client.post("/api/tokens", json={"label": "forged"}, headers=bearer(token)),
    ):
        refused(answer, 401, "unauthorized", "unknown or revoked", yard=yard)
    labels = [t["label"] for t in yard.client.get("/api/tokens", params={"everyone": True}).json()]
    assert "forged" not in labels


def test_a_session_cookie_is_no_bearer_token(yard: Yard) -> None:
    with TestClient(yard.client.app, raise_server_exceptions=False) as browser:
        login = browser.post("/ui/login", json={"name": "alice", "password": ALICE_PASSWORD})
        assert login.status_code == 200, login.text
        session = browser.cookies[SESSION_COOKIE]
        browser.cookies.clear()
        for answer in (
            browser.get("/api/workflows", headers=bearer(session)),
            browser.post(
                "/api/workflows",
                json={"name": "forged"},
                headers=bearer(session) | {CSRF_HEADER: login.json()["csrf"]},
            ),
        ):
            refused(answer, 401, "unauthorized", "valid only as the UI's cookie", yard=yard)
        answer = browser.get("/api/userdata/list", headers=bearer(session))
        refused(answer, 403, "forbidden", "accept only a User Data token", yard=yard)
    assert "forged" not in [w["name"] for w in yard.client.get("/api/workflows").json()]


WORKER_ON_USER_ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/api/workflows", {"json": {"name": "forged"}}),
    ("GET", "/api/users", {}),
    ("POST", "/api/users", {"json": {"name": "forged", "password": "12345678"}}),
    ("GET", "/api/tokens", {}),
    ("POST", "/api/tokens", {"json": {"label": "forged"}}),
    ("POST", "/api/tokens/worker", {"json": {"name": "forged"}}),
    ("POST", "/api/packages", {"content": b"PK\x05\x06" + bytes(18)}),
    ("POST", "/api/files", {"params": {"filename": "forged.txt"}, "content": b"x"}),
    ("GET", "/api/userdata/mappings", {}),
    ("PUT", "/api/userdata/mappings", {"json": {"root": "/Forged/", "folder": "/tmp"}}),
    ("POST", "/api/userdata/tokens", {"json": {"scopes": [["read", "/Scans/"]]}}),
    ("GET", "/api/activity", {}),
    ("PUT", "/api/workflows/Linear/shares", {"json": {"user": "alice", "level": "edit"}}),
    ("POST", "/api/workflows/Linear/runs", {"json": {"task": "Source", "outputs": {"value": 1}}}),
]
# Routes that name a workflow: to a worker it does not exist (docs/users.md).
WORKER_ON_WORKFLOW_ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/api/workflows/Linear", {}),
    ("GET", "/api/workflows/Linear/runs", {}),
    ("GET", "/api/workflows/Linear/export", {}),
    ("POST", "/api/workflows/Linear/stop", {}),
]


def _unchanged_by_the_worker(yard: Yard, runs: int) -> None:
    assert "forged" not in [w["name"] for w in yard.client.get("/api/workflows").json()]
    assert yard.client.get("/api/workflows/Linear").json()["state"] == "Started"
    assert len(yard.client.get("/api/workflows/Linear/runs").json()["runs"]) == runs
    assert yard.client.get("/api/workflows/Linear/shares").json()["shares"] == []
    assert planted(yard) == []


@pytest.mark.parametrize(
    ("method", "path", "kwargs"), WORKER_ON_USER_ROUTES, ids=lambda v: str(v)[:30]
)
def test_a_worker_token_is_refused_on_user_routes(
    yard: Yard, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    runs = len(yard.client.get("/api/workflows/Linear/runs").json()["runs"])
    answer = yard.client.request(method, path, headers=yard.as_worker, **kwargs)
    refused(answer, 403, "forbidden", "a worker token may not do this", yard=yard)
    assert error(answer)["details"] == {"caller": "worker"}
    _unchanged_by_the_worker(yard, runs)


@pytest.mark.parametrize(
    ("method", "path", "kwargs"), WORKER_ON_WORKFLOW_ROUTES, ids=lambda v: str(v)[:30]
)
def test_a_worker_token_finds_no_workflow(
    yard: Yard, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    runs = len(yard.client.get("/api/workflows/Linear/runs").json()["runs"])
    answer = yard.client.request(method, path, headers=yard.as_worker, **kwargs)
    refused(answer, 404, "not_found", "no workflow named 'Linear'", yard=yard)
    listed = yard.client.get("/api/workflows", headers=yard.as_worker)
    assert listed.status_code == 200 and listed.json() == []
    _unchanged_by_the_worker(yard, runs)


# -- 3. zip bombs ----------------------------------------------------------------------------------

_BLOCK = 1 << 20


def deflated(size: int, block: bytes = bytes(_BLOCK)) -> tuple[bytes, int]:
    """A raw deflate stream of ``size`` bytes of ``block`` repeated (zeros: about 1 KiB per
    MiB), and their CRC-32: one block, compressed on its own, repeated."""
    first = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = first.compress(block) + first.flush(zlib.Z_FULL_FLUSH)
    count, rest = divmod(size, len(block))
    last = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = piece * count + last.compress(block[:rest]) + last.flush()
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(block, crc)
    return stream, zlib.crc32(block[:rest], crc)


def bomb_entry(name: bytes, size: int, *, declared: int | None = None) -> Entry:
    data, crc = deflated(size)
    return Entry(name, data, size=size if declared is None else declared, crc=crc, deflated=True)


def sparse_block() -> bytes:
    """A MiB that deflates about 20 to one (runs of zeros between random bytes): a package
    file that is large but no bomb."""
    block = bytearray(_BLOCK)
    block[::50] = os.urandom(len(block[::50]))
    return bytes(block)


GIB = 1 << 30
MIB = 1 << 20


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        (
            lambda: [bomb_entry(b"zeros.bin", GIB + 1)],
            "is 1073741825 bytes uncompressed, more than the 256 MiB (268435456 bytes) one "
            "file of a package may hold",
        ),
        (
            lambda: [bomb_entry(b"a.bin", 256 * MIB + 1)],
            "is 268435457 bytes uncompressed, more than the 256 MiB",
        ),
        (
            lambda: [bomb_entry(f"{n}.bin".encode(), 250 * MIB) for n in range(5)],
            "holds more than 1 GiB (1073741824 bytes)",
        ),
        (
            lambda: [Entry(f"f/{n}.txt".encode()) for n in range(10_001)],
            "holds more than 10000 files",
        ),
        (
            lambda: [bomb_entry(b"zeros.bin", 100 * MIB)],
            "to 104857600 bytes, more than 100 times",
        ),
    ],
    ids=[
        "one entry of 1 GiB",
        "one entry over 256 MiB",
        "five entries of 250 MiB",
        "10,001 entries",
        "100 MiB of zeros",
    ],
)
def test_a_package_that_expands_hugely_is_refused_and_leaves_nothing(
    yard: Yard, entries: Callable[[], list[Entry]], problem: str
) -> None:
    package = task_type_package(entries())
    assert len(package) < 2 * _BLOCK  # small to send
    answer, before, after = imported(yard, package)
    refused(answer, 422, "invalid_package", "upload.xfp", problem, yard=yard)
    assert_nothing_installed(yard, before, after)


def test_a_package_entry_that_expands_more_than_100_times_is_refused_naming_it(
    yard: Yard,
) -> None:
    package = task_type_package([bomb_entry(b"data/zeros.bin", 2 * MIB)])
    answer, before, after = imported(yard, package)
    message = refused(answer, 422, "invalid_package", "to 2097152 bytes", yard=yard)
    assert "more than 100 times its compressed size" in message
    assert error(answer)["details"]["field"] == "data/zeros.bin"
    assert_nothing_installed(yard, before, after)


def large_package(name: str, size: int) -> bytes:
    """A task type package ``name`` with a ``weights.bin`` of ``size`` bytes that deflates
    about 20 to one."""
    block = sparse_block()
    data, crc = deflated(size, block)
    weights = Entry(b"weights.bin", data, size=size, crc=crc, deflated=True)
    fields = {"package_format": "XFP-TT1.0", "name": name, "version": "1.0.0.0"}
    return zip_bytes(
        [
            Entry(b"metadata.json", json.dumps(fields).encode()),
            Entry(b"interface.json", b'{"inputs": [], "outputs": []}'),
            Entry(b"main.py", b"print('large')\n"),
            weights,
        ]
    )


def traced_peak(call: Callable[[], Any]) -> tuple[Any, int]:
    """What ``call`` answers, and the most memory Python held meanwhile (every thread)."""
    tracemalloc.start()
    try:
        answer = call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return answer, peak


LARGE = 64 * MIB


def test_a_large_package_file_streams_into_place_on_import_and_on_fetch(yard: Yard) -> None:
    """A package file of 64 MiB (in a 3 MiB upload) is never held whole in memory: not on
    import, not when a worker fetches the task type, not when the worker unpacks it."""
    package = large_package("Test.Large", LARGE)
    assert len(package) < LARGE // 10
    answer, peak = traced_peak(lambda: yard.client.post("/api/packages", content=package))
    assert answer.status_code == 200, answer.text
    assert peak < LARGE // 2, f"importing held {peak >> 20} MiB"
    installed = yard.data / "task-types" / "Test.Large" / "1.0.0.0" / "weights.bin"
    assert installed.stat().st_size == LARGE

    path = "/api/task-types/Test.Large/1.0.0.0/package"
    fetched, peak = traced_peak(lambda: yard.client.get(path, headers=yard.as_worker))
    assert fetched.status_code == 200, fetched.text
    assert int(fetched.headers["content-length"]) == len(fetched.content) < LARGE // 10
    assert peak < LARGE // 2, f"zipping for a worker held {peak >> 20} MiB"

    folder = yard.root / "worker-scripts"
    folder.mkdir()
    _, peak = traced_peak(
        lambda: write_files(folder, read_package_bytes(fetched.content, "fetched").files)
    )
    assert peak < LARGE // 2, f"unpacking held {peak >> 20} MiB"
    assert (folder / "weights.bin").read_bytes() == installed.read_bytes()


LIE = 256 * _BLOCK  # what an entry holds that says it holds 10 bytes


def test_a_package_entry_that_understates_its_size_is_refused_and_leaves_nothing(
    yard: Yard,
) -> None:
    package = task_type_package([bomb_entry(b"evil.bin", LIE, declared=10)])
    answer, before, after = imported(yard, package)
    refused(answer, 422, "invalid_package", "evil.bin", "cannot be read from the zip", yard=yard)
    assert_nothing_installed(yard, before, after)


def test_a_package_entry_that_understates_its_size_is_not_inflated_past_it(yard: Yard) -> None:
    """Reading an entry stops at the size its header declares (and checked against the
    caps): a 300 KB upload must not make the server hold what the entry really inflates to
    (256 MiB here; the same upload can say 10 bytes and hold gigabytes)."""
    package = task_type_package([bomb_entry(b"evil.bin", LIE, declared=10)])
    tracemalloc.start()
    try:
        answer = yard.client.post("/api/packages", content=package)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert answer.status_code == 422, answer.text
    assert peak < LIE // 4, f"importing a {len(package)}-byte package held {peak >> 20} MiB"


# -- 4. CSRF ---------------------------------------------------------------------------------------


@pytest.fixture
def browser(yard: Yard) -> Iterator[tuple[TestClient, str]]:
    """A browser logged in to the web UI as the admin (the session cookie), and the
    session's CSRF token."""
    with TestClient(yard.client.app, raise_server_exceptions=False) as client:
        token = yard.client.headers["Authorization"].removeprefix("Bearer ")
        login = client.post("/ui/login", json={"token": token})
        assert login.status_code == 200, login.text
        yield client, login.json()["csrf"]


def _state(yard: Yard) -> dict[str, Any]:
    """What the forged requests would change."""
    client = yard.client
    return {
        "workflows": client.get("/api/workflows").json(),
        "runs": len(client.get("/api/workflows/Linear/runs").json()["runs"]),
        "mappings": client.get("/api/userdata/mappings").json(),
        "users": client.get("/api/users").json(),
        "groups": client.get("/api/groups").json(),
        "tokens": client.get("/api/tokens", params={"everyone": True}).json(),
        "task types": client.get("/api/task-types").json(),
        "files": snapshot(yard.data / "files") if (yard.data / "files").exists() else {},
        "userdata": snapshot(yard.scans, yard.outside),
    }


FORGED: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/api/workflows", {"json": {"name": "forged"}}),
    ("POST", "/api/workflows/Linear/stop", {}),
    ("POST", "/api/workflows/Linear/runs", {"json": {"task": "Source", "outputs": {"value": 7}}}),
    ("PUT", "/api/userdata/mappings", {"json": {"root": "/Forged/", "folder": "/tmp"}}),
    ("DELETE", "/api/userdata/mappings", {"params": {"root": "/Scans/"}}),
    ("POST", "/api/users", {"json": {"name": "forged", "password": "forged password"}}),
    ("PATCH", "/api/users/alice", {"json": {"disabled": True}}),
    ("PUT", "/api/users/alice/password", {"json": {"password": "forged password"}}),
    ("POST", "/api/groups", {"json": {"name": "forged"}}),
    ("POST", "/api/tokens", {"json": {"label": "forged"}}),
    ("POST", "/api/tokens/worker", {"json": {"name": "forged"}}),
    ("POST", "/api/files", {"params": {"filename": "forged.txt"}, "content": b"forged"}),
    ("POST", "/api/packages", {"content": folder_zip_bytes(TASK_TYPES / "Sum")}),
    ("PUT", "/api/workflows/Linear/shares", {"json": {"user": "alice", "level": "edit"}}),
    (
        "POST",
        "/api/workflows",
        {"content": b'{"name": "forged"}', "headers": {"content-type": "text/plain"}},
    ),
]
CSRF_HEADERS: dict[str, Callable[[str, str], dict[str, Any]]] = {
    "no header": lambda csrf, other: {},
    "an empty header": lambda csrf, other: {CSRF_HEADER: ""},
    "a wrong token": lambda csrf, other: {CSRF_HEADER: "0" * 64},
    "another session's token": lambda csrf, other: {CSRF_HEADER: other},
    "the token cut": lambda csrf, other: {CSRF_HEADER: csrf[:-1]},
    "the token in capitals": lambda csrf, other: {CSRF_HEADER: csrf.upper()},
    "a non-ASCII token": lambda csrf, other: {CSRF_HEADER: csrf[:-1].encode() + b"\xe9"},
    "the token under another name": lambda csrf, other: {"X-CSRF-Token": csrf},
}


@pytest.mark.parametrize("header", list(CSRF_HEADERS))
def test_a_state_change_with_the_cookie_but_without_its_csrf_token_is_refused(
    yard: Yard, browser: tuple[TestClient, str], header: str
) -> None:
    client, csrf = browser
    with TestClient(yard.client.app, raise_server_exceptions=False) as other_browser:
        token = yard.client.headers["Authorization"].removeprefix("Bearer ")
        other = other_browser.post("/ui/login", json={"token": token}).json()["csrf"]
    headers = CSRF_HEADERS[header](csrf, other)
    before = _state(yard)
    for method, path, kwargs in FORGED:
        sent = dict(kwargs)
        answer = client.request(method, path, headers=headers | sent.pop("headers", {}), **sent)
        refused(
            answer, 403, "forbidden", "without its CSRF token (header X-Runyard-CSRF)", yard=yard
        )
    logout = client.post("/ui/logout", headers=headers)
    refused(logout, 403, "forbidden", "CSRF token", yard=yard)
    assert _state(yard) == before
    assert planted(yard) == []
    assert client.get("/ui/session").status_code == 200  # the session lives on
    made = client.post(
        "/api/groups", json={"name": f"csrf-{len(header)}"}, headers={CSRF_HEADER: csrf}
    )
    assert made.status_code == 200, made.text  # with its token, the same cookie may
    yard.client.delete(f"/api/groups/csrf-{len(header)}").raise_for_status()


ORIGINS = [
    "https://evil.example",
    "http://evil.example",
    "null",
    "http://testserver.evil.example",
    "http://testserver@evil.example",
    "http://evil.example/testserver",
    "https://testserver:8443",
    "file://",
]


@pytest.mark.parametrize("origin", ORIGINS)
@pytest.mark.parametrize("credential", ["password", "token"])
def test_a_log_in_posted_from_another_site_is_refused(
    yard: Yard, origin: str, credential: str
) -> None:
    body = (
        {"name": "alice", "password": ALICE_PASSWORD}
        if credential == "password"
        else {"token": yard.alice_token}
    )
    with TestClient(yard.client.app, raise_server_exceptions=False) as client:
        answer = client.post("/ui/login", json=body, headers={"Origin": origin})
        refused(
            answer,
            403,
            "forbidden",
            f"a log in from the page of another site ({origin})",
            yard=yard,
        )
        assert "set-cookie" not in answer.headers and SESSION_COOKIE not in client.cookies
        assert client.get("/ui/session").status_code == 401
        same = client.post("/ui/login", json=body, headers={"Origin": "http://testserver"})
        assert same.status_code == 200, same.text  # the server's own page may


# -- 5. oversized and deeply nested bodies ---------------------------------------------------------

JSON_ROUTES = [
    ("POST", "/api/workflows"),
    ("POST", "/api/workflows/Linear/runs"),
    ("PUT", "/api/userdata/mappings"),
    ("POST", "/api/spawn/batch"),
    ("POST", "/api/users"),
    ("POST", "/ui/login"),
]


@pytest.mark.parametrize(("method", "path"), JSON_ROUTES)
def test_a_json_body_over_32_mib_is_refused_before_it_is_parsed(
    yard: Yard, method: str, path: str
) -> None:
    """The body is not JSON at all: had it been parsed, the answer would be 422."""
    before = _state(yard)
    body = b"{" + b" " * MAX_JSON_BODY
    answer = yard.client.request(
        method, path, content=body, headers={"content-type": "application/json"}
    )
    refused(
        answer,
        413,
        "too_large",
        f"{method} {path}: the request body is larger than 32 MiB",
        yard=yard,
    )
    assert _state(yard) == before


def test_a_json_body_over_32_mib_without_a_length_is_refused(yard: Yard) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"{"
        for _ in range(MAX_JSON_BODY // _BLOCK + 1):
            yield b" " * _BLOCK

    answer = yard.client.post(
        "/api/workflows", content=chunks(), headers={"content-type": "application/json"}
    )
    refused(answer, 413, "too_large", "larger than 32 MiB", yard=yard)


NESTING = {
    "arrays": lambda depth: "[" * depth + "]" * depth,
    "objects": lambda depth: '{"a":' * depth + "1" + "}" * depth,
    "mixed": lambda depth: '{"a":[' * (depth // 2) + "1" + "]}" * (depth // 2),
}


@pytest.mark.parametrize("depth", [100_000, 50_000])
@pytest.mark.parametrize("kind", list(NESTING))
def test_a_body_nested_too_deeply_is_refused_with_422(yard: Yard, kind: str, depth: int) -> None:
    deep = NESTING[kind](depth)
    bodies = [
        ("POST", "/api/workflows", '{"name": "forged", "remarks": ' + deep + "}"),
        (
            "POST",
            "/api/workflows/Linear/runs",
            '{"task": "Source", "outputs": {"value": ' + deep + "}}",
        ),
        ("POST", "/api/spawn/batch", deep),
        ("POST", "/ui/login", deep),
    ]
    before = _state(yard)
    for method, path, body in bodies:
        answer = yard.client.request(
            method, path, content=body.encode(), headers={"content-type": "application/json"}
        )
        refused(
            answer,
            422,
            "invalid_input",
            f"{method} {path}: the JSON body is nested too deeply",
            yard=yard,
        )
    assert _state(yard) == before


class Unread:
    """An ASGI ``receive`` that counts what the app reads of a (huge) body."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.read = 0

    async def __call__(self) -> dict[str, Any]:
        chunk = min(self.left, _BLOCK)
        self.left -= chunk
        self.read += chunk
        return {"type": "http.request", "body": b" " * chunk, "more_body": self.left > 0}


def asgi_post(
    app: Any, path: str, size: int, authorization: bytes | None
) -> tuple[int, bytes, int]:
    """POST ``size`` bytes to ``path`` straight into the ASGI app: the status, the body of the
    answer, and how many bytes of the request the app read."""
    query = b"filename=big.bin" if path == "/api/files" else b"path=/Scans/big.bin"
    headers = [(b"content-length", str(size).encode()), (b"content-type", b"application/json")]
    if authorization is not None:
        headers.append((b"authorization", authorization))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT" if path == "/api/userdata/file" else "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query if path in ("/api/files", "/api/userdata/file") else b"",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        "root_path": "",
    }
    receive = Unread(size)
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body, receive.read


BIG_ROUTES = [
    "/api/workflows",
    "/api/spawn/batch",
    "/api/files",
    "/api/userdata/file",
    "/api/packages",
]


@pytest.mark.parametrize("path", BIG_ROUTES)
def test_a_large_body_without_a_credential_is_refused_unread(yard: Yard, path: str) -> None:
    status, body, read = asgi_post(yard.client.app, path, 1 << 40, None)  # a terabyte
    assert status == 401 and read == 0
    found = json.loads(body)["error"]
    assert found["code"] == "unauthorized" and "no token given" in found["message"]


@pytest.mark.parametrize(
    ("path", "token"),
    [
        ("/api/files", b"Bearer ry_admin_guessed"),
        ("/api/packages", b"Bearer ry_admin_guessed"),
        ("/api/userdata/file", b"Bearer ry_ud_e30.guessed"),
        ("/api/files", b"Bearer ry_job_1_guessed"),
    ],
)
def test_a_large_file_body_with_a_wrong_token_is_refused_unread(
    yard: Yard, path: str, token: bytes
) -> None:
    status, body, read = asgi_post(yard.client.app, path, 1 << 40, token)
    assert status == 401 and read == 0, (status, body[:500], read)
    assert json.loads(body)["error"]["code"] == "unauthorized"
