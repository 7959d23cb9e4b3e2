"""A workflow's tasks as a graph, parsed once per ``tasks_version``: which tasks follow
which, whether a follower decision must look at the rest of the run, and what each reduce
task waits for. Pure: built from the task list, no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from runyard.models import Task


def upstream_closure(task: Task, tasks: Iterable[Task]) -> set[str]:
    """The names of every task that ``task`` depends on, directly or not."""
    by_name = {t.name: t for t in tasks}
    found: set[str] = set()
    todo = list(task.upstream_names())
    while todo:
        name = todo.pop()
        if name not in found and name in by_name:
            found.add(name)
            todo.extend(by_name[name].upstream_names())
    return found


def awaited_tasks(reduce: Task, tasks: Iterable[Task]) -> set[int]:
    """The ids of the tasks whose pending jobs a reduce waits for: every task upstream of it,
    and the tasks whose jobs spawned those (a search still spawning runs), with theirs."""
    every = list(tasks)
    by_id = {t.id: t for t in every}
    by_name = {t.name: t for t in every}
    awaited: set[int] = set()
    todo = [by_name[name].id for name in upstream_closure(reduce, every)]
    while todo:
        task = by_id.get(todo.pop())
        if task is None or task.id in awaited:
            continue
        awaited.add(task.id)
        todo.extend(by_name[name].id for name in upstream_closure(task, every))
        if task.spawned_by is not None:
            todo.append(task.spawned_by)
    return awaited


@dataclass(frozen=True, eq=False)
class TaskGraph:
    """The tasks of one workflow, in order, with what the job path asks of them."""

    tasks: list[Task]  # never modify
    by_id: dict[int, Task]
    # task id -> the tasks (not reduce) that take an output of it: its followers' tasks.
    followers: dict[int, list[Task]]
    # task ids whose followers take outputs of other tasks too: deciding them needs the
    # run's other Done jobs; for the rest the finished job's own outputs suffice.
    joins: frozenset[int]
    # (reduce task, the ids of the tasks it awaits), in task order.
    reduces: list[tuple[Task, frozenset[int]]]

    @classmethod
    def of(cls, tasks: list[Task]) -> TaskGraph:
        by_name = {t.name: t for t in tasks}
        followers: dict[int, list[Task]] = {t.id: [] for t in tasks}
        joins: set[int] = set()
        for task in tasks:
            if task.task_type.interface.kind == "reduce":
                continue
            names = task.upstream_names()
            for name in sorted(names):
                if name in by_name:
                    followers[by_name[name].id].append(task)
                    if len(names) > 1:
                        joins.add(by_name[name].id)
        reduces = [
            (t, frozenset(awaited_tasks(t, tasks)))
            for t in tasks
            if t.task_type.interface.kind == "reduce"
        ]
        return cls(
            tasks=tasks,
            by_id={t.id: t for t in tasks},
            followers=followers,
            joins=frozenset(joins),
            reduces=reduces,
        )

    def reduces_awaiting(self, changed: Iterable[int] | None) -> list[tuple[Task, frozenset[int]]]:
        """The reduce tasks (with what they await) that a change to the jobs of the tasks
        ``changed`` may affect; all of them when None."""
        if changed is None:
            return list(self.reduces)
        ids = set(changed)
        return [(task, awaited) for task, awaited in self.reduces if awaited & ids]
