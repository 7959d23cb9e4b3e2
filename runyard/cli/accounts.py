"""``runyard user`` and ``runyard group``: users and groups (docs/users.md); the tokens are
``runyard token`` (``tokens.py``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from runyard.cli import context as ctx
from runyard.cli.context import DataDir, ServerUrl, Token, console, name_path
from runyard.errors import InvalidInput

user_app = typer.Typer(
    help="Users: add them, list them, disable them, set their passwords (admins).",
    no_args_is_help=True,
)
group_app = typer.Typer(
    help="Groups of users, to share workflows and User Data with (admins).",
    no_args_is_help=True,
)
member_app = typer.Typer(help="Add users to a group, or remove them.", no_args_is_help=True)
group_app.add_typer(member_app, name="member")

UserName = Annotated[str, typer.Argument(help="The user's name.", show_default=False)]
GroupName = Annotated[str, typer.Argument(help="The group's name.", show_default=False)]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from standard input (one line) instead of asking for it.",
    ),
]


def say(text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def read_stdin_line(what: str) -> str:
    line = sys.stdin.readline()
    if not line:
        raise InvalidInput(f"--password-stdin: standard input ended before the {what}")
    return line.rstrip("\r\n")


def new_password(from_stdin: bool, prompt: str = "Password") -> str:
    """A new password: the next line of standard input, else asked twice (hidden)."""
    if from_stdin:
        return read_stdin_line("password")
    if not sys.stdin.isatty():
        raise InvalidInput(
            "standard input is not a terminal, so no password can be asked for: pass "
            "--password-stdin and write the password to standard input"
        )
    text: str = typer.prompt(prompt, hide_input=True, confirmation_prompt=True)
    return text


def current_password(from_stdin: bool) -> str:
    if from_stdin:
        return read_stdin_line("current password")
    if not sys.stdin.isatty():
        raise InvalidInput(
            "standard input is not a terminal, so no password can be asked for: pass "
            "--password-stdin and write the current and the new password to standard input, "
            "one per line"
        )
    text: str = typer.prompt("Current password", hide_input=True)
    return text


# -- users ------------------------------------------------------------------------------------


@user_app.command("add")
def user_add(
    name: UserName,
    admin: Annotated[
        bool, typer.Option("--admin", help="Make the user an admin (a member of admins).")
    ] = False,
    password_stdin: PasswordStdin = False,
    no_password: Annotated[
        bool,
        typer.Option(
            "--no-password",
            help="No password: the user cannot log in, only use tokens an admin makes for it "
            "(runyard token create --user NAME).",
        ),
    ] = False,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Add a user; asks for its password twice (at least 8 characters).

    Example: runyard user add alice
    """
    if no_password and password_stdin:
        raise InvalidInput("--no-password and --password-stdin exclude each other")
    password = None if no_password else new_password(password_stdin)
    with ctx.client(data_dir, server, token) as client:
        user = client.post("/api/users", {"name": name, "password": password, "admin": admin})
    kind = "admin" if user["admin"] else "user"
    say(f"added {kind} {user['name']}" + ("" if user["has_password"] else " (tokens only)"))


@user_app.command("list")
def user_list(
    as_json: AsJson = False,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """List the users with their groups.

    Example: runyard user list
    """
    with ctx.client(data_dir, server, token) as client:
        rows = client.get("/api/users")
    if as_json:
        print_json(rows)
        return
    table = Table("User", "Groups", "Password", "Disabled", "Added")
    for u in rows:
        table.add_row(
            u["name"], ", ".join(u["groups"]), "yes" if u["has_password"] else "no (tokens only)",
            "disabled" if u["disabled"] else "", u["created_at"] or "",
        )  # fmt: skip
    console.print(table)


def _set_disabled(name: str, disabled: bool, where: tuple[Any, ...]) -> None:
    with ctx.client(*where) as client:
        user = client.request("PATCH", f"/api/users/{name_path(name)}", json={"disabled": disabled})
    say(f"user {user['name']} is {'disabled' if user['disabled'] else 'enabled'}")


@user_app.command("disable")
def user_disable(
    name: UserName,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Disable a user: it can no longer log in, its tokens and sessions stop working; its
    workflows stay.

    Example: runyard user disable bob
    """
    _set_disabled(name, True, (data_dir, server, token))


@user_app.command("enable")
def user_enable(
    name: UserName,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Enable a disabled user again (its old tokens stay revoked).

    Example: runyard user enable bob
    """
    _set_disabled(name, False, (data_dir, server, token))


@user_app.command("passwd")
def user_passwd(
    name: Annotated[
        str | None,
        typer.Argument(help="The user (default: you); admins set anyone's.", show_default=False),
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read the passwords from standard input, one per line: for your own, the "
            "current one first, then the new one.",
        ),
    ] = False,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Set a password: your own (asks the current one first), or an admin any user's. The
    user's web UI sessions end.

    Example: runyard user passwd
    """
    with ctx.client(data_dir, server, token) as client:
        me = client.get("/api/me")
        target = name or me["name"]
        own = target == me["name"]
        current = current_password(password_stdin) if own else None
        password = new_password(password_stdin, "New password")
        client.put(
            f"/api/users/{name_path(target)}/password",
            {"password": password, "current": current},
        )
    say(f"set the password of {target}")


# -- groups -----------------------------------------------------------------------------------


@group_app.command("add")
def group_add(
    name: GroupName,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Add a group.

    Example: runyard group add imaging
    """
    with ctx.client(data_dir, server, token) as client:
        client.post("/api/groups", {"name": name})
    say(f"added group {name}")


@group_app.command("list")
def group_list(
    as_json: AsJson = False,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """List the groups with their members.

    Example: runyard group list
    """
    with ctx.client(data_dir, server, token) as client:
        rows = client.get("/api/groups")
    if as_json:
        print_json(rows)
        return
    table = Table("Group", "Members")
    for g in rows:
        table.add_row(g["name"], ", ".join(g["members"]))
    console.print(table)


@group_app.command("delete")
def group_delete(
    name: GroupName,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Delete a group (not admins); what was shared with it is no longer.

    Example: runyard group delete imaging
    """
    with ctx.client(data_dir, server, token) as client:
        client.delete(f"/api/groups/{name_path(name)}")
    say(f"deleted group {name}")


@member_app.command("add")
def member_add(
    group: GroupName,
    user: UserName,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Add a user to a group (to the group admins: make it an admin).

    Example: runyard group member add imaging alice
    """
    with ctx.client(data_dir, server, token) as client:
        client.put(f"/api/groups/{name_path(group)}/members/{name_path(user)}")
    say(f"added {user} to group {group}")


@member_app.command("remove")
def member_remove(
    group: GroupName,
    user: UserName,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Remove a user from a group.

    Example: runyard group member remove imaging alice
    """
    with ctx.client(data_dir, server, token) as client:
        client.delete(f"/api/groups/{name_path(group)}/members/{name_path(user)}")
    say(f"removed {user} from group {group}")
