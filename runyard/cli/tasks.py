"""``runyard task``: add a task to a workflow, edit its inputs one at a time (or its task
type version), delete it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from runyard.cli import context as ctx
from runyard.cli.context import DataDir, ServerUrl, Token, console, name_path
from runyard.cli.workflows import WorkflowName
from runyard.client import Client
from runyard.errors import InvalidInput

task_app = typer.Typer(help="Add, edit and delete the tasks of workflows.", no_args_is_help=True)

TaskName = Annotated[str, typer.Argument(help="The task's name.", show_default=False)]
Sources = dict[str, dict[str, Any]]
EXAMPLE = 'offset=\'{"mode": "fixed", "fixed_value": 20}\''


def _task_path(workflow: str, task: str | None = None) -> str:
    path = f"/api/workflows/{name_path(workflow)}/tasks"
    return path if task is None else f"{path}/{name_path(task)}"


@task_app.command("add")
def task_add(
    workflow: WorkflowName,
    name: Annotated[str, typer.Argument(help="The new task's name.", show_default=False)],
    task_type: Annotated[
        str, typer.Option("--type", help="Its task type: NAME or NAME==VERSION (default: newest).")
    ],
    inputs: Annotated[
        str,
        typer.Option(
            "--inputs",
            help='Input sources (JSON): [{"key": K, "source": {"mode": "output", "task": T, '
            '"key": OUT}}, ...]; inputs left out get their default.',
        ),
    ] = "[]",
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Add a task at the end of a workflow; it gets a job in every run whose upstream jobs
    are Done (and in every later run).

    Example: runyard task add Study Measure --type Lab.Measure --inputs
    '[{"key": "scan", "source": {"mode": "output", "task": ".AIM", "key": "foreign_file"}}]'
    """
    sources = ctx.json_option(inputs, "--inputs")
    type_name, _, version = task_type.partition("==")
    body: dict[str, Any] = {
        "name": name,
        "task_type": {"name": type_name, "version": version or None},
        "inputs": sources,
    }
    with ctx.client(data_dir, server, token) as client:
        answer = client.post(_task_path(workflow), body)
    tt = answer["task_type"]
    console.print(
        f"added task {answer['name']} ({tt['name']} {tt['version']}) to {workflow}: "
        f"{answer['jobs_created']} jobs created",
        highlight=False,
        markup=False,
    )


@task_app.command("edit")
def task_edit(
    workflow: WorkflowName,
    task: TaskName,
    input_: Annotated[
        list[str] | None,
        typer.Option(
            "--input",
            metavar="KEY=JSON",
            help='One input\'s new source, KEY=JSON: offset=\'{"mode": "fixed", "fixed_value": '
            "20}'; repeat for more. The other inputs keep theirs.",
            show_default=False,
        ),
    ] = None,
    inputs: Annotated[
        str | None,
        typer.Option(
            "--inputs",
            help="New sources of the inputs it lists (JSON, as for add); the inputs it does "
            "not list keep theirs.",
        ),
    ] = None,
    version: Annotated[
        str | None, typer.Option("--version", help="Another installed version of its task type.")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Edit even if an input that has a source would be left without one."
        ),
    ] = False,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Change some of a task's input sources, or its task type version, while the workflow
    is stopped; its Done jobs and their followers become stale.

    An edit that would leave an input without a source (mode none) where it had one is
    refused unless --force.

    Example: runyard task edit Study Threshold --input 'lower={"mode": "fixed",
    "fixed_value": 250}'
    """
    edits = _input_edits(input_ or [], inputs)
    if not edits and version is None:
        raise InvalidInput("nothing to edit: name inputs with --input KEY=JSON or a --version")
    with ctx.client(data_dir, server, token) as client:
        type_name, current = _current(client, workflow, task)
        if version is not None:
            current = _kept_by(client, type_name, version, current)
        _check_emptied(task, current, edits, force)
        body: dict[str, Any] = {"task_type_version": version}
        if edits or version is not None:  # (inputs the new version lacks left out)
            merged = current | edits
            body["inputs"] = [{"key": key, "source": source} for key, source in merged.items()]
        answer = client.put(_task_path(workflow, task), body)
    tt = answer["task_type"]
    _warn_new_inputs(task, answer, known=current | edits)
    changed = "".join(f"\n  input {key}: {_described(source)}" for key, source in edits.items())
    console.print(
        f"task {task} edited ({tt['name']} {tt['version']}){changed}",
        highlight=False,
        markup=False,
    )


def _input_edits(assignments: list[str], inputs: str | None) -> Sources:
    """The new sources by input key, from ``--input KEY=JSON`` and ``--inputs JSON``."""
    edits: Sources = {}

    def add(key: str, source: Any, where: str) -> None:
        if key in edits:
            raise InvalidInput(f"{where}: input {key!r} is named twice")
        if not isinstance(source, dict):
            raise InvalidInput(
                f'{where}: the source of {key!r} must be an object like {{"mode": "none"}}'
            )
        edits[key] = source

    for text in assignments:
        key, equals, value = text.partition("=")
        if not equals or not key.strip():
            raise InvalidInput(f"--input {text!r}: write it as KEY=JSON, e.g. " + EXAMPLE)
        add(key.strip(), ctx.json_option(value, f"--input {key.strip()}"), "--input")
    listed = [] if inputs is None else ctx.json_option(inputs, "--inputs")
    if not isinstance(listed, list):
        raise InvalidInput('--inputs must be a JSON list: [{"key": K, "source": {...}}, ...]')
    for number, entry in enumerate(listed):
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            raise InvalidInput(f'--inputs[{number}] must be an object {{"key": K, "source": ...}}')
        add(entry["key"], entry.get("source"), f"--inputs[{number}]")
    return edits


def _current(client: Client, workflow: str, task: str) -> tuple[str, Sources]:
    """The task's type name and its input sources now, by key."""
    tasks = client.get(f"/api/workflows/{name_path(workflow)}")["tasks"]
    found = next((t for t in tasks if t["name"] == task), None)
    if found is None:
        names = ", ".join(t["name"] for t in tasks) or "none"
        raise InvalidInput(f"workflow {workflow!r} has no task {task!r}; its tasks: {names}")
    return found["task_type"]["name"], {i["key"]: i["source"] for i in found["inputs"]}


