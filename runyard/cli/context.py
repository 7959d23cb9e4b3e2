"""What every command shares: settings from flags and variables, and the client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from runyard.client import Client
from runyard.errors import InvalidInput, RunyardError
from runyard.settings import Settings

console = Console()
errors = Console(stderr=True)

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
    help="API token (default: the data directory's admin token) [env: RUNYARD_TOKEN].",
)


def settings(**overrides: Any) -> Settings:
    return Settings.from_env().with_overrides(**overrides)


def client(data_dir: Path | None, server: str | None, token: str | None) -> Client:
    """A client of the server named by flags/variables, else the one in the data directory."""
    return Client(*locate_server(data_dir, server, token))


def locate_server(data_dir: Path | None, server: str | None, token: str | None) -> tuple[str, str]:
    """(URL, token) from flags, variables, else the server running in the data directory."""
    s = settings(data_dir=data_dir, server=server, token=token)
    url, secret = s.server, s.token
    if not url:
        try:
            url = json.loads(s.server_file.read_text())["url"]
        except (FileNotFoundError, ValueError, KeyError):
            raise RunyardError(
                f"no server is running with data directory {s.data_dir}; start one with "
                "'runyard up' or name one with --server / RUNYARD_SERVER"
            ) from None
    if not secret:
        try:
            secret = s.admin_token_file.read_text().strip()
        except FileNotFoundError:
            raise RunyardError(
                f"no token: pass --token / RUNYARD_TOKEN (no admin token in {s.data_dir})"
            ) from None
    return url, secret


def fail(exc: RunyardError) -> typer.Exit:
    errors.print(f"[red]error:[/red] {escape(exc.message)}", highlight=False, soft_wrap=True)
    return typer.Exit(1)


def json_option(text: str, option: str) -> Any:
    """The JSON value of a command-line option, or an error naming the option."""
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"{option} is not valid JSON: {exc}") from None
