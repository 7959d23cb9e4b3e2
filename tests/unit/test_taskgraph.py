"""The task graph the job path decides followers and reduces from, without a database."""

from __future__ import annotations

from dataclasses import replace

from runyard.states import JobState, decide_followers
from runyard.taskgraph import TaskGraph
from tests.unit.test_states import task


def diamond() -> TaskGraph:
    """Source -> A, Source -> B, (A, B) -> Join, A -> Table (reduce), Source -> Side."""
    return TaskGraph.of(
        [
            task("Source", id=1),
            task("A", "Source", id=2),
            task("B", "Source", id=3),
            task("Join", "A", "B", id=4),
            task("Table", "A", kind="reduce", id=5),
            task("Side", "Source", id=6),
        ]
    )


def test_followers_are_the_tasks_taking_an_output_in_task_order_without_reduces() -> None:
    graph = diamond()
    assert [t.name for t in graph.followers[1]] == ["A", "B", "Side"]
    assert [t.name for t in graph.followers[2]] == ["Join"], "the reduce is not a follower"
    assert graph.followers[4] == [] and graph.followers[5] == []


def test_only_tasks_feeding_a_join_need_the_rest_of_the_run_to_decide() -> None:
    graph = diamond()
    assert graph.joins == {2, 3}, "Join takes outputs of A and B; Side, A and B of one task"


def test_a_single_upstream_follower_is_decided_from_the_finished_job_alone() -> None:
    """What the job path does for a task not in ``joins``: the same plans as deciding over
    the whole task list with the run's other Done jobs."""
    graph = diamond()
    source = graph.by_id[1]
    alone = decide_followers(source, graph.followers[1], {"Source": {"value": 3}})
    everything = decide_followers(source, graph.tasks, {"Source": {"value": 3}})
    assert alone == everything
    assert [(p.task_id, p.state) for p in alone] == [
        (2, JobState.QUEUED),
        (3, JobState.QUEUED),
        (6, JobState.QUEUED),
    ]


def test_reduces_awaiting_a_change_are_those_with_that_task_upstream() -> None:
    graph = diamond()
    assert [t.name for t, _ in graph.reduces_awaiting([2])] == ["Table"]
    assert [t.name for t, _ in graph.reduces_awaiting([1])] == ["Table"], "Source feeds A"
    assert graph.reduces_awaiting([3, 6]) == [], "B and Side do not lead to the reduce"
    assert [t.name for t, _ in graph.reduces_awaiting(None)] == ["Table"]


def test_a_reduce_awaits_the_spawning_task_of_its_upstream_tasks() -> None:
    search = task("Search", id=1)
    found = replace(task("Found", id=2), spawned_by=1)
    table = task("Table", "Found", kind="reduce", id=3)
    graph = TaskGraph.of([search, found, table])
    [(reduce, awaited)] = graph.reduces
    assert reduce.name == "Table" and awaited == {1, 2}
