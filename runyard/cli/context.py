"""What every command shares: settings from flags and variables, and the client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import typer
from rich.console import Console
from rich.markup import escape

from runyard.cli import credentials
from runyard.client import Client, RemoteError
from runyard.errors import InvalidInput, RunyardError
from runyard.settings import Settings

# Messages are printed whole, never broken at the console's width (a path split over two
# lines would break the scripts that read them); tables still fit the width.
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)

DataDir = typer.Option(
    None,
    "--data-dir",
    help="Data directory of a server on this machine: its address and admin token are read "
    "there [env: RUNYARD_DATA_DIR].",
)
ServerUrl = typer.Option(
    None,
    "--server",
    help="Server URL (default: the server running on the data directory) [env: RUNYARD_SERVER].",
)
Token = typer.Option(
    None,
    "--token",
    help="API token (default: the token of 'runyard login' for the server, else the data "
    "directory's admin token) [env: RUNYARD_TOKEN].",
)


def name_path(name: str) -> str:
    """A user-given name as one URL path segment: ``Mouse study #2 (50% dose)`` ->
    ``Mouse%20study%20%232%20%2850%25%20dose%29``; every path built from a name goes
    through it."""
    return quote(name, safe="")


def settings(**overrides: Any) -> Settings:
    return Settings.from_env().with_overrides(**overrides)


def client(data_dir: Path | None, server: str | None, token: str | None) -> Client:
    """A client of the server named by flags/variables, else the one in the data directory."""
    url, secret, source = find_token(data_dir, server, token)
    if source == "login":
        return LoggedInClient(url, secret)
    return Client(url, secret)


def locate_server(
    data_dir: Path | None, server: str | None, token: str | None, *, logins: bool = True
) -> tuple[str, str]:
    """(URL, token) from flags, variables, ``runyard login``, else the data directory."""
    url, secret, _ = find_token(data_dir, server, token, logins=logins)
    return url, secret


def server_url(data_dir: Path | None, server: str | None) -> str:
    """The server's URL: --server / RUNYARD_SERVER, else the server running on the data
    directory."""
    s = settings(data_dir=data_dir, server=server)
    if s.server:
        return s.server
    try:
        url: str = json.loads(s.server_file.read_text())["url"]
    except (FileNotFoundError, ValueError, KeyError):
        raise RunyardError(
            f"no server is running with data directory {s.data_dir}; start one with "
            "'runyard up' or name one with --server / RUNYARD_SERVER"
        ) from None
    return url


def find_token(
    data_dir: Path | None, server: str | None, token: str | None, *, logins: bool = True
) -> tuple[str, str, str]:
    """(URL, token, where the token came from): --token, RUNYARD_TOKEN ("given"), the
    credentials file of 'runyard login' for that URL ("login", unless not ``logins``), the
    data directory's admin token ("admin-token")."""
    s = settings(data_dir=data_dir, server=server, token=token)
    url = server_url(data_dir, server)
    if s.token:
        return url, s.token, "given"
    if logins and (login := credentials.find(s.credentials_file, url)) is not None:
        return url, login.token, "login"
    try:
        return url, s.admin_token_file.read_text().strip(), "admin-token"
    except FileNotFoundError:
        raise RunyardError(
            f"no token for {url}: log in with 'runyard login --server {url}', or pass "
            f"--token / RUNYARD_TOKEN (no login in {s.credentials_file}, no admin token in "
            f"{s.data_dir})"
        ) from None


class LoggedInClient(Client):
    """A client with the token of 'runyard login': says to log in again when it is refused."""

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            return super().request(method, path, **kwargs)
        except RemoteError as exc:
            if exc.status_code != 401:
                raise
            raise RunyardError(
                f"{exc.message}: the token that 'runyard login' stored for {self.server} no "
                f"longer works; log in again with 'runyard login --server {self.server}'"
            ) from None


def fail(exc: RunyardError) -> typer.Exit:
    errors.print(f"[red]error:[/red] {escape(exc.message)}", highlight=False, soft_wrap=True)
    return typer.Exit(1)


def json_option(text: str, option: str) -> Any:
    """The JSON value of a command-line option, or an error naming the option."""
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"{option} is not valid JSON: {exc}") from None
