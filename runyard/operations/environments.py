"""Environments: the dependency packages a task type needs on a worker, and which workers can
run it.

A task type names dependency packages (``[{"name", "version"}]``), which may name others. For
a worker, its **plan** is what must be installed, in order (each package after those it
needs), for the names the worker does not provide itself (``runyard worker --provides``):
of each name, the version asked for if it is imported, else the newest imported version above
it. A virtual marker (no ``install`` command) cannot be installed: a worker must provide it
(every worker provides ``Core.Host.Python3``, the Python it runs scripts with).
Names that are neither provided nor installable are the plan's ``missing``.

The packages to install make one **environment**, named by its ``key`` (a digest of the
packages' names and versions; an imported version never changes), which the worker makes
once and every task type with the same set reuses. A worker may claim a job when nothing is
missing and the environment is empty, Ready on it, or installable by it (``runyard worker
--install-dependencies``, allowed by an admin) and has not failed on it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, select

from runyard.errors import InvalidInput, NotFound
from runyard.models import Capabilities, Dependency, Worker
from runyard.operations.base import Operations
from runyard.packages import version_key
from runyard.store import dependency_packages as dependency_rows
from runyard.store import environments as environment_rows
from runyard.store import workers as worker_rows
from runyard.store.dependency_packages import ImportedDependencyPackage
from runyard.store.schema import dependency_packages, task_types

STATES = ("Installing", "Ready", "Failed")  # what a worker says of an environment
REQUESTED = "Requested"  # an admin asked the worker to make it; its next heartbeat hears
# What every worker has: the Python it runs task scripts with (XamFlow's virtual marker).
EVERY_WORKER_PROVIDES = frozenset({"Core.Host.Python3"})
ANY_VERSION = "0.0.0.0"  # asked for by name only: the newest imported version
Catalog = Mapping[str, Sequence[ImportedDependencyPackage]]  # name -> versions, newest first


@dataclass(frozen=True)
class Plan:
    packages: tuple[ImportedDependencyPackage, ...] = ()  # to install, in order
    missing: tuple[str, ...] = ()  # names no install can give (the worker must provide them)

    @property
    def key(self) -> str:
        """The environment's name: "" when there is nothing to install."""
        if not self.packages:
            return ""
        names = "\n".join(f"{p.name} {p.version}" for p in self.packages)
        return hashlib.sha256(names.encode()).hexdigest()[:16]

    def json(self) -> dict[str, Any] | None:
        """What a worker gets to make the environment (None: nothing to install)."""
        if not self.packages:
            return None
        return {
            "key": self.key,
            "packages": [
                {"name": p.name, "version": p.version, "install": p.install} for p in self.packages
            ],
        }

    def runnable_by(self, can: Capabilities) -> bool:
        if self.missing:
            return False
        key = self.key
        return not key or key in can.ready or (can.installs and key not in can.failed)


def plan(dependencies: Iterable[Dependency], provides: Iterable[str], catalog: Catalog) -> Plan:
    """What a worker that provides ``provides`` must install for ``dependencies``."""
    have = set(provides) | EVERY_WORKER_PROVIDES
    ordered: dict[str, ImportedDependencyPackage] = {}
    missing: list[str] = []
    visiting: set[str] = set()

    def visit(dependency: Dependency) -> None:
        name = dependency.name
        if name in have or name in ordered or name in visiting:
            return
        chosen = _choose(dependency, catalog.get(name, ()))
        if chosen is None or chosen.install is None:
            if name not in missing:
                missing.append(name)
            return
        visiting.add(name)
        for needed in chosen.dependencies:
            visit(needed)
        visiting.discard(name)
        ordered[name] = chosen

    for dependency in dependencies:
        visit(dependency)
    return Plan(tuple(ordered.values()), tuple(missing))


def _choose(
    dependency: Dependency, versions: Sequence[ImportedDependencyPackage]
) -> ImportedDependencyPackage | None:
    """The version asked for, else the newest above it (``versions`` newest first)."""
    try:
        wanted = version_key(dependency.version)
    except InvalidInput:
        wanted = ""
    for package in versions:
        if package.version == dependency.version:
            return package
    newest = versions[0] if versions else None
    if newest is not None and version_key(newest.version) >= wanted:
        return newest
    return None


