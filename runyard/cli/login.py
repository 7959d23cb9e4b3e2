"""``runyard login``, ``logout`` and ``whoami``: a user's own token for a server, kept in the
credentials file (runyard/cli/credentials.py) that every client command reads."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Annotated

import typer

from runyard.cli import context as ctx
from runyard.cli import credentials
from runyard.cli.accounts import read_stdin_line, say
from runyard.cli.context import DataDir, ServerUrl, Token
from runyard.client import Client, RemoteError
from runyard.errors import InvalidInput, RunyardError


def login(
    server: str | None = ServerUrl,
    user: Annotated[
        str | None,
        typer.Option("--user", help="Your user name (default: asked for).", show_default=False),
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read the password from standard input (one line) instead of asking for it.",
        ),
    ] = False,
    data_dir: Path | None = DataDir,
) -> None:
    """Log in to a server with your name and password: keeps a new personal token for it in
    $XDG_CONFIG_HOME/runyard/credentials.json (~/.config/runyard/; readable by you only),
    which the other commands then use for that server.

    Example: runyard login --server http://lab-server:8765 --user alice
    """
    url = credentials.server_key(ctx.server_url(data_dir, server))
    path = ctx.settings(data_dir=data_dir).credentials_file
    interactive = sys.stdin.isatty()
    if user is None:
        if password_stdin or not interactive:
            raise InvalidInput("standard input is not a terminal: name the user with --user")
        user = typer.prompt("User")
    if password_stdin:
        password = read_stdin_line("password")
    elif interactive:
        password = typer.prompt("Password", hide_input=True)
    else:
        raise InvalidInput(
            "standard input is not a terminal, so no password can be asked for: pass "
            "--password-stdin and write the password to standard input"
        )
    label = f"runyard login on {socket.gethostname()}"
    with Client(url, "") as client:
        answer = client.post("/api/login", {"name": user, "password": password, "label": label})
    earlier = credentials.find(path, url)
    stored = credentials.Login(user=answer["name"], token=answer["token"], token_id=answer["id"])
    credentials.store(path, url, stored)
    if earlier is not None and earlier.token != answer["token"]:
        _revoke(url, earlier)
    say(f"logged in to {url} as {answer['name']}" + (" (admin)" if answer["admin"] else ""))
    say(f"token {answer['id']} kept in {path}")


def logout(
    server: str | None = ServerUrl,
    data_dir: Path | None = DataDir,
) -> None:
    """Log out of a server: revoke the token that 'runyard login' kept for it and forget it.

    Example: runyard logout --server http://lab-server:8765
    """
    url = credentials.server_key(ctx.server_url(data_dir, server))
    path = ctx.settings(data_dir=data_dir).credentials_file
    found = credentials.find(path, url)
    if found is None:
        raise RunyardError(f"not logged in to {url} (nothing for it in {path})")
    revoked = _revoke(url, found)
    credentials.remove(path, url)
    note = "" if revoked else " (the server no longer knew its token)"
    say(f"logged out of {url}: {found.user}'s token is revoked and forgotten{note}")


def _revoke(url: str, login: credentials.Login) -> bool:
    """Revoke the token of ``login`` with itself; False if the server refuses it already."""
    with Client(url, login.token) as client:
        try:
            token_id = login.token_id
            if token_id is None:  # a file written without the id: the newest token of login
                mine = client.get("/api/tokens")
                labelled = [t["id"] for t in mine if t["label"].startswith("runyard login")]
                if not labelled:
                    return False
                token_id = labelled[0]
            client.delete(f"/api/tokens/{token_id}")
        except RemoteError as exc:
            if exc.status_code in (401, 404):
                return False
            raise
    return True


def whoami(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Who the server takes you for (with the token the other commands would use), and
    where that token comes from.

    Example: runyard whoami
    """
    url, secret, source = ctx.find_token(data_dir, server, token)
    client = ctx.LoggedInClient(url, secret) if source == "login" else Client(url, secret)
    with client:
        me = client.get("/api/me")
    where = {
        "given": "--token / RUNYARD_TOKEN",
        "login": "runyard login",
        "admin-token": "the data directory's admin token",
    }[source]
    if as_json:
        print(json.dumps(me | {"server": url, "token_from": source}, indent=2))
        return
    groups = ", ".join(me["groups"]) or "none"
    say(f"{me['name']} ({me['kind']}; groups: {groups}) on {url}, by {where}")
