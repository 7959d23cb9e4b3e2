"""Acceptance: the CLI of users, groups, personal tokens, sharing and the activity log against
a real ``runyard server`` over HTTP. The commands run in this process (typer's CliRunner, each
with its own environment: an admin on the server's machine, or a user with only a URL and a
config folder); one runs as a subprocess to show the error the user sees."""

from __future__ import annotations

import json
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from runyard.cli import app
from runyard.errors import RunyardError
from tests.acceptance.conftest import RUNYARD, Installation, clean_env, start_server, stop
from tests.conftest import TASK_TYPES, WORKFLOWS

PASSWORD = "correct horse battery"


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class Person:
    """Someone running ``runyard``: its environment (config folder, server, data directory)."""

    env: dict[str, str | None]
    home: Path

    @property
    def credentials_file(self) -> Path:
        return self.home / "config" / "runyard" / "credentials.json"

    def run(self, *args: str, input: str | None = None, check: bool = True) -> Outcome:
        """``runyard ARGS`` in this process; a Runyard error exits 1 with its message, as
        ``runyard.cli.main`` does."""
        result = CliRunner().invoke(app, list(args), env=self.env, input=input)
        error = result.exception if isinstance(result.exception, RunyardError) else None
        if result.exception is not None and error is None and result.exit_code != 0:
            if not isinstance(result.exception, SystemExit):
                raise result.exception
        outcome = Outcome(
            code=1 if error is not None else result.exit_code,
            stdout=result.stdout,
            stderr=result.stderr + (error.message if error is not None else ""),
        )
        if check and outcome.code != 0:
            raise AssertionError(f"runyard {' '.join(args)} failed:\n{outcome}")
        return outcome


def person(home: Path, **env: str | None) -> Person:
    """A fresh environment: no RUNYARD_* variables but ``env``, its own config folder and an
    empty default data directory."""
    home.mkdir(parents=True, exist_ok=True)
    base: dict[str, str | None] = {
        "RUNYARD_DATA_DIR": None,
        "RUNYARD_SERVER": None,
        "RUNYARD_TOKEN": None,
        "RUNYARD_CONFIG_DIR": None,
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
    }
    return Person(env=base | {f"RUNYARD_{k.upper()}": v for k, v in env.items()}, home=home)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    installation = start_server(tmp_path_factory.mktemp("lab") / "server")
    yield installation
    stop(installation)


@pytest.fixture
def admin(lab: Installation, tmp_path: Path) -> Person:
    """The admin on the server's machine: the data directory's admin token."""
    return person(tmp_path / "admin", data_dir=str(lab.data_dir))


def user_on_laptop(lab: Installation, home: Path) -> Person:
    """A user elsewhere: knows the server's URL, has no token yet."""
    return person(home, server=lab.url)


def add_user(admin: Person, name: str, *extra: str) -> None:
    admin.run("user", "add", name, "--password-stdin", *extra, input=PASSWORD + "\n")


def test_admin_adds_users_and_groups_and_lists_them(admin: Person) -> None:
    assert admin.run("user", "add", "ann", "--password-stdin", input=PASSWORD + "\n").stdout == (
        "added user ann\n"
    )
    assert "added admin cat" in admin.run("user", "add", "cat", "--admin", "--no-password").stdout
    admin.run("group", "add", "imaging")
    admin.run("group", "member", "add", "imaging", "ann")
    admin.run("group", "member", "add", "imaging", "cat")

    users = {u["name"]: u for u in admin.run("user", "list", "--json").json()}
    assert users["ann"]["groups"] == ["imaging"] and users["ann"]["has_password"]
    assert users["cat"]["admin"] and not users["cat"]["has_password"]
    assert sorted(users["cat"]["groups"]) == ["admins", "imaging"]
    groups = {g["name"]: g["members"] for g in admin.run("group", "list", "--json").json()}
    assert groups["imaging"] == ["ann", "cat"]
    assert "imaging" in admin.run("group", "list").stdout

    admin.run("group", "member", "remove", "imaging", "cat")
    groups = {g["name"]: g["members"] for g in admin.run("group", "list", "--json").json()}
    assert groups["imaging"] == ["ann"]
    admin.run("user", "disable", "ann")
    assert {u["name"]: u["disabled"] for u in admin.run("user", "list", "--json").json()}["ann"]
    admin.run("user", "enable", "ann")
    admin.run("group", "delete", "imaging")
    assert "imaging" not in {g["name"] for g in admin.run("group", "list", "--json").json()}

    short = admin.run("user", "add", "dan", "--password-stdin", input="short\n", check=False)
    assert short.code == 1 and "8 to 1024 characters" in short.stderr
    asked = admin.run("user", "add", "dan", check=False)  # no terminal to ask the password on
    assert asked.code == 1 and "--password-stdin" in asked.stderr


