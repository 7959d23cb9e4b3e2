"""``runyard share``, ``unshare`` and ``shares``: who else may view, operate or edit a
workflow; and ``runyard activity``: the activity log, filtered."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from runyard.cli import context as ctx
from runyard.cli.accounts import say
from runyard.cli.context import DataDir, ServerUrl, Token, console, name_path
from runyard.cli.workflows import WorkflowName
from runyard.errors import InvalidInput


class Level(StrEnum):
    view = "view"
    operate = "operate"
    edit = "edit"


ShareUser = Annotated[
    str | None, typer.Option("--user", help="A user to share with.", show_default=False)
]
ShareGroup = Annotated[
    str | None,
    typer.Option("--group", help="A group to share with (its members).", show_default=False),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _grantee(user: str | None, group: str | None) -> dict[str, str]:
    if (user is None) == (group is None):
        raise InvalidInput("name either --user or --group (one of them)")
    return {"user": user} if user is not None else {"group": group or ""}


def _put_share(where: tuple[Any, ...], workflow: str, body: dict[str, Any]) -> dict[str, Any]:
    with ctx.client(*where) as client:
        answer: dict[str, Any] = client.put(f"/api/workflows/{name_path(workflow)}/shares", body)
    return answer


def share(
    workflow: WorkflowName,
    level: Annotated[
        Level,
        typer.Option(
            "--level",
            help="view: see it, its runs, jobs and files; operate: also add runs, answer "
            "forms, restart and abort jobs; edit: also change its tasks, start and stop it.",
            show_default=False,
        ),
    ],
    user: ShareUser = None,
    group: ShareGroup = None,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Share a workflow with a user or a group (its owner and admins may); sharing again
    changes the level.

    Example: runyard share Study --group imaging --level operate
    """
    grantee = _grantee(user, group)
    _put_share((data_dir, server, token), workflow, grantee | {"level": level.value})
    [(kind, name)] = grantee.items()
    say(f"shared workflow {workflow} with {kind} {name} to {level.value}")


def unshare(
    workflow: WorkflowName,
    user: ShareUser = None,
    group: ShareGroup = None,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Stop sharing a workflow with a user or a group.

    Example: runyard unshare Study --user bob
    """
    grantee = _grantee(user, group)
    _put_share((data_dir, server, token), workflow, grantee | {"level": None})
    [(kind, name)] = grantee.items()
    say(f"stopped sharing workflow {workflow} with {kind} {name}")


def shares(
    workflow: WorkflowName,
    as_json: AsJson = False,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Show a workflow's owner, your level on it, and with whom it is shared.

    Example: runyard shares Study
    """
    with ctx.client(data_dir, server, token) as client:
        answer = client.get(f"/api/workflows/{name_path(workflow)}/shares")
    if as_json:
        print(json.dumps(answer, indent=2))
        return
    say(
        f"workflow {answer['workflow']}: owner {answer['owner'] or '(none)'}, "
        f"your level {answer['your_level']}"
    )
    if not answer["shares"]:
        say("shared with no one")
        return
    table = Table("With", "Level", "Since")
    for s in answer["shares"]:
        with_ = f"group {s['group']}" if "group" in s else f"user {s['user']}"
        table.add_row(with_, s["level"], s["created_at"] or "")
    console.print(table)


def activity(
    user: Annotated[
        str | None,
        typer.Option("--user", help="Only what this user did.", show_default=False),
    ] = None,
    action: Annotated[
        str | None,
        typer.Option(
            "--action",
            help="Only these actions: a name or its start (workflow. finds every workflow action).",
            show_default=False,
        ),
    ] = None,
    workflow: Annotated[
        str | None,
        typer.Option("--workflow", help="Only what concerns this workflow.", show_default=False),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=1000, help="At most this many entries.")
    ] = 50,
    as_json: AsJson = False,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Show the activity log, newest first: who did what, when, from where. An admin sees
    every entry, a user its own actions and those on workflows it may view.

    Example: runyard activity --workflow Study --action workflow.
    """
    params = {"limit": limit, "actor": user, "action": action, "workflow": workflow}
    with ctx.client(data_dir, server, token) as client:
        rows = client.get(
            "/api/activity", params={k: v for k, v in params.items() if v is not None}
        )
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("At", "Who", "Action", "Workflow", "What", "From")
    for r in rows:
        table.add_row(
            r["at"], r["actor"], r["action"], r.get("workflow") or "", r["message"],
            r.get("address") or "",
        )  # fmt: skip
    console.print(table)
