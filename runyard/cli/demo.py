"""``runyard demo``: the built-in example workflow, end to end, on SQLite."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from runyard.cli.context import console, errors
from runyard.cli.serve import Server, run_up
from runyard.client import Client
from runyard.packages import folder_zip_bytes
from runyard.settings import Settings

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "numbers"
PACKAGES = ["Number", "Square", "Describe", "Workflow"]


def run_demo(settings: Settings, runs: int, exit_when_done: bool) -> None:
    def drive(server: Server) -> None:
        with Client(server.url, server.local_token()) as client:
            _prepare(client)
            first = _next_number(client)
            for number in range(first, first + runs):
                client.post(
                    "/api/workflows/Numbers/runs",
                    {"task": "Number", "outputs": {"number": number}, "name": f"number {number}"},
                )
            from runyard.cli import _wait

            status = _wait(client, "Numbers", quiet=False)
        _show(status)
        console.print(f"\nAPI: {server.url}/docs   (token in {settings.admin_token_file})")
        if exit_when_done:
            server.stop()
        else:
            console.print("Serving until Ctrl-C.")

    console.print(f"Runyard demo in {settings.data_dir}")
    run_up(settings, max_jobs=2, after_start=drive)


def _prepare(client: Client) -> None:
    names = {w["name"] for w in client.get("/api/workflows")}
    for package in PACKAGES:
        if package == "Workflow" and "Numbers" in names:
            continue
        client.post("/api/packages", content=folder_zip_bytes(EXAMPLE / package))
    client.post("/api/workflows/Numbers/start")


def _next_number(client: Client) -> int:
    return len(client.get("/api/workflows/Numbers/status")["runs"]) + 1


def _show(status: dict[str, object]) -> None:
    runs = status["runs"]
    assert isinstance(runs, list)
    table = Table("Run", "Square", "Describe", title="Numbers")
    for run in runs[-10:]:
        jobs = run["jobs"]
        square = jobs.get("Square", {})
        describe = jobs.get("Describe", {})
        table.add_row(
            run["name"],
            f"{square.get('state', '')} {square.get('outputs', {}).get('square', '')}",
            describe.get("outputs", {}).get("text", describe.get("state", "")),
        )
    console.print(table)
    failed = [r["name"] for r in runs if any(j["state"] == "Failed" for j in r["jobs"].values())]
    if failed:
        errors.print(f"[red]{len(failed)} runs failed:[/red] {', '.join(failed)}")