class EnvironmentManager(Operations):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # What claims ask again and again, made once per catalog version (the imported
        # dependency packages and installed task types change rarely); replaced whole.
        self._known = _Known()

    def runnable_ids(self, conn: Connection, can: Capabilities) -> tuple[list[int], bool]:
        """The task types a worker with ``can`` may run, and whether that is all of them."""
        known = self._refresh(conn)
        ids = [tid for tid in known.needs if known.plan(tid, can.provides).runnable_by(can)]
        return ids, len(ids) == len(known.needs)

    def plans(self, task_type_ids: Iterable[int], provides: Iterable[str]) -> dict[int, Plan]:
        """Each task type's plan for a worker that provides ``provides``."""
        have = frozenset(provides)
        with self.store.read() as conn:
            known = self._refresh(conn)
        return {tid: known.plan(tid, have) for tid in set(task_type_ids)}

    def plan_for_packages(self, wanted: Sequence[Dependency], provides: Iterable[str]) -> Plan:
        """The environment a worker would make for ``wanted`` (``runyard worker install``);
        every name must be imported."""
        with self.store.read() as conn:
            known = self._refresh(conn)
        have = set(provides) | EVERY_WORKER_PROVIDES
        for dependency in wanted:
            if dependency.name not in known.catalog and dependency.name not in have:
                raise NotFound(
                    f"no dependency package named {dependency.name!r} is imported "
                    "(runyard import PACKAGE)",
                    name=dependency.name,
                )
        return plan(wanted, provides, known.catalog)

    def record(
        self, worker: str, key: str, packages: list[dict[str, Any]], state: str, log: str
    ) -> None:
        """A worker's news about one of its environments (Installing, Ready, Failed)."""
        if state not in STATES:
            raise InvalidInput(
                f"an environment's state is one of {', '.join(STATES)}, not {state!r}",
                field="state",
            )
        with self.store.write() as conn:
            found = worker_rows.get_worker(conn, worker)
            if found is None:
                raise NotFound(f"no worker named {worker!r} has registered", worker=worker)
            environment_rows.record(
                conn, found.id, key, packages=packages, state=state, log=log, now=self.now()
            )
            if state != "Installing":
                names = ", ".join(f"{p.get('name')} {p.get('version')}" for p in packages)
                self._log(
                    conn,
                    f"worker {worker}",
                    "worker.environment",
                    f"worker {worker}: environment {key} ({names}) {state}",
                )
        self.changed.notify()

    def request(self, worker: str, wanted: Sequence[Dependency], *, actor: str) -> dict[str, Any]:
        """An admin asks ``worker`` to make the environment of ``wanted`` (Workers > Install
        dependency package): Requested until the worker's next heartbeat takes it; nothing
        to do when it is Ready or Installing there already."""
        with self.store.read() as conn:
            found = worker_rows.get_worker(conn, worker)
        if found is None:
            raise NotFound(f"no worker named {worker!r} has registered", worker=worker)
        made = self.plan_for_packages(wanted, found.provides)
        names = ", ".join(
            d.name if d.version == ANY_VERSION else f"{d.name} {d.version}" for d in wanted
        )
        if made.missing:
            raise InvalidInput(
                f"worker {worker} cannot install {', '.join(made.missing)}: a virtual marker "
                "is something a worker has already (runyard worker --provides NAME)",
                missing=list(made.missing),
            )
        spec = made.json()
        if spec is None:
            raise InvalidInput(
                f"worker {worker} provides {names} already: there is nothing to install",
                worker=worker,
            )
        with self.store.write() as conn:
            state = dict(environment_rows.states(conn, found.id)).get(spec["key"])
            if state in ("Ready", "Installing"):
                return {"worker": worker, "key": spec["key"], "state": state}
            environment_rows.record(
                conn, found.id, spec["key"], packages=spec["packages"], state=REQUESTED,
                log="", now=self.now(),
            )  # fmt: skip
            self._log(
                conn,
                actor,
                "worker.environment",
                f"worker {worker}: environment {spec['key']} ({names}) requested",
            )
        self.changed.notify()
        return {"worker": worker, "key": spec["key"], "state": REQUESTED}

    def requested(self, worker: str) -> list[dict[str, Any]]:
        """The environments an admin asked ``worker`` to make, as it makes them
        (``{"key", "packages"}``)."""
        with self.store.read() as conn:
            return environment_rows.in_state(conn, worker, REQUESTED)

    def listed(self, worker: str | None = None) -> list[dict[str, Any]]:
        with self.store.read() as conn:
            return environment_rows.listed(conn, worker)

    def set_installs_allowed(self, worker: str, allowed: bool, *, actor: str) -> None:
        with self.store.write() as conn:
            if not worker_rows.set_installs_allowed(conn, worker, allowed):
                raise NotFound(f"no worker named {worker!r} has registered", worker=worker)
            what = "may" if allowed else "may not"
            self._log(
                conn,
                actor,
                "worker.installs",
                f"worker {worker} {what} install dependency packages",
            )
        self.changed.notify()

    def missing(
        self, conn: Connection, task_types_by_task: Mapping[int, int], workers: Sequence[Worker]
    ) -> dict[int, list[str]]:
        """{task id: the dependency packages missing} for the tasks (``{task id: task type
        id}``) whose task type no worker of ``workers`` can run (their Queued jobs wait for
        one): the names none provides or may install; when each is there on some worker but
        none has them all, all of them."""
        known = self._refresh(conn)
        found: dict[int, list[str]] = {}
        for task_id, task_type_id in task_types_by_task.items():
            needs = known.needs.get(task_type_id, ())
            if not needs:
                if not workers:  # no worker at all: nothing runs, and no package is to blame
                    found[task_id] = []
                continue
            lacking = {d.name for d in needs}
            for worker in workers:
                can = worker.capabilities()
                plan_ = known.plan(task_type_id, can.provides)
                if plan_.runnable_by(can):
                    break
                if not plan_.missing and can.installs and plan_.key in can.failed:
                    continue  # it may install them, but that failed: all are missing
                lacking &= set(plan_.missing) | {p.name for p in plan_.packages}
            else:
                found[task_id] = sorted(lacking) or sorted(d.name for d in needs)
        return found

    def missing_for_task_type(self, task_type_id: int) -> list[str]:
        """The dependency packages that keep every registered worker from running jobs of
        the task type ([] when one can)."""
        with self.store.read() as conn:
            workers = worker_rows.list_workers(conn)
            return self.missing(conn, {0: task_type_id}, workers).get(0, [])

    @staticmethod
    def catalog_version(conn: Connection) -> tuple[int, ...]:
        """Changes whenever a task type or a dependency package is installed or removed."""
        return tuple(int(n or 0) for n in conn.execute(_CATALOG_VERSION).one())

    def _refresh(self, conn: Connection) -> _Known:
        version = self.catalog_version(conn)
        known = self._known
        if version != known.version:
            catalog: dict[str, list[ImportedDependencyPackage]] = {}
            for package in dependency_rows.list_all(conn):
                catalog.setdefault(package.name, []).append(package)
            rows = conn.execute(select(task_types.c.id, task_types.c.dependencies))
            needs = {r.id: tuple(Dependency(**d) for d in r.dependencies) for r in rows}
            known = self._known = _Known(version, catalog, needs)
        return known


@dataclass
class _Known:
    """The catalog of one version: the imported dependency packages, each task type's
    dependencies, and the plans made from them."""

    version: tuple[int, ...] = ()
    catalog: Catalog = field(default_factory=dict)
    needs: dict[int, tuple[Dependency, ...]] = field(default_factory=dict)
    plans: dict[tuple[int, frozenset[str]], Plan] = field(default_factory=dict)

    def plan(self, task_type_id: int, provides: frozenset[str]) -> Plan:
        cached = self.plans.get((task_type_id, provides))
        if cached is None:
            cached = plan(self.needs.get(task_type_id, ()), provides, self.catalog)
            self.plans[task_type_id, provides] = cached
        return cached


_CATALOG_VERSION = select(
    select(func.count()).select_from(task_types).scalar_subquery(),
    select(func.max(task_types.c.id)).scalar_subquery(),
    select(func.count()).select_from(dependency_packages).scalar_subquery(),
    select(func.max(dependency_packages.c.id)).scalar_subquery(),
)
