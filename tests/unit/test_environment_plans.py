"""What a worker must install for a task type's dependency packages (``plan``): each package
after those it needs, the version asked for or the newest above it, nothing a worker provides,
virtual markers and unknown names as missing; and which workers may then claim the jobs."""

from __future__ import annotations

from runyard.models import Capabilities, Dependency
from runyard.operations.environments import Plan, plan
from runyard.store.dependency_packages import ImportedDependencyPackage


def dep(name: str, version: str = "1.0.0.0") -> Dependency:
    return Dependency(name=name, version=version)


def package(
    name: str, version: str = "1.0.0.0", install: str | None = "%xfpip% install x", *needs: str
) -> ImportedDependencyPackage:
    return ImportedDependencyPackage(
        name=name, version=version, install=install, dependencies=tuple(dep(n) for n in needs)
    )


CATALOG = {
    "Py.skimage": [package("Py.skimage", "1.0.0.0", "%xfpip% install scikit-image", "Py.numpy")],
    "Py.numpy": [
        package("Py.numpy", "2.0.0.0", "%xfpip% install numpy==2.*", "Core.Host.Python3"),
        package("Py.numpy", "1.0.0.0", "%xfpip% install numpy==1.*"),
    ],
    "Vendor.Tool": [package("Vendor.Tool", "1.0.0.0", None)],  # a virtual marker
}


def test_each_package_comes_after_those_it_needs_and_every_worker_has_python() -> None:
    found = plan([dep("Py.skimage")], [], CATALOG)
    assert [(p.name, p.version) for p in found.packages] == [
        ("Py.numpy", "1.0.0.0"),
        ("Py.skimage", "1.0.0.0"),
    ]
    assert found.missing == ()
    assert found.key and found.key == plan([dep("Py.skimage")], [], CATALOG).key


def test_the_version_asked_for_else_the_newest_above_it_else_missing() -> None:
    assert plan([dep("Py.numpy", "2.0.0.0")], [], CATALOG).packages[0].version == "2.0.0.0"
    assert plan([dep("Py.numpy", "1.5.0.0")], [], CATALOG).packages[0].version == "2.0.0.0"
    assert plan([dep("Py.numpy", "3.0.0.0")], [], CATALOG).missing == ("Py.numpy",)
    assert plan([dep("Not.Imported")], [], CATALOG).missing == ("Not.Imported",)


def test_what_a_worker_provides_is_not_installed_nor_what_it_needs() -> None:
    assert plan([dep("Py.skimage")], ["Py.skimage"], CATALOG) == Plan()
    found = plan([dep("Py.skimage")], ["Py.numpy"], CATALOG)
    assert [p.name for p in found.packages] == ["Py.skimage"]


def test_a_virtual_marker_must_be_provided() -> None:
    assert plan([dep("Vendor.Tool")], [], CATALOG).missing == ("Vendor.Tool",)
    assert plan([dep("Vendor.Tool")], ["Vendor.Tool"], CATALOG) == Plan()


def test_which_workers_may_claim() -> None:
    found = plan([dep("Py.skimage")], [], CATALOG)
    assert not found.runnable_by(Capabilities())
    assert found.runnable_by(Capabilities(installs=True))
    assert not found.runnable_by(Capabilities(installs=True, failed=frozenset({found.key})))
    assert found.runnable_by(Capabilities(ready=frozenset({found.key})))
    assert Plan().runnable_by(Capabilities())
    assert not plan([dep("Vendor.Tool")], [], CATALOG).runnable_by(Capabilities(installs=True))
