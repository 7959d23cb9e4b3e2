"""A batch of spawns and state changes is applied in parts, each its spawns then its state
changes; a part ends only where a spawn joins a run whose state the part changed before it."""

from __future__ import annotations

import pytest

from runyard.operations.spawn_batch import JobSpawn, StateChange, segments


def job(serial: int, source: int | None = None) -> JobSpawn:
    return JobSpawn(task_id=1, serial=serial, source_job_serial=source)


def test_the_seeds_pattern_is_one_part() -> None:
    spawns, changes = [], []
    for run in range(3):
        first = 100 + 10 * run
        spawns += [job(first), job(first + 1, source=first)]
        changes.append(StateChange(serial=first, state="Done", after=len(spawns)))
    [(part_spawns, part_changes)] = segments(spawns, changes)
    assert part_spawns == spawns and part_changes == changes


def test_a_spawn_joining_a_run_changed_before_it_starts_a_new_part() -> None:
    spawns = [job(1), job(2, source=1), job(3, source=2)]
    changes = [StateChange(serial=1, state="Done", after=2)]
    parts = segments(spawns, changes)
    assert parts == [(spawns[:2], changes), ([spawns[2]], [])], "job 3 joins job 1's run"


def test_a_change_of_a_job_sent_before_splits_only_its_own_run() -> None:
    spawns = [job(5, source=40), job(6, source=41)]
    changes = [StateChange(serial=40, state="Obsolete", after=1)]
    parts = segments(spawns, changes)
    assert parts == [(spawns, changes)], "job 6 joins another run: no new part"
    parts = segments([*spawns, job(7, source=40)], changes)
    assert parts[-1] == ([job(7, source=40)], [])


@pytest.mark.parametrize("after", [-1, 3])
def test_a_change_outside_the_batch_is_refused(after: int) -> None:
    with pytest.raises(ValueError, match="after 0 to all"):
        segments([job(1), job(2)], [StateChange(serial=1, state="Done", after=after)])