def _kept_by(client: Client, type_name: str, version: str, current: Sources) -> Sources:
    """The current sources of the inputs that ``version`` of the task type has too."""
    versions = client.get(f"/api/task-types/{name_path(type_name)}")
    found = next((v for v in versions if v["version"] == version), None)
    if found is None:
        return current  # the server names the missing version
    keys = {p["key"] for p in found["interface"]["inputs"]}
    return {key: source for key, source in current.items() if key in keys}


def _check_emptied(task: str, current: Sources, edits: Sources, force: bool) -> None:
    """Refuse (or with ``force`` warn) when an edit leaves an input that has a source
    without one (mode none): its jobs would run without a value."""
    emptied = [
        f"input {key} of task {task} would have no source (it has: {_described(current[key])})"
        for key, source in edits.items()
        if source.get("mode") == "none" and current.get(key, {}).get("mode", "none") != "none"
    ]
    if not emptied:
        return
    problem = "; ".join(emptied)
    if not force:
        raise InvalidInput(
            f"{problem}: its jobs would run without that value. Pass --force to edit anyway"
        )
    ctx.errors.print(f"warning: {problem}", highlight=False, markup=False, soft_wrap=True)


def _warn_new_inputs(task: str, answer: dict[str, Any], known: Sources) -> None:
    """Warn of inputs without a source that a new task type version brought."""
    tt = answer["task_type"]
    for item in answer["inputs"]:
        if item["source"]["mode"] == "none" and item["key"] not in known:
            ctx.errors.print(
                f"warning: input {item['key']} of task {task} has no source (new in "
                f"{tt['name']} {tt['version']}); give it one with --input {item['key']}=JSON",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )


def _described(source: dict[str, Any]) -> str:
    mode = source.get("mode")
    if mode == "output":
        return f"output {source.get('key')} of task {source.get('task')}"
    if mode == "fixed":
        return f"fixed {json.dumps(source.get('fixed_value'))}"
    return str(mode)


@task_app.command("delete")
def task_delete(
    workflow: WorkflowName,
    task: TaskName,
    followers: Annotated[
        bool, typer.Option("--followers", help="Delete the tasks that follow it too.")
    ] = False,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Delete a task and its jobs while the workflow is stopped.

    Example: runyard task delete Study Threshold --followers
    """
    with ctx.client(data_dir, server, token) as client:
        answer = client.delete(_task_path(workflow, task), params={"followers": followers})
    console.print(f"deleted {', '.join(answer['deleted'])}", highlight=False, markup=False)
