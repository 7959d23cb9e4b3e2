"""``runyard userdata``: the mappings of User Data's virtual roots to folders of the server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from runyard.cli import context as ctx
from runyard.cli.context import DataDir, ServerUrl, Token, console

userdata_app = typer.Typer(
    help="Map virtual roots of User Data (/Scans/) to folders of the server.",
    no_args_is_help=True,
)

VirtualRoot = Annotated[
    str, typer.Argument(help="The virtual root: a folder path like /Scans/.", show_default=False)
]


@userdata_app.command("map")
def userdata_map(
    root: VirtualRoot,
    folder: Annotated[
        Path, typer.Argument(help="The folder on the server's machine.", show_default=False)
    ],
    groups: Annotated[
        list[str] | None,
        typer.Option(
            "--group",
            help="A group whose members (and their workflows' jobs) may use it; repeat for "
            "each (default: every user).",
            show_default=False,
        ),
    ] = None,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Map a virtual root to a folder of the server (replacing its folder if mapped).

    Task scripts then reach the folder's files as /Scans/... with User Data tokens. A
    relative folder path is taken from the current directory.

    Example: runyard userdata map /Scans/ /data/scans --group imaging
    """
    body = {"root": root, "folder": str(folder.expanduser().absolute()), "groups": groups or []}
    with ctx.client(data_dir, server, token) as client:
        answer = client.request("PUT", "/api/userdata/mappings", json=body)
    for_whom = f" (groups: {', '.join(answer['groups'])})" if answer.get("groups") else ""
    console.print(f"mapped {answer['root']} -> {answer['folder']}{for_whom}", highlight=False)


@userdata_app.command("list")
def userdata_list(
    data_dir: Path | None = DataDir, server: str | None = ServerUrl, token: str | None = Token
) -> None:
    """List the User Data mappings.

    Example: runyard userdata list
    """
    with ctx.client(data_dir, server, token) as client:
        rows = client.get("/api/userdata/mappings")
    table = Table("Virtual root", "Folder", "Groups", "Mapped at")
    for row in rows:
        groups = ", ".join(row.get("groups", [])) or "(every user)"
        table.add_row(row["root"], row["folder"] or "", groups, row["created_at"] or "")
    console.print(table)


@userdata_app.command("unmap")
def userdata_unmap(
    root: VirtualRoot,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Remove the mapping of a virtual root (its folder and files are not touched).

    Example: runyard userdata unmap /Scans/
    """
    with ctx.client(data_dir, server, token) as client:
        client.request("DELETE", "/api/userdata/mappings", params={"root": root})
    console.print(f"unmapped {root}", highlight=False)
