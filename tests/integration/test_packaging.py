"""Runyard as a library: pyproject.toml states version ranges, requirements.lock the tested
versions (docs/development.md). The lock must agree with the ranges, and the ranges must let
Runyard install beside a lab's own, older pins. The resolutions run uv (Runyard's own
dependency), from its cache when it can, else from the package index; they are skipped, with
the reason, when neither has what they need."""

from __future__ import annotations

import re
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from uv import find_uv_bin

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
# The command that writes requirements.lock (docs/development.md), without `-o FILE`.
LOCK_COMMAND = (
    "pip compile pyproject.toml --extra test --universal --python-version 3.11 --generate-hashes"
).split()
# Runtime requirements only (a lab installs Runyard without its test tools), on Linux.
RUNTIME_COMMAND = (
    "pip compile pyproject.toml --python-version 3.11 --python-platform linux --no-header "
    "--no-annotate --quiet"
).split()
NETWORK_ERRORS = (
    "Failed to fetch",
    "error sending request",
    "Request failed",
    "dns error",
    "tcp connect error",
    "timed out",
    "Network connectivity is disabled",
)


def declared() -> list[Requirement]:
    """pyproject.toml's requirements: the runtime ones and the test extra's."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = project["dependencies"] + project["optional-dependencies"]["test"]
    return [Requirement(line) for line in lines]


def pins(text: str) -> dict[str, tuple[Requirement, list[str]]]:
    """A requirements file's entries by canonical name: the requirement and its hashes."""
    found: dict[str, tuple[Requirement, list[str]]] = {}
    for line in text.replace("\\\n", " ").splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            spec, *hashes = re.split(r"\s+--hash=", entry)
            requirement = Requirement(spec)
            found[canonicalize_name(requirement.name)] = (requirement, hashes)
    return found


def pinned_version(requirement: Requirement) -> str:
    (spec,) = requirement.specifier
    assert spec.operator == "==", f"{requirement} is not an exact pin"
    return spec.version


def uv(
    *args: str,
    prepare: Callable[[], object] = lambda: None,
    accept: Callable[[subprocess.CompletedProcess[str]], bool] = lambda _: True,
) -> subprocess.CompletedProcess[str]:
    """`uv ARGS` in the repository, after `prepare()`: offline from uv's cache first, then from
    the index. Offline, uv leaves out the versions it has no metadata of, so an offline answer
    counts only if `accept` takes it. A run that fails for want of the network (and the cache)
    skips the test."""
    for offline in (True, False):
        prepare()
        result = subprocess.run(
            [find_uv_bin(), *args, *(["--offline"] if offline else [])],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode == 0 and (not offline or accept(result)):
            return result
    if "No solution found" not in result.stderr and any(
        error in result.stderr for error in NETWORK_ERRORS
    ):
        reason = result.stderr.strip().splitlines()[-1].strip()
        pytest.skip(f"the package index is unreachable and uv's cache lacks the data: {reason}")
    return result


def entries(text: str) -> set[str]:
    """A requirements file's entries without their hashes: `name==version ; marker`."""
    return {str(requirement) for requirement, _ in pins(text).values()}


def lower_bounds() -> dict[str, Version]:
    """The lower bound of each runtime requirement that applies on Linux."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    bounds: dict[str, Version] = {}
    for line in project["dependencies"]:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate({"sys_platform": "linux"}):
            lowest = min(Version(s.version) for s in requirement.specifier if s.operator == ">=")
            bounds[canonicalize_name(requirement.name)] = lowest
    return bounds


def resolved_versions(text: str) -> dict[str, Version]:
    return {name: Version(pinned_version(r)) for name, (r, _) in pins(text).items()}


def test_the_lock_pins_every_requirement_within_its_range() -> None:
    locked = pins(LOCK.read_text(encoding="utf-8"))
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement.name} is not in requirements.lock: regenerate it"
        version = pinned_version(locked[name][0])
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements.lock has {name}=={version}, outside pyproject.toml's {requirement}"
        )


def test_the_lock_pins_exact_versions_with_their_hashes() -> None:
    locked = pins(LOCK.read_text(encoding="utf-8"))
    assert len(locked) > 50
    for name, (requirement, hashes) in locked.items():
        pinned_version(requirement)
        assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), name


def test_the_lock_is_what_uv_resolves_from_pyproject_now(tmp_path: Path) -> None:
    """The documented command, run on a copy of the lock (whose versions uv keeps where the
    ranges allow), changes no entry: nothing is missing, extra or out of range."""
    lock = LOCK.read_text(encoding="utf-8")
    again = tmp_path / "requirements.lock"
    result = uv(
        *LOCK_COMMAND,
        "--quiet",
        "-o",
        str(again),
        prepare=lambda: again.write_text(lock, encoding="utf-8"),
        accept=lambda _: entries(again.read_text(encoding="utf-8")) == entries(lock),
    )
    assert result.returncode == 0, result.stderr
    assert entries(again.read_text(encoding="utf-8")) == entries(lock), (
        "requirements.lock does not follow pyproject.toml: regenerate it (docs/development.md)"
    )


LAB_PINS = {
    "older-numpy-fastapi-pydantic": ["numpy==1.26.*", "fastapi==0.115.*", "pydantic==2.7.*"],
    "older-sqlalchemy-numpy-2.0": ["sqlalchemy==2.0.30", "numpy==2.0.*", "rich==13.*"],
}


@pytest.mark.parametrize("lab", LAB_PINS)
def test_runyard_installs_beside_a_labs_older_pins(lab: str, tmp_path: Path) -> None:
    """Runyard's runtime requirements resolve together with the lab's pins, which stay."""
    (tmp_path / "lab.in").write_text("\n".join(LAB_PINS[lab]) + "\n", encoding="utf-8")
    result = uv(*RUNTIME_COMMAND, str(tmp_path / "lab.in"))
    assert result.returncode == 0, result.stderr
    resolved = pins(result.stdout)
    for line in LAB_PINS[lab]:
        wanted = Requirement(line)
        version = pinned_version(resolved[canonicalize_name(wanted.name)][0])
        assert wanted.specifier.contains(version), f"{line} became {version}"
    assert "uv" in resolved and "fastapi" in resolved


def test_the_lowest_versions_of_the_ranges_install_together() -> None:
    """Each range's lower bound is a version that resolves with the others' lower bounds
    (uv's lowest-direct resolution), so no lower bound is only there on paper."""
    bounds = lower_bounds()

    def at_bounds(result: subprocess.CompletedProcess[str]) -> bool:
        versions = resolved_versions(result.stdout)
        return all(versions.get(name) == lowest for name, lowest in bounds.items())

    result = uv(*RUNTIME_COMMAND, "--resolution", "lowest-direct", accept=at_bounds)
    assert result.returncode == 0, result.stderr
    versions = resolved_versions(result.stdout)
    for name, lowest in bounds.items():
        assert versions[name] == lowest, f"{name} resolved to {versions[name]}, not to {lowest}"
