"""The XamFlow compatibility tier: task type and workflow packages written by a XamFlow user
from XamFlow's documented surface alone (/work/shared/XAMFLOW-API.md), imported into a real
``runyard up`` (server and local worker as subprocesses) on SQLite and on PostgreSQL.

Each test module shares one ``runyard up`` per backend (the module-scoped ``lab``). A
module's fixture imports its packages, starts its workflows and runs, waits until no job is
Queued or Running, and the tests assert what came out. A package that is refused, or a run
that cannot be started, is recorded and fails only the tests of that feature.

The scripts under packages/ use only what XamFlow documents (``xfworkerutil``, ``network``,
``xfsortorder``, ``omni``); where XamFlow leaves a detail open, the test's docstring says
which reading it takes."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.conftest import Installation, start_up, stop
from tests.conftest import fresh_postgres_database

PACKAGES = Path(__file__).parent / "packages"
SOURCE = "Compat.Source"  # an interactive source task: its jobs are created with `value`
ACTIVE = ("Queued", "Running")


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def backend_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An empty database on each backend, for one test module."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'runyard.db'}"
        return
    with fresh_postgres_database("rycompat_") as url:
        yield url


class Lab:
    """A ``runyard up`` and what a module did with it: the packages it imported (or that were
    refused, with the server's message), the workflows it started, problems by feature."""

    def __init__(self, installation: Installation) -> None:
        self.installation = installation
        self.url = installation.url
        self.http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {installation.admin_token}"},
            timeout=60,
        )
        self.imported: set[str] = set()
        self.workflows: list[str] = []
        self.problems: dict[str, list[str]] = {}

    # -- the HTTP API ----------------------------------------------------------------------

    def api(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, path, json=body)
        if response.status_code >= 400:
            raise AssertionError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json()

    def import_package(self, package: str | Path) -> None:
        """Import tests/compat/packages/NAME, or a package folder (zipped as an .xfp), once;
        refused: AssertionError with the server's message."""
        name = str(package)
        if name in self.imported:
            return
        folder = PACKAGES / package if isinstance(package, str) else package
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as xfp:
            for path in sorted(folder.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    xfp.write(path, path.relative_to(folder).as_posix())
        response = self.http.post("/api/packages", content=buffer.getvalue())
        if response.status_code >= 400:
            raise AssertionError(f"importing {name} refused: {response.text}")
        self.imported.add(name)

    def start_workflow(self, name: str) -> None:
        self.api("POST", f"/api/workflows/{name}/start")
        self.workflows.append(name)

    def new_run(
        self, workflow: str, task: str, name: str, outputs: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"task": task, "name": name}
        if outputs is not None:
            body["outputs"] = outputs
        run: dict[str, Any] = self.api("POST", f"/api/workflows/{workflow}/runs", body)
        return run

    def status(self, workflow: str) -> dict[str, Any]:
        status: dict[str, Any] = self.api("GET", f"/api/workflows/{workflow}/status")
        return status

    def job(self, serial: int) -> dict[str, Any]:
        job: dict[str, Any] = self.api("GET", f"/api/jobs/{serial}")
        return job

    def log(self, serial: int) -> str:
        response = self.http.get(f"/api/jobs/{serial}/log")
        response.raise_for_status()
        return response.text

    def file(self, value: dict[str, Any]) -> bytes:
        """The content of a file store output value (``{"type": ..., "file_id": ...}``)."""
        assert "file_id" in value, f"not a file store value: {value}"
        response = self.http.get(f"/api/files/{value['file_id']}")
        response.raise_for_status()
        return response.content

    def activity(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = self.api("GET", "/api/activity")
        return entries

    def wait(self, timeout: float = 90) -> None:
        """Until no job of the started workflows is Queued or Running (or ``timeout``
        seconds: the tests then see the jobs that did not end)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            busy = False
            for workflow in self.workflows:
                status = self.status(workflow)
                jobs = [j for run in status["runs"] for j in run["jobs"].values()]
                jobs += list((status.get("reduce") or {}).values())
                if any(job["state"] in ACTIVE for job in jobs):
                    busy = True
                    break
            if not busy:
                return
            time.sleep(0.1)

    # -- features: setup problems fail only the tests of their feature ----------------------

    @contextmanager
    def feature(self, name: str) -> Iterator[None]:
        """Record what went wrong while setting up ``name`` instead of raising it."""
        try:
            yield
        except AssertionError as exc:
            self.problems.setdefault(name, []).append(str(exc))
        except Exception as exc:
            self.problems.setdefault(name, []).append(f"{type(exc).__name__}: {exc}")

    def check(self, feature: str) -> None:
        """Fail the test if setting up ``feature`` went wrong."""
        if feature in self.problems:
            pytest.fail(f"setting up {feature}: " + " | ".join(self.problems[feature]))

    # -- reading results ---------------------------------------------------------------------

    def runs(self, workflow: str) -> dict[str, dict[str, Any]]:
        """The runs of ``workflow`` by name: each its jobs by task name."""
        return {run["name"]: run["jobs"] for run in self.status(workflow)["runs"]}

    def done(self, job: dict[str, Any] | None, what: str = "job") -> dict[str, Any]:
        """``job``'s outputs; fails with its state, error and log unless it is Done."""
        assert job is not None, f"{what}: no job was created"
        if job["state"] != "Done":
            log = self.log(job["serial"]).strip().splitlines()[-12:]
            raise AssertionError(
                f"{what} (job {job['serial']}) is {job['state']}: {job.get('error')!r}; "
                "log tail:\n" + "\n".join(log)
            )
        outputs: dict[str, Any] = job["outputs"]
        return outputs


@pytest.fixture(scope="module")
def lab(backend_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """``runyard up`` on SQLite or PostgreSQL, shared by the tests of one module."""
    extra = () if backend_url.startswith("sqlite") else ("--database-url", backend_url)
    installation = start_up(tmp_path_factory.mktemp("up") / "lab", *extra)
    instance = Lab(installation)
    yield instance
    instance.http.close()
    stop(installation)
