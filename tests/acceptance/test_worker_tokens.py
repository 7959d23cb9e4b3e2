"""Acceptance: a worker reads its token from a file (not its command line, which every local
user can read); admins list, revoke and rotate worker tokens and the admin token with the
real ``runyard`` command."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.conftest import (
    RUNYARD,
    Installation,
    clean_env,
    start_server,
    stop,
    wait_for,
)
from tests.conftest import TASK_TYPES, WORKFLOWS


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Installation]:
    installation = start_server(tmp_path / "server")
    try:
        installation.cli(
            "import", *[str(TASK_TYPES / t) for t in ("Source", "Double", "Add")],
            str(WORKFLOWS / "Linear"),
        )  # fmt: skip
        installation.api("POST", "/api/workflows/Linear/start")
        yield installation
    finally:
        stop(installation)


def worker(server: Installation, folder: Path, *token: str) -> subprocess.Popen[str]:
    """``runyard worker --burst`` named pc-1 on the server's URL, given ``token`` options."""
    folder.mkdir(parents=True, exist_ok=True)
    command = [*RUNYARD, "worker", "--server", server.url, "--name", "pc-1", "--burst",
               "--data-dir", str(folder), *token]  # fmt: skip
    with open(folder / "worker.log", "w") as log:
        return subprocess.Popen(
            command, env=clean_env(), stdout=log, stderr=subprocess.STDOUT, text=True
        )


def runs_linear(server: Installation, process: subprocess.Popen[str], log: Path) -> None:
    server.api("POST", "/api/workflows/Linear/runs", {"task": "Source", "outputs": {"value": 1}})
    assert process.wait(timeout=120) == 0, log.read_text()
    status = server.status("Linear")
    assert [r["jobs"]["Add"]["state"] for r in status["runs"]] == ["Done"], log.read_text()


def refused(server: Installation, token: str) -> bool:
    result = subprocess.run(
        [*RUNYARD, "whoami", "--server", server.url],
        env=clean_env({"RUNYARD_TOKEN": token}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode == 1 and "not valid (unknown or revoked)" in result.stderr


def test_a_worker_reads_its_token_from_a_file_and_not_from_its_command_line(
    server: Installation, tmp_path: Path
) -> None:
    token = server.cli("token", "create-worker", "pc-1").stdout.strip()
    token_file = tmp_path / "pc-1.token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    process = worker(server, tmp_path / "pc-1", "--token-file", str(token_file))
    cmdline = wait_for(
        lambda: Path(f"/proc/{process.pid}/cmdline").read_bytes() if process.poll() is None
        else b"gone",
        "the worker's command line",
    )  # fmt: skip
    assert token.encode() not in cmdline
    runs_linear(server, process, tmp_path / "pc-1" / "worker.log")
    assert "warning" not in (tmp_path / "pc-1" / "worker.log").read_text()


def test_a_token_on_the_command_line_is_warned_about(server: Installation, tmp_path: Path) -> None:
    token = server.cli("token", "create-worker", "pc-1").stdout.strip()
    process = worker(server, tmp_path / "pc-1", "--token", token)
    runs_linear(server, process, tmp_path / "pc-1" / "worker.log")
    said = (tmp_path / "pc-1" / "worker.log").read_text()
    assert "warning: a token given with --token can be read by every user" in said


def test_an_unreadable_token_file_is_refused_naming_it(
    server: Installation, tmp_path: Path
) -> None:
    missing = tmp_path / "nothing.token"
    process = worker(server, tmp_path / "pc-1", "--token-file", str(missing))
    assert process.wait(timeout=60) == 1
    said = (tmp_path / "pc-1" / "worker.log").read_text()
    assert f"--token-file: cannot read {missing}" in said


def test_admins_list_revoke_and_rotate_worker_tokens_and_the_admin_token(
    server: Installation,
) -> None:
    old = server.cli("token", "create-worker", "pc-1").stdout.strip()
    listed = json.loads(server.cli("token", "list", "--json").stdout)
    assert {(t["kind"], t["name"]) for t in listed} == {("admin", "admin"), ("worker", "pc-1")}
    assert old not in json.dumps(listed)

    rotated = server.cli("token", "rotate", "--worker", "pc-1")
    new = rotated.stdout.strip()
    assert new.startswith("ry_worker_") and "the old one no longer works" in rotated.stderr
    assert refused(server, old) and not refused(server, new)
    revoked = server.cli("token", "revoke", "--worker", "pc-1")
    assert "revoked 1 token(s) of worker pc-1" in revoked.stdout
    assert refused(server, new)

    old_admin = server.admin_token
    new_admin = server.cli("token", "rotate", "--admin").stdout.strip()
    assert server.admin_token == new_admin != old_admin
    assert refused(server, old_admin)
    assert json.loads(server.cli("whoami", "--json").stdout)["admin"] is True
    neither = server.cli("token", "rotate", check=False)
    assert neither.returncode == 1 and "--worker NAME or --admin" in neither.stderr


def test_a_worker_whose_token_is_revoked_stops_saying_why(
    server: Installation, tmp_path: Path
) -> None:
    token = server.cli("token", "create-worker", "pc-1").stdout.strip()
    token_file = tmp_path / "pc-1.token"
    token_file.write_text(token)
    folder = tmp_path / "pc-1"
    folder.mkdir()
    command = [*RUNYARD, "worker", "--server", server.url, "--name", "pc-1",
               "--data-dir", str(folder), "--token-file", str(token_file)]  # fmt: skip
    with open(folder / "worker.log", "w") as log:
        process = subprocess.Popen(
            command, env=clean_env(), stdout=log, stderr=subprocess.STDOUT, text=True
        )
    try:
        wait_for(
            lambda: any(w["name"] == "pc-1" for w in server.api("GET", "/api/workers")) or None,
            "the worker registered",
            alive=process,
        )
        server.cli("token", "revoke", "--worker", "pc-1")
        assert process.wait(timeout=60) == 1
    finally:
        if process.poll() is None:
            process.kill()
    said = (folder / "worker.log").read_text()
    assert "the server refused this worker's token" in said
    assert "runyard token create-worker pc-1" in said
    assert "claim refused" not in said
