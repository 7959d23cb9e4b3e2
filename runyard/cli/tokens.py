"""``runyard token``: personal tokens (to call the server as yourself), worker tokens and the
admin token: create, list, revoke, rotate (docs/users.md, docs/security.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from runyard.cli import context as ctx
from runyard.cli.accounts import AsJson, print_json, say
from runyard.cli.context import DataDir, ServerUrl, Token, console, name_path
from runyard.errors import InvalidInput

token_app = typer.Typer(
    help="Personal tokens (to call the server as yourself) and worker tokens.",
    no_args_is_help=True,
)


# -- personal tokens --------------------------------------------------------------------------


@token_app.command("create")
def token_create(
    label: Annotated[
        str, typer.Option("--label", help="What the token is for (shown by token list).")
    ] = "",
    user: Annotated[
        str | None,
        typer.Option("--user", help="Another user's token (admins only).", show_default=False),
    ] = None,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Create a personal token and print it: it is shown this once (the server keeps only
    its hash). Use it as --token or RUNYARD_TOKEN.

    Example: runyard token create --label laptop
    """
    with ctx.client(data_dir, server, token) as client:
        answer = client.post("/api/tokens", {"label": label, "user": user})
    print(answer["token"])
    ctx.errors.print(
        f"personal token {answer['id']} of {answer['user']}: shown only this once, keep it "
        f"safe (runyard token revoke {answer['id']} ends it)",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@token_app.command("list")
def token_list(
    everyone: Annotated[
        bool, typer.Option("--all", help="Every user's tokens (admins only).")
    ] = False,
    as_json: AsJson = False,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """List your personal tokens that are not revoked (never the tokens themselves); an
    admin sees the worker tokens and the admin token too.

    Example: runyard token list
    """
    with ctx.client(data_dir, server, token) as client:
        params = {"everyone": str(everyone).lower()}
        if client.get("/api/me")["admin"]:
            params["workers"] = "true"
        rows = client.get("/api/tokens", params=params)
    if as_json:
        print_json(rows)
        return
    table = Table("Id", "Kind", "Name", "Label", "Created", "Last used")
    for t in rows:
        table.add_row(
            str(t["id"]), t["kind"], t["name"], t["label"], t["created_at"] or "",
            t["last_used_at"] or "never",
        )  # fmt: skip
    console.print(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[
        int | None,
        typer.Argument(
            metavar="[ID]", help="The token's id (runyard token list).", show_default=False
        ),
    ] = None,
    worker: Annotated[
        str | None,
        typer.Option(
            "--worker", help="Every token of this worker instead (admins only).", show_default=False
        ),
    ] = None,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Revoke one of your personal tokens (an admin: anyone's, or a worker's), or every token
    of a worker; it stops working at once. The admin token is rotated instead.

    Example: runyard token revoke 7
    """
    if (token_id is None) == (worker is None):
        raise InvalidInput("name the token to revoke: its ID, or --worker NAME (not both)")
    with ctx.client(data_dir, server, token) as client:
        if worker is not None:
            answer = client.delete(f"/api/tokens/worker/{name_path(worker)}")
            say(f"revoked {answer['revoked']} token(s) of worker {worker}")
            return
        client.delete(f"/api/tokens/{token_id}")
    say(f"revoked token {token_id}")


@token_app.command("rotate")
def token_rotate(
    worker: Annotated[
        str | None,
        typer.Option("--worker", help="Replace this worker's token.", show_default=False),
    ] = None,
    admin: Annotated[
        bool,
        typer.Option(
            "--admin", help="Replace the admin token (and the server's admin-token file)."
        ),
    ] = False,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Replace a worker's token or the admin token (admins): prints the new one, shown this
    once; the old one stops working at once. Give a worker its new token and start it again
    (--token-file); the server writes a new admin token to its data directory's admin-token.

    Example: runyard token rotate --worker imaging-pc-2 > ~/imaging-pc-2.token
    """
    if admin == (worker is not None):
        raise InvalidInput("name the token to rotate: --worker NAME or --admin (not both)")
    path = (
        "/api/tokens/admin/rotate"
        if admin
        else f"/api/tokens/worker/{name_path(worker or '')}/rotate"
    )
    with ctx.client(data_dir, server, token) as client:
        answer = client.post(path)
    print(answer["token"])
    what = "the admin token" if admin else f"the token of worker {worker}"
    ctx.errors.print(
        f"replaced {what}: the old one no longer works; the new one is shown only this once",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@token_app.command("create-worker")
def token_create_worker(
    name: Annotated[str, typer.Argument(help="A name for the worker machine.")],
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Create a worker token (give it to the worker machine).

    Example: runyard token create-worker imaging-pc-2
    """
    with ctx.client(data_dir, server, token) as client:
        answer = client.post("/api/tokens/worker", {"name": name})
    print(answer["token"])
