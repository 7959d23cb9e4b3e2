"""The state machine: states, the allowed transitions as one table, pure decisions.

Nothing here does I/O; the operations layer asks these functions what to do and the store
applies the answer with guarded updates (``... WHERE state IN (allowed sources)``).
See docs/states.md for the diagram.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from runyard.errors import IllegalTransition
from runyard.models import Job, Task


class JobState(StrEnum):
    WAITING = "Waiting"
    QUEUED = "Queued"
    RUNNING = "Running"
    DONE = "Done"
    FAILED = "Failed"
    ABORTED = "Aborted"
    OBSOLETE = "Obsolete"


class WorkflowState(StrEnum):
    DRAFT = "Draft"
    STARTED = "Started"
    OBSOLETE = "Obsolete"


class Priority(StrEnum):
    PAUSED = "paused"
    NORMAL = "normal"
    HIGH = "high"


# Claim order: high first, then normal; paused runs are never claimed.
CLAIMABLE_PRIORITY_RANK = {Priority.HIGH: 0, Priority.NORMAL: 1}

W, Q, R, D, F, A, OB = JobState

# (from, to) -> the name of the transition, used in the diagram and in error messages.
TRANSITIONS: dict[tuple[JobState, JobState], str] = {
    (W, Q): "inputs submitted",
    (W, D): "outputs submitted (interactive)",
    (W, A): "abort",
    (W, OB): "obsolete",
    (Q, R): "claim",
    (Q, A): "abort",
    (Q, OB): "obsolete",
    (R, D): "complete",
    (R, F): "fail",
    (R, Q): "given back or lease expired",
    (R, A): "abort",
    (R, OB): "obsolete",
    (D, OB): "obsolete",
    (F, OB): "obsolete",
    (A, OB): "obsolete",
    (OB, D): "finish a spawned job",
}


def is_claimed(job: Job) -> bool:
    """Running, but only claimed: its worker has not said that the script started (a job
    claimed ahead waits for a free slot). Shown as such; the state stays Running."""
    return job.state == JobState.RUNNING and job.script_started_at is None


def sources_of(target: JobState) -> frozenset[JobState]:
    """All states from which ``target`` may be reached: the guard of the update."""
    return frozenset(src for (src, dst) in TRANSITIONS if dst == target)


def check_transition(current: JobState | str, target: JobState | str) -> None:
    current, target = JobState(current), JobState(target)
    if (current, target) not in TRANSITIONS:
        allowed = sorted(dst for (src, dst) in TRANSITIONS if src == current)
        raise IllegalTransition(
            f"a job cannot go from {current} to {target}"
            + (f"; from {current} it can go to {', '.join(allowed)}" if allowed else ""),
            current=str(current),
            target=str(target),
        )


def check_api_transition(serial: int, current: JobState | str, target: JobState) -> None:
    """A state change asked for through the API: one the table allows, and Done only for a
    job created Obsolete (by a spawn); a running job is completed by its worker."""
    check_transition(current, target)
    if target == JobState.DONE and current != JobState.OBSOLETE:
        raise IllegalTransition(
            f"job {serial} is {current}: only a job created Obsolete (by a spawn) is set Done "
            "through the API; a running job is completed by its worker",
            serial=serial,
        )


WORKFLOW_TRANSITIONS: frozenset[tuple[WorkflowState, WorkflowState]] = frozenset(
    {
        (WorkflowState.DRAFT, WorkflowState.STARTED),
        (WorkflowState.STARTED, WorkflowState.DRAFT),
        (WorkflowState.DRAFT, WorkflowState.OBSOLETE),
        (WorkflowState.STARTED, WorkflowState.OBSOLETE),
        (WorkflowState.OBSOLETE, WorkflowState.STARTED),
    }
)


@dataclass(frozen=True, kw_only=True)
class FollowerPlan:
    """A job to create for ``task`` in the run of the job that became Done."""

    task_id: int
    inputs: dict[str, Any]
    state: JobState


def resolve_inputs(
    task: Task, done_outputs: Mapping[str, Mapping[str, Any]]
) -> tuple[dict[str, Any], bool]:
    """The inputs of a new job of ``task``, and whether a user must still supply some.

    ``done_outputs`` maps upstream task names to the outputs of their Done job in the run.
    """
    inputs: dict[str, Any] = {}
    needs_user = False
    for task_input in task.inputs:
        source = task_input.source
        if source.mode == "output":
            inputs[task_input.key] = done_outputs[source.task or ""].get(source.key or "")
        elif source.mode == "fixed":
            inputs[task_input.key] = source.fixed_value
        elif source.mode == "define_on_first" and source.template is not None:
            inputs[task_input.key] = source.template
        elif source.mode in ("ui", "define_on_first"):
            inputs[task_input.key] = None
            needs_user = True
        else:
            inputs[task_input.key] = None
    return inputs, needs_user


def new_job(
    task: Task, done_outputs: Mapping[str, Mapping[str, Any]]
) -> tuple[dict[str, Any], JobState]:
    """The inputs and first state of a new job of ``task`` in a run whose upstream jobs are
    Done: Waiting when a user must act (an interactive task, or inputs to enter), else Queued."""
    inputs, needs_user = resolve_inputs(task, done_outputs)
    interactive = task.task_type.interface.kind == "interactive"
    return inputs, JobState.WAITING if needs_user or interactive else JobState.QUEUED


def decide_followers(
    done_task: Task,
    tasks: Iterable[Task],
    done_outputs: Mapping[str, Mapping[str, Any]],
    live_tasks: Iterable[str] = (),
) -> list[FollowerPlan]:
    """Which follower jobs to create when a job of ``done_task`` becomes Done in a run.

    ``done_outputs``: outputs of the Done jobs in that run, by task name (including
    ``done_task``). ``live_tasks``: names of tasks that already have a non-Obsolete job in the
    run; they get no second one (the database enforces it too).
    """
    live = set(live_tasks)
    plans = []
    for task in tasks:
        upstream = task.upstream_names()
        if done_task.name not in upstream or task.name in live:
            continue
        if task.task_type.interface.kind == "reduce":
            continue  # one job per workflow, not per run: see the reduce issue
        if not upstream.issubset(done_outputs):
            continue
        inputs, state = new_job(task, done_outputs)
        plans.append(FollowerPlan(task_id=task.id, inputs=inputs, state=state))
    return plans


def downstream_tasks(start: str, tasks: Iterable[Task]) -> set[str]:
    """Names of every task that depends, directly or not, on task ``start``."""
    followers: dict[str, set[str]] = {}
    for task in tasks:
        for name in task.upstream_names():
            followers.setdefault(name, set()).add(task.name)
    found: set[str] = set()
    todo = [start]
    while todo:
        for name in followers.get(todo.pop(), ()):
            if name not in found:
                found.add(name)
                todo.append(name)
    return found


def find_cycle(edges: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A cycle in a graph of ``node -> upstream nodes``, or None."""
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in visiting:
            return [*visiting[visiting.index(node) :], node]
        if node in done:
            return None
        visiting.append(node)
        for upstream in edges.get(node, ()):
            cycle = visit(upstream)
            if cycle:
                return cycle
        visiting.pop()
        done.add(node)
        return None

    for node in edges:
        cycle = visit(node)
        if cycle:
            return cycle
    return None
