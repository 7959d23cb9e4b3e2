"""Run and job operations of a running study: rename, copy, obsolete and restore runs;
rename jobs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection

from runyard.errors import Conflict, InvalidInput, NotFound
from runyard.models import Job, Run, Task, TaskType
from runyard.operations.idempotency import IdempotentRuns
from runyard.operations.jobs import next_sort_order
from runyard.operations.reduce import held_reduces
from runyard.operations.stale import dependency_order, provenance, stale_in
from runyard.packages import check_value
from runyard.states import JobState, WorkflowState, downstream_tasks
from runyard.store import jobs as job_rows
from runyard.store import runs as run_rows
from runyard.store import task_types as task_type_rows
from runyard.store import workflows as workflow_rows
from runyard.taskgraph import upstream_closure

MAX_NAME = 200


def _checked_name(name: str, what: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise InvalidInput(f"a {what} name is 1 to {MAX_NAME} characters, not {len(name)}")
    return name


class RunManager(IdempotentRuns):
    def _run(self, conn: Connection, run_id: int, *, live: bool = True) -> Run:
        """The run (locked), refused if it is the study run or, with ``live``, obsolete."""
        run = run_rows.get_run(conn, run_id)
        if run is None or run.study:
            raise NotFound(f"no run with id {run_id}", run=run_id)
        if live and run.obsolete:
            raise Conflict(f"run {run_id} ({run.name}) is obsolete; restore it first", run=run_id)
        run_rows.lock_run(conn, run_id)
        return run

    def rename(self, run_id: int, name: str, *, actor: str = "system") -> Run:
        name = _checked_name(name, "run")
        with self._write_and_notify() as conn:  # the runs tables that show it update
            run = self._run(conn, run_id)
            run_rows.set_name(conn, run_id, name)
            self._log(
                conn,
                actor,
                "run.rename",
                f"run {run_id} renamed from {run.name!r} to {name!r}",
                workflow_id=run.workflow_id,
            )
            renamed = run_rows.get_run(conn, run_id)
            assert renamed is not None
            return renamed

    def set_obsolete(self, run_id: int, obsolete: bool, *, actor: str = "system") -> Run:
        """Obsolete a run (it leaves the table; its Running jobs are given back, which stops
        their scripts; none of its jobs is claimed; reduces leave it out) or restore it as it
        was (its given-back jobs are Queued for any worker again)."""
        with self._write_and_notify() as conn:
            run = self._run(conn, run_id, live=False)
            if not run_rows.set_obsolete(conn, run_id, obsolete):
                state = "obsolete" if obsolete else "not obsolete"
                raise Conflict(f"run {run_id} ({run.name}) is {state} already", run=run_id)
            if obsolete:
                self._give_back_run(conn, run, actor)
            self._refresh_reduces(conn, run.workflow_id)
            self._log(
                conn,
                actor,
                "run.obsolete" if obsolete else "run.restore",
                f"run {run.name} {'obsoleted' if obsolete else 'restored'}",
                workflow_id=run.workflow_id,
            )
            changed = run_rows.get_run(conn, run_id)
            assert changed is not None
            return changed

    def copy(self, run_id: int, name: str | None = None, *, actor: str = "system") -> Run:
        """A new run (after every other) with the same entity and the same outputs of its
        source tasks' Done jobs; their followers are created as for any new run."""
        with self._write_and_notify() as conn:
            run = self._run(conn, run_id)
            workflow = workflow_rows.get_workflow(conn, id=run.workflow_id)
            assert workflow is not None
            if workflow.state == WorkflowState.OBSOLETE:
                raise Conflict(f"workflow {workflow.name!r} is Obsolete", workflow=workflow.name)
            tasks = self._tasks(conn, workflow.id)
            sources = {t.id: t for t in tasks if t.is_source}
            done = [
                j
                for j in job_rows.live_jobs_in_run(conn, run_id)
                if j.task_id in sources and j.state == JobState.DONE
            ]
            if not done:
                raise Conflict(
                    f"run {run_id} ({run.name}) has no Done source job to copy", run=run_id
                )
            copy_name = _checked_name(name or f"{run.name} (copy)", "run")
            new_id = run_rows.insert_run(
                conn,
                workflow_id=workflow.id,
                name=copy_name,
                sort_order=next_sort_order(conn, workflow.id),
                entity=run.entity,
                now=self.now(),
            )
            for job in done:
                self._create_job(
                    conn, workflow, tasks, sources[job.task_id], new_id, outputs=job.outputs
                )
            self._refresh_reduces(conn, workflow.id, sources)
            self._log(
                conn,
                actor,
                "run.copy",
                f"run {run.name} copied as {copy_name}",
                workflow_id=workflow.id,
            )
            copied = run_rows.get_run(conn, new_id)
            assert copied is not None
            return copied

    def rename_job(self, serial: int, name: str, *, actor: str = "system") -> Job:
        """Set a job's display name (``metadata["display_name"]``)."""
        name = _checked_name(name, "job")
        with self.store.write() as conn:
            job = job_rows.get_job(conn, serial)
            if job is None:
                raise NotFound(f"no job with serial {serial}", serial=serial)
            self._run_of_job(conn, job)
            job_rows.set_metadata(conn, serial, job.metadata | {"display_name": name})
            self._log(
                conn,
                actor,
                "job.rename",
                f"job {serial} renamed {name!r}",
                workflow_id=job.workflow_id,
                job_serial=serial,
            )
            renamed = job_rows.get_job(conn, serial)
            assert renamed is not None
            return renamed

    def submit(
        self,
        serial: int,
        *,
        inputs: dict[str, Any] | None = None,
        outputs: dict[str, Any] | None = None,
        actor: str = "system",
    ) -> Job:
        """A user's answer to a Waiting job: the values of its ``ui`` and ``define_on_first``
        inputs (the job is then Queued; a first ``define_on_first`` answer becomes the
        task's template), or the outputs of an interactive job (it is then Done). Every
        value is checked against the interface; all problems are reported at once, by field."""
        with self._write_and_notify() as conn:
            job = self._lock_runs_of_answer(conn, serial)
            self._run_of_job(conn, job)
            if job.state != JobState.WAITING:
                raise Conflict(
                    f"job {serial} is {job.state}; only a Waiting job takes a user's values",
                    serial=serial,
                )
            tasks = self._tasks(conn, job.workflow_id)
            task = next(t for t in tasks if t.id == job.task_id)
            asked = {i.key: i.source for i in task.inputs if job.inputs.get(i.key) is None
                     and i.source.mode in ("ui", "define_on_first")}  # fmt: skip
            given = inputs or {}
            errors = _field_errors(task.task_type, given, asked, "input")
            interactive = task.task_type.interface.kind == "interactive"
            if outputs is not None or (interactive and not asked):
                known = {p.key: None for p in task.task_type.interface.outputs}
                errors |= _field_errors(task.task_type, outputs or {}, known, "output")
            if errors:
                raise InvalidInput(
                    f"job {serial}: " + "; ".join(f"{k}: {m}" for k, m in errors.items()),
                    serial=serial,
                    errors=errors,
                )
            values: dict[str, Any] = {"inputs": job.inputs | given}
            if interactive and (outputs is not None or not asked):
                values |= {"outputs": outputs or {}, "finished_at": self.now()}
                target = JobState.DONE
            else:
                target = JobState.QUEUED
            done = self._transition(conn, serial, target, **values)
            answers = {k: given[k] for k in asked if asked[k].mode == "define_on_first"}
            self._remember_templates(conn, task, answers)
            self._log(
                conn,
                actor,
                "job.submit",
                f"job {serial} submitted: {target}",
                workflow_id=job.workflow_id,
                job_serial=serial,
            )
            return done

    def _lock_runs_of_answer(self, conn: Connection, serial: int) -> Job:
        """Job ``serial``, read once its run is locked, with the runs that a first answer to
        its task's ``define_on_first`` inputs changes (those of the task's Waiting jobs), all
        in id order: the one lock order (runs, jobs, the study run, the workflow's row last;
        see docs/states.md), so that the submit waits for an obsolete, an expiry or another
        first answer instead of deadlocking on PostgreSQL. A Waiting job created meanwhile
        has its run locked after (it is read again until none is)."""
        locked: set[int] = set()
        while True:
            job = job_rows.get_job(conn, serial)
            if job is None:
                raise NotFound(f"no job with serial {serial}", serial=serial)
            wanted = {job.run_id}
            task = next(t for t in self._tasks(conn, job.workflow_id) if t.id == job.task_id)
            if any(i.source.mode == "define_on_first" and i.source.template is None
                   for i in task.inputs):  # fmt: skip
                wanted |= {j.run_id for j in job_rows.waiting_jobs_of_task(conn, task.id)}
            if wanted <= locked:
                return job
            run_rows.lock_runs(conn, sorted(wanted - locked))
            locked |= wanted

    def _remember_templates(self, conn: Connection, task: Task, answers: dict[str, Any]) -> None:
        """The first answer to a ``define_on_first`` input becomes the task's template, and
        the task's other Waiting jobs take it (their runs are locked: ``_lock_runs_of_answer``).
        The task's row, and so the workflow's, is written last."""
        first = {k: v for k, v in answers.items() if task.input_source(k).template is None}
        if not first:
            return
        inputs = tuple(
            replace(i, source=replace(i.source, template=first[i.key])) if i.key in first else i
            for i in task.inputs
        )
        # The other jobs that waited for the same first answer take it too.
        for other in job_rows.waiting_jobs_of_task(conn, task.id):
            filled = other.inputs | {k: v for k, v in first.items() if other.inputs.get(k) is None}
            missing = [i.key for i in inputs if filled.get(i.key) is None
                       and i.source.mode in ("ui", "define_on_first")]  # fmt: skip
            if not missing and task.task_type.interface.kind != "interactive":
                self._transition(conn, other.serial, JobState.QUEUED, inputs=filled)
            else:
                job_rows.set_inputs(conn, other.serial, filled)
        workflow_rows.set_task(conn, replace(task, inputs=inputs))

    def rerun_stale(
        self, workflow_name: str, task_name: str | None = None, *, actor: str = "system"
    ) -> dict[str, Any]:
        """Restart the stale jobs of a workflow (of one task), each run's first ones in
        dependency order: their stale followers are obsoleted and made again as followers.
        ``{"restarted": [new serials], "jobs": how many stale jobs are re-run}``."""
        with self.store.read() as conn:
            workflow = self._workflow(conn, workflow_name)
            tasks = self._tasks(conn, workflow.id)
            if task_name is not None:
                self._task(tasks, task_name, workflow)
            live = job_rows.jobs_of_workflow(conn, workflow.id)
            stale = stale_in(conn, tasks, live)
        names = {t.id: t.name for t in tasks}
        order = {t.name: n for n, t in enumerate(dependency_order(tasks))}
        chosen: dict[int, set[str]] = {}  # run -> tasks restarted there
        roots: list[Job] = []
        reduces: list[Job] = []
        reduce_ids = {t.id for t in tasks if t.task_type.interface.kind == "reduce"}
        rerun = 0
        for job in sorted(live, key=lambda j: (j.run_id, order.get(names[j.task_id], 0))):
            if job.serial not in stale:
                continue
            if job.task_id in reduce_ids:
                reduces.append(job)
                continue
            name = names[job.task_id]
            before = chosen.setdefault(job.run_id, set())
            if any(name in downstream_tasks(root, tasks) for root in before):
                rerun += 1  # obsoleted by its root's restart, made again as a follower
            elif task_name is None and stale[job.serial].startswith("upstream "):
                continue  # its stale upstream is outside the chosen ones: left as it is
            elif task_name in (None, name):
                before.add(name)
                roots.append(job)
                rerun += 1
        restarted = [self.restart_new_job(j.serial, actor=actor).serial for j in roots]
        again = {names[j.task_id] for j in roots}
        for job in reduces:
            rerun_now = self._rerun_reduce(job, tasks, again, stale[job.serial], task_name, actor)
            if rerun_now is not None:
                rerun += 1
                restarted += [rerun_now] if rerun_now else []
        return {"restarted": restarted, "jobs": rerun}

    def _rerun_reduce(
        self,
        job: Job,
        tasks: list[Task],
        again: set[str],
        why: str,
        task_name: str | None,
        actor: str,
    ) -> int | None:
        """Re-run a stale reduce job: it is replaced by itself once the restarted jobs it
        reads (``again``: their tasks) are Done again (0); otherwise, if its own task was
        edited, it is restarted now (the new serial). None: not re-run."""
        reduce = next(t for t in tasks if t.id == job.task_id)
        if again & upstream_closure(reduce, tasks):
            return 0
        if task_name not in (None, reduce.name) or why.startswith("upstream "):
            return None
        try:
            return self.restart_new_job(job.serial, actor=actor).serial
        except Conflict:
            return None  # runs still have work pending: it is replaced once they are done

    def info(self, serial: int) -> tuple[Job, dict[str, Any]]:
        """A job and what the job information shows besides it: its run and task names,
        whether it is stale (and why), its provenance."""
        with self.store.read() as conn:
            job = job_rows.get_job(conn, serial)
            if job is None:
                raise NotFound(f"no job with serial {serial}", serial=serial)
            run = run_rows.get_run(conn, job.run_id)
            assert run is not None
            tasks = self._tasks(conn, job.workflow_id)
            # A reduce job's staleness depends on the jobs of every run it read.
            around = (job_rows.jobs_of_workflow(conn, job.workflow_id) if run.study
                      else job_rows.live_jobs_in_run(conn, job.run_id))  # fmt: skip
            stale = stale_in(conn, tasks, around)
            task_type = task_type_rows.get(conn, job.task_type_id)
            assert task_type is not None
            workflow = workflow_rows.get_workflow(conn, id=job.workflow_id)
            assert workflow is not None
            live = run.study and job.state != JobState.OBSOLETE
            held = held_reduces(conn, self._graph(conn, job.workflow_id)) if live else {}
        task = next(t.name for t in tasks if t.id == job.task_id)
        return job, {
            "workflow": workflow.name,
            "run": {"id": run.id, "name": run.name, "obsolete": run.obsolete, "study": run.study},
            "task": task,
            "stale": stale.get(serial),
            "provenance": provenance(job, task_type),
        } | ({"held_back": held[task]} if task in held else {})

    def _run_of_job(self, conn: Connection, job: Job) -> Run | None:
        """The run of a job, refused if obsolete; None for the study run (reduce jobs)."""
        run = run_rows.get_run(conn, job.run_id)
        assert run is not None
        if run.study:
            return None
        return self._run(conn, run.id)


def _field_errors(
    task_type: TaskType, values: dict[str, Any], expected: Mapping[str, object], what: str
) -> dict[str, str]:
    """What is wrong with each of ``values`` (the ``expected`` keys of the interface's
    inputs or outputs, all of them required), by key."""
    params = task_type.interface.inputs if what == "input" else task_type.interface.outputs
    by_key = {p.key: p for p in params}
    errors = {
        key: f"not an {what} to give here; expected: {', '.join(expected) or 'none'}"
        for key in values
        if key not in expected
    }
    for key in expected:
        if key not in values:
            errors[key] = "a value is required"
        elif problem := check_value(by_key[key], values[key]):
            errors[key] = problem
    return errors
