"""The state machine without a database."""

from __future__ import annotations

import pytest

from runyard.errors import IllegalTransition
from runyard.models import InputSource, Interface, Parameter, Task, TaskInput, TaskType
from runyard.states import (
    TRANSITIONS,
    JobState,
    check_transition,
    decide_followers,
    downstream_tasks,
    find_cycle,
    resolve_inputs,
    sources_of,
)


def task(
    name: str,
    *upstream: str,
    kind: str = "processing",
    extra: tuple[TaskInput, ...] = (),
    id: int = 0,
) -> Task:
    inputs = (
        tuple(
            TaskInput(key=f"in_{u}", source=InputSource(mode="output", task=u, key="value"))
            for u in upstream
        )
        + extra
    )
    interface = Interface(kind=kind, outputs=(Parameter(key="value", type="Int"),))
    return Task(
        id=id or hash(name) % 10_000,
        name=name,
        inputs=inputs,
        task_type=TaskType(name="T", version="1.0.0.0", interface=interface),
    )


def test_done_is_reached_from_running_obsolete_spawned_and_waiting_interactive_jobs() -> None:
    assert sources_of(JobState.DONE) == {JobState.RUNNING, JobState.OBSOLETE, JobState.WAITING}


def test_every_state_can_become_obsolete_except_obsolete() -> None:
    assert sources_of(JobState.OBSOLETE) == set(JobState) - {JobState.OBSOLETE}


def test_illegal_transition_names_the_states_and_the_legal_ones() -> None:
    with pytest.raises(
        IllegalTransition, match="from Done to Running; from Done it can go to Obsolete"
    ):
        check_transition("Done", "Running")


def test_transitions_table_only_uses_known_states() -> None:
    for src, dst in TRANSITIONS:
        assert isinstance(src, JobState) and isinstance(dst, JobState)


def test_follower_is_planned_when_its_only_upstream_is_done() -> None:
    a, b = task("A", id=1), task("B", "A", id=2)
    plans = decide_followers(a, [a, b], {"A": {"value": 3}})
    assert [(p.task_id, p.inputs, p.state) for p in plans] == [(2, {"in_A": 3}, JobState.QUEUED)]


def test_follower_with_two_upstreams_waits_for_both() -> None:
    a, b, c = task("A", id=1), task("B", id=2), task("C", "A", "B", id=3)
    assert decide_followers(a, [a, b, c], {"A": {"value": 1}}) == []
    plans = decide_followers(b, [a, b, c], {"A": {"value": 1}, "B": {"value": 2}})
    assert [p.inputs for p in plans] == [{"in_A": 1, "in_B": 2}]


def test_follower_that_already_has_a_live_job_gets_no_second() -> None:
    a, b = task("A", id=1), task("B", "A", id=2)
    assert decide_followers(a, [a, b], {"A": {"value": 3}}, live_tasks=["B"]) == []


def test_follower_with_a_ui_input_waits_for_a_user() -> None:
    ui = (TaskInput(key="note", source=InputSource(mode="ui")),)
    a, b = task("A", id=1), task("B", "A", extra=ui, id=2)
    [plan] = decide_followers(a, [a, b], {"A": {"value": 3}})
    assert plan.state == JobState.WAITING and plan.inputs["note"] is None


def test_define_on_first_uses_the_template_once_it_is_known() -> None:
    source = InputSource(mode="define_on_first", template=7)
    b = task("B", extra=(TaskInput(key="k", source=source),))
    assert resolve_inputs(b, {}) == ({"k": 7}, False)
    unknown = task("B", extra=(TaskInput(key="k", source=InputSource(mode="define_on_first")),))
    assert resolve_inputs(unknown, {}) == ({"k": None}, True)


def test_fixed_and_none_sources_resolve_to_their_values() -> None:
    extra = (
        TaskInput(key="f", source=InputSource(mode="fixed", fixed_value=2.5)),
        TaskInput(key="n", source=InputSource(mode="none")),
    )
    assert resolve_inputs(task("B", extra=extra), {}) == ({"f": 2.5, "n": None}, False)


def test_reduce_tasks_get_no_per_run_follower() -> None:
    a, r = task("A", id=1), task("R", "A", kind="reduce", id=2)
    assert decide_followers(a, [a, r], {"A": {"value": 1}}) == []


def test_downstream_tasks_are_found_transitively() -> None:
    tasks = [task("A"), task("B", "A"), task("C", "B"), task("D"), task("E", "C", "D")]
    assert downstream_tasks("B", tasks) == {"C", "E"}
    assert downstream_tasks("E", tasks) == set()


def test_find_cycle_reports_the_cycle_and_none_for_a_dag() -> None:
    assert find_cycle({"A": [], "B": ["A"], "C": ["B", "A"]}) is None
    cycle = find_cycle({"A": ["C"], "B": ["A"], "C": ["B"]})
    assert cycle is not None and cycle[0] == cycle[-1] and set(cycle) == {"A", "B", "C"}


def test_the_api_sets_done_only_a_job_created_obsolete() -> None:
    from runyard.states import check_api_transition

    check_api_transition(7, JobState.OBSOLETE, JobState.DONE)
    check_api_transition(7, JobState.RUNNING, JobState.ABORTED)
    with pytest.raises(IllegalTransition, match="job 7 is Running: only a job created Obsolete"):
        check_api_transition(7, JobState.RUNNING, JobState.DONE)
    with pytest.raises(IllegalTransition, match="cannot go from Done to Queued"):
        check_api_transition(7, JobState.DONE, JobState.QUEUED)
