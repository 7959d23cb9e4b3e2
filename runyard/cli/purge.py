"""``runyard purge``: remove obsolete runs and jobs and the files no job needs (admins)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from runyard.cli import context as ctx
from runyard.cli.context import DataDir, ServerUrl, Token, console


def purge(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say what would go; change nothing.")
    ] = False,
    workflow: Annotated[
        str | None,
        typer.Option(
            "--workflow", help="Purge in this workflow only.", metavar="NAME", show_default=False
        ),
    ] = None,
    older_than: Annotated[
        int | None,
        typer.Option(
            "--older-than",
            min=0,
            help="Only what nothing happened to for DAYS days (files: uploaded that long ago).",
            metavar="DAYS",
            show_default=False,
        ),
    ] = None,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Remove obsolete runs and jobs, and the file store's files no job needs (admins).

    Goes: the runs and jobs of Obsolete workflows, obsolete runs, Obsolete jobs, and the
    files that only they used, with files uploaded over a day ago that no job refers to. A
    file that a remaining job or task refers to is always kept. Written to the activity log.

    Example: runyard purge --dry-run --older-than 30
    """
    body = {"dry_run": dry_run, "workflow": workflow, "older_than_days": older_than}
    with ctx.client(data_dir, server, token) as client:
        report = client.post("/api/purge", body)
    _show(report)


def _show(report: dict[str, Any]) -> None:
    """The purge's counts, by workflow, and a total."""
    verb = "Would remove" if report["dry_run"] else "Removed"
    table = Table("Workflow", "State", "Runs", "Jobs", "Files", "Size", title=f"{verb}:")
    for w in report["workflows"]:
        table.add_row(
            w["name"], w["state"], str(w["runs"]), str(w["jobs"]), str(w["files"]),
            _size(w["bytes"]),
        )  # fmt: skip
    table.add_row(
        "Total", "", str(report["runs"]), str(report["jobs"]), str(report["files"]),
        _size(report["bytes"]), style="bold",
    )  # fmt: skip
    console.print(table)
    if report["stray_files"]:
        console.print(
            f"{report['stray_files']} of the files have no record any more (left by an "
            "interrupted purge or upload)",
            highlight=False,
        )
    if report["dry_run"]:
        console.print("Nothing was changed (dry run).", highlight=False)


def _size(count: int) -> str:
    """A number of bytes for people: 0 B, 512 B, 1.5 KiB, 2.0 GiB."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{count} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError  # pragma: no cover