def test_login_keeps_an_owner_only_credentials_file_that_the_commands_use(
    lab: Installation, admin: Person, tmp_path: Path
) -> None:
    add_user(admin, "bea")
    bea = user_on_laptop(lab, tmp_path / "bea")
    refused = bea.run("whoami", check=False)
    assert refused.code == 1 and "runyard login --server" in refused.stderr

    wrong = bea.run("login", "--user", "bea", "--password-stdin", input="not it\n", check=False)
    assert wrong.code == 1 and "wrong" in wrong.stderr
    assert not bea.credentials_file.exists()

    said = bea.run("login", "--user", "bea", "--password-stdin", input=PASSWORD + "\n").stdout
    assert f"logged in to {lab.url} as bea" in said
    assert stat.S_IMODE(bea.credentials_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(bea.credentials_file.parent.stat().st_mode) == 0o700
    stored = json.loads(bea.credentials_file.read_text())["servers"][lab.url]
    assert stored["user"] == "bea" and stored["token"].startswith("ry_user_")

    me = bea.run("whoami", "--json").json()
    assert (me["name"], me["kind"], me["token_from"]) == ("bea", "user", "login")
    [token] = bea.run("token", "list", "--json").json()
    assert token["id"] == stored["token_id"] and token["label"].startswith("runyard login")

    # --token and RUNYARD_TOKEN come before the credentials file ...
    assert bea.run("whoami", "--json", "--token", lab.admin_token).json()["name"] == "admin"
    # ... and the credentials file before the data directory's admin token.
    on_server = person(bea.home, data_dir=str(lab.data_dir))
    assert on_server.run("whoami", "--json").json()["name"] == "bea"

    assert "revoked" in bea.run("logout").stdout
    assert lab.url not in json.loads(bea.credentials_file.read_text())["servers"]
    gone = bea.run("whoami", "--token", stored["token"], check=False)
    assert gone.code == 1 and "not valid" in gone.stderr
    assert bea.run("logout", check=False).code == 1


def test_logging_in_again_replaces_the_token_and_a_stale_one_says_to_log_in_again(
    lab: Installation, admin: Person, tmp_path: Path
) -> None:
    add_user(admin, "ida")
    ida = user_on_laptop(lab, tmp_path / "ida")
    for _ in range(2):
        ida.run("login", "--user", "ida", "--password-stdin", input=PASSWORD + "\n")
    [token] = ida.run("token", "list", "--json").json()  # the first one was revoked
    admin.run("token", "revoke", str(token["id"]))
    stale = ida.run("token", "list", check=False)
    assert stale.code == 1 and f"runyard login --server {lab.url}" in stale.stderr


def test_personal_tokens_are_shown_once_listed_and_a_revoked_one_is_refused(
    lab: Installation, admin: Person
) -> None:
    add_user(admin, "cy")
    made = admin.run("token", "create", "--label", "cy's laptop", "--user", "cy")
    secret = made.stdout.strip()
    assert secret.startswith("ry_user_") and "shown only this once" in made.stderr
    listed = admin.run("token", "list", "--all", "--json").json()
    [mine] = [t for t in listed if t["label"] == "cy's laptop"]
    assert mine["user"] == "cy"
    assert admin.run("token", "list", "--json").json() == [
        t for t in listed if t["user"] == "admin"
    ]
    assert admin.run("whoami", "--json", "--token", secret).json()["name"] == "cy"

    admin.run("token", "revoke", str(mine["id"]))
    assert mine["id"] not in [t["id"] for t in admin.run("token", "list", "--all", "--json").json()]
    refused = subprocess.run(
        [*RUNYARD, "whoami", "--server", lab.url, "--token", secret],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1
    assert "error: the token is not valid (unknown or revoked)" in refused.stderr


@pytest.fixture(scope="module")
def linear(lab: Installation) -> str:
    tasks = [str(TASK_TYPES / t) for t in ("Source", "Double", "Add")]
    lab.cli("import", *tasks, str(WORKFLOWS / "Linear"))
    return "Linear"


def test_share_and_unshare_a_workflow_with_a_user_and_a_group(
    lab: Installation, admin: Person, linear: str, tmp_path: Path
) -> None:
    add_user(admin, "eve")
    admin.run("group", "add", "physics")
    eve = user_on_laptop(lab, tmp_path / "eve")
    eve.run("login", "--user", "eve", "--password-stdin", input=PASSWORD + "\n")
    hidden = eve.run("shares", linear, check=False)
    assert hidden.code == 1 and "no workflow" in hidden.stderr.lower()

    said = admin.run("share", linear, "--user", "eve", "--level", "view").stdout
    assert said == f"shared workflow {linear} with user eve to view\n"
    admin.run("share", linear, "--group", "physics", "--level", "operate")
    shown = admin.run("shares", linear, "--json").json()
    assert shown["owner"] == "admin"
    assert sorted((s.get("user", ""), s.get("group", ""), s["level"]) for s in shown["shares"]) == [
        ("", "physics", "operate"),
        ("eve", "", "view"),
    ]
    as_eve = eve.run("shares", linear, "--json").json()
    assert as_eve["your_level"] == "view"
    assert "eve" in eve.run("shares", linear).stdout

    admin.run("unshare", linear, "--user", "eve")
    assert eve.run("shares", linear, check=False).code == 1
    both = admin.run(
        "share", linear, "--user", "eve", "--group", "physics", "--level", "view", check=False
    )
    assert both.code == 1 and "either --user or --group" in both.stderr
    bad = admin.run("share", linear, "--user", "eve", "--level", "own", check=False)
    assert bad.code == 2


def test_activity_json_is_filtered_by_user_action_and_workflow(
    lab: Installation, admin: Person, linear: str
) -> None:
    add_user(admin, "fay", "--admin")
    fay_token = admin.run("token", "create", "--user", "fay", "--label", "fay").stdout.strip()
    admin.run("group", "add", "fays", "--token", fay_token)
    admin.run("share", linear, "--group", "fays", "--level", "view")

    by_fay = admin.run("activity", "--user", "fay", "--json").json()
    assert [e["action"] for e in by_fay] == ["group.add"]
    assert by_fay[0]["actor"] == "fay" and "fays" in by_fay[0]["message"]

    groups = admin.run("activity", "--action", "group.", "--json").json()
    assert groups and all(e["action"].startswith("group.") for e in groups)
    on_linear = admin.run("activity", "--workflow", linear, "--json").json()
    assert on_linear and all(e["workflow"] == linear for e in on_linear)
    assert "workflow.share" in {e["action"] for e in on_linear}
    assert len(admin.run("activity", "--limit", "2", "--json").json()) == 2
    assert "group.add" in admin.run("activity", "--user", "fay").stdout


def test_userdata_mapping_for_groups(admin: Person, tmp_path: Path) -> None:
    admin.run("group", "add", "scanners")
    admin.run("group", "add", "viewers")
    said = admin.run(
        "userdata", "map", "/Lab/", str(tmp_path), "--group", "scanners", "--group", "viewers"
    ).stdout
    assert said.endswith("(groups: scanners, viewers)\n")
    assert "scanners, viewers" in admin.run("userdata", "list").stdout
    admin.run("userdata", "unmap", "/Lab/")
