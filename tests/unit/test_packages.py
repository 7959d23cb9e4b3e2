"""Packages: reading folders and zips safely, and checking task type, dependency and workflow
packages fully, with errors that name the file, the field and the problem."""

from __future__ import annotations

import io
import json
import os
import stat
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runyard.errors import InvalidInput, InvalidPackage
from runyard.models import Dependency, InputSource, Interface, Parameter, TaskInput, TaskType
from runyard.packages import (
    Author,
    DependencyPackage,
    Documentation,
    DocumentFile,
    PackageFiles,
    TaskTypePackage,
    WorkflowPackage,
    WorkflowTaskSpec,
    archive,
    check_value,
    documentation,
    load_package,
    parameters,
    parse_package,
    read_documentation,
    read_package_bytes,
    resolve_workflow,
    schemas,
    version_key,
    workflow_package_bytes,
)
from runyard.packages.documents import check_schema

DROP = object()  # a metadata/interface value that removes the field

# -- helpers: building packages -------------------------------------------------------------


def encode(content: Any) -> bytes:
    if isinstance(content, bytes):
        return content
    if isinstance(content, str):
        return content.encode()
    return json.dumps(content).encode()


def changed(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    result = base | changes
    return {k: v for k, v in result.items() if v is not DROP}


def tt_metadata(**changes: Any) -> dict[str, Any]:
    base = {
        "package_format": "XFP-TT1.0",
        "name": "Lab.Threshold",
        "version": "1.2.0.0",
        "display_name": "Threshold",
        "summary": "Binarises an image.",
        "author": "Lab",
        "timeout_seconds": 60,
        "dependencies": [{"name": "numpy", "version": "1.0.0.0"}],
    }
    return changed(base, changes)


def tt_inputs() -> list[dict[str, Any]]:
    return [
        {"key": "image", "type": "Image", "supported_modes": ["output", "ui"]},
        {"key": "level", "type": "Int", "default": 5, "minimum": 0, "maximum": 10},
        {"key": "method", "type": "String", "enum": ["otsu", "fixed"], "description": "How"},
    ]


def tt_interface(**changes: Any) -> dict[str, Any]:
    base = {
        "kind": "processing",
        "inputs": tt_inputs(),
        "outputs": [{"key": "mask", "type": "Image"}, {"key": "count", "type": "Int"}],
    }
    return changed(base, changes)


def with_input(index: int, **changes: Any) -> dict[str, Any]:
    """The interface with input ``index`` changed."""
    inputs = tt_inputs()
    inputs[index] = changed(inputs[index], changes)
    return tt_interface(inputs=inputs)


def tt_files(
    metadata: dict[str, Any] | None = None,
    interface: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, bytes]:
    files = {
        "metadata.json": metadata if metadata is not None else tt_metadata(),
        "interface.json": interface if interface is not None else tt_interface(),
        "main.py": "print('threshold')\n",
        "lib/helpers.py": "X = 1\n",
    }
    return {name: encode(content) for name, content in (files | extra).items()}


def write_folder(root: Path, files: dict[str, Any]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode(content))
    return root


def zip_bytes(files: dict[str, Any], prefix: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for name, content in files.items():
            zf.writestr(prefix + name, encode(content))
    return buffer.getvalue()


def write_zip(path: Path, files: dict[str, Any], prefix: str = "") -> Path:
    path.write_bytes(zip_bytes(files, prefix))
    return path


def parse(files: dict[str, Any]) -> Any:
    return parse_package(PackageFiles(files={k: encode(v) for k, v in files.items()}, origin="t"))


def refused(action: Callable[[], object], *, file: str, field: str, words: str) -> InvalidPackage:
    """``action`` raises InvalidPackage naming ``file`` and ``field``, saying ``words``."""
    with pytest.raises(InvalidPackage) as info:
        action()
    error = info.value
    assert error.details == {"file": file, "field": field}, error.message
    prefix = f"{file}: {field}: " if field else f"{file}: "
    assert error.message.startswith(prefix), error.message
    assert words in error.message, error.message
    return error


def refused_files(files: dict[str, Any], *, file: str, field: str, words: str) -> InvalidPackage:
    return refused(lambda: parse(files), file=file, field=field, words=words)


def refused_path(path: Path, *, field: str, words: str) -> InvalidPackage:
    return refused(lambda: load_package(path), file=str(path), field=field, words=words)


def central_directory_offsets(data: bytes) -> list[int]:
    offsets, start = [], 0
    while (found := data.find(b"PK\x01\x02", start)) >= 0:
        offsets.append(found)
        start = found + 4
    return offsets


# -- task type packages: valid --------------------------------------------------------------


def test_task_type_folder_loads_metadata_interface_and_files(tmp_path: Path) -> None:
    pkg = load_package(write_folder(tmp_path / "tt", tt_files()))

    assert isinstance(pkg, TaskTypePackage)
    tt = pkg.task_type
    assert (tt.id, tt.path, tt.name, tt.version) == (0, "", "Lab.Threshold", "1.2.0.0")
    assert (tt.display_name, tt.summary, tt.author) == ("Threshold", "Binarises an image.", "Lab")
    assert tt.entry_point == "main.py"
    assert tt.timeout_seconds == 60.0
    assert tt.dependencies == (Dependency(name="numpy", version="1.0.0.0"),)
    assert tt.interface.kind == "processing"
    assert [p.key for p in tt.interface.inputs] == ["image", "level", "method"]
    assert sorted(pkg.files) == ["interface.json", "lib/helpers.py", "main.py", "metadata.json"]


def test_task_type_interface_defaults_modes_and_keeps_constraints() -> None:
    tt = parse(tt_files()).task_type
    image, level, method = tt.interface.inputs

    assert image.supported_modes == ("output", "ui")
    assert level.supported_modes == ("none", "fixed", "output", "define_on_first", "ui")
    assert level.default == 5
    assert level.constraints == {"minimum": 0, "maximum": 10}
    assert method.constraints == {"enum": ["otsu", "fixed"]}
    assert method.description == "How"
    assert tt.interface.output("mask") == Parameter(key="mask", type="Image")


def test_task_type_zip_with_files_at_top_level_loads_like_the_folder(tmp_path: Path) -> None:
    from_folder = load_package(write_folder(tmp_path / "tt", tt_files()))
    from_zip = load_package(write_zip(tmp_path / "tt.xfp", tt_files()))

    assert from_zip == from_folder


def test_task_type_zip_inside_one_top_level_folder_loads(tmp_path: Path) -> None:
    pkg = load_package(write_zip(tmp_path / "tt.xfp", tt_files(), prefix="threshold/"))

    assert isinstance(pkg, TaskTypePackage)
    assert "lib/helpers.py" in pkg.files
    assert pkg.task_type.name == "Lab.Threshold"


def test_zip_made_by_macos_ignores_its_resource_fork_folder(tmp_path: Path) -> None:
    files = {f"threshold/{n}": c for n, c in tt_files().items()} | {"__MACOSX/._main.py": b"x"}

    pkg = load_package(write_zip(tmp_path / "tt.xfp", files))

    assert isinstance(pkg, TaskTypePackage)
    assert "__MACOSX/._main.py" not in pkg.files


def test_uploaded_zip_bytes_read_without_a_file() -> None:
    files = read_package_bytes(zip_bytes(tt_files()), "upload.xfp")

    assert files.origin == "upload.xfp"
    assert files.files == tt_files()


def test_entry_point_in_a_subfolder_and_no_timeout_load() -> None:
    metadata = tt_metadata(entry_point="lib/helpers.py", timeout_seconds=DROP)

    tt = parse(tt_files(metadata)).task_type

    assert tt.entry_point == "lib/helpers.py"
    assert tt.timeout_seconds is None


# -- archive safety ---------------------------------------------------------------------------


def test_missing_path_is_refused(tmp_path: Path) -> None:
    refused_path(tmp_path / "nothing.xfp", field="", words="does not exist")


def test_file_that_is_not_a_zip_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tt.xfp"
    path.write_text("not a zip")

    refused_path(path, field="", words="is not a zip file")


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("/etc/main.py", "is an absolute path"),
        ("C:/main.py", "is an absolute path"),
        ("../main.py", "contains '..'"),
        ("lib/../../main.py", "contains '..'"),
        ("lib\\main.py", "contains a backslash"),
        ("lib//main.py", "empty or '.' folder name"),
    ],
)
def test_zip_entry_with_unsafe_path_is_refused(tmp_path: Path, entry: str, words: str) -> None:
    path = write_zip(tmp_path / "tt.xfp", tt_files() | {entry: b"x"})

    refused_path(path, field=entry, words=words)


def test_zip_entry_with_nul_in_its_name_is_refused(tmp_path: Path) -> None:
    data = zip_bytes(tt_files() | {"evilXname.py": b"x"}).replace(b"evilXname", b"evil\0name")
    path = tmp_path / "tt.xfp"
    path.write_bytes(data)

    refused_path(path, field="evil<NUL>name.py", words="contains a NUL character")


def test_zip_entry_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, content in tt_files().items():
            zf.writestr(name, content)
        link = zipfile.ZipInfo("link.py")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    path = tmp_path / "tt.xfp"
    path.write_bytes(buffer.getvalue())

    refused_path(path, field="link.py", words="is a symbolic link")


def test_zip_with_the_same_entry_twice_is_refused(tmp_path: Path) -> None:
    data = zip_bytes(tt_files() | {"twin_a.py": b"a", "twin_b.py": b"b"})
    path = tmp_path / "tt.xfp"
    path.write_bytes(data.replace(b"twin_b.py", b"twin_a.py"))

    refused_path(path, field="twin_a.py", words="appears twice")


def test_zip_with_more_than_10000_files_is_refused(tmp_path: Path) -> None:
    many = {f"data/{n}.txt": b"" for n in range(archive.MAX_FILES - 3)}
    path = write_zip(tmp_path / "tt.xfp", tt_files() | many)

    refused_path(path, field="", words="more than 10000 files")


def declaring(files: dict[str, bytes], sizes: dict[bytes, int]) -> bytes:
    """A zip of ``files`` whose central directory declares ``sizes`` (uncompressed)."""
    data = bytearray(zip_bytes(files))
    for offset in central_directory_offsets(bytes(data)):
        name_length = struct.unpack_from("<H", data, offset + 28)[0]
        name = bytes(data[offset + 46 : offset + 46 + name_length])
        if name in sizes:
            struct.pack_into("<I", data, offset + 24, sizes[name])
    return bytes(data)


def test_zip_with_more_than_1_gib_uncompressed_is_refused(tmp_path: Path) -> None:
    big = {f"big{n}.bin": b"x" for n in range(5)}  # each within the cap of one file
    path = tmp_path / "tt.xfp"
    path.write_bytes(
        declaring(
            tt_files() | big,
            dict.fromkeys((name.encode() for name in big), archive.MAX_ENTRY_BYTES),
        )
    )

    refused_path(path, field="", words="more than 1 GiB (1073741824 bytes)")


def test_zip_with_one_file_over_256_mib_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "tt.xfp"
    path.write_bytes(
        declaring(tt_files() | {"big.bin": b"x"}, {b"big.bin": archive.MAX_ENTRY_BYTES + 1})
    )

    refused_path(path, field="big.bin", words="more than the 256 MiB (268435456 bytes)")


def test_folder_with_a_symlinked_file_is_refused(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "tt", tt_files())
    (root / "lib" / "secret.py").symlink_to("/etc/passwd")

    refused_path(root, field="lib/secret.py", words="is a symbolic link")


def test_folder_with_a_symlinked_folder_is_refused(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "tt", tt_files())
    (tmp_path / "elsewhere").mkdir()
    (root / "lib" / "more").symlink_to(tmp_path / "elsewhere", target_is_directory=True)

    refused_path(root, field="lib/more", words="is a symbolic link")


def test_folder_with_a_backslash_in_a_file_name_is_refused(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "tt", tt_files() | {"lib\\x.py": b"x"})

    refused_path(root, field="lib\\x.py", words="contains a backslash")


def test_folder_with_a_file_name_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "tt", tt_files())
    try:
        (Path(os.fsdecode(bytes(root) + b"/\xff.py"))).write_bytes(b"x")
    except OSError:
        pytest.skip("this file system refuses file names that are not UTF-8")

    refused_path(root, field="\ufffd.py", words="is not valid UTF-8")


def test_folder_with_a_named_pipe_is_refused(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "tt", tt_files())
    os.mkfifo(root / "pipe")

    refused_path(root, field="pipe", words="is not a regular file")


def test_folder_with_more_than_10000_files_is_refused(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "tt", tt_files())
    (root / "data").mkdir()
    for n in range(archive.MAX_FILES - 3):
        (root / "data" / f"{n}.txt").write_bytes(b"")

    refused_path(root, field="", words="more than 10000 files")


def test_folder_with_more_than_1_gib_is_refused(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "tt", tt_files())
    for n in range(5):  # each within the cap of one file
        with (root / f"big{n}.bin").open("wb") as sparse:
            sparse.truncate(archive.MAX_ENTRY_BYTES)

    refused_path(root, field="", words="more than 1 GiB (1073741824 bytes)")


def test_folder_with_one_file_over_256_mib_is_refused_naming_it(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "tt", tt_files())
    with (root / "big.bin").open("wb") as sparse:
        sparse.truncate(archive.MAX_ENTRY_BYTES + 1)

    refused_path(root, field="big.bin", words="more than the 256 MiB (268435456 bytes)")


# -- JSON files -------------------------------------------------------------------------------


def test_json_that_is_not_utf8_is_refused_with_line_and_column() -> None:
    files = tt_files() | {"interface.json": b'{\n  "kind": "proc\xffssing"}'}

    refused_files(
        files, file="interface.json", field="", words="not valid UTF-8 (line 2, column 16)"
    )


def test_json_with_a_syntax_error_is_refused_with_line_and_column() -> None:
    files = tt_files() | {"metadata.json": b'{\n  "name": "x",,\n}'}

    refused_files(files, file="metadata.json", field="", words="(line 2, column 15)")


def test_json_with_nan_is_refused() -> None:
    files = tt_files() | {"interface.json": b'{"kind": "processing", "x": NaN}'}

    refused_files(files, file="interface.json", field="", words="contains NaN")


def test_json_with_a_key_twice_in_one_object_is_refused() -> None:
    files = tt_files() | {"interface.json": b'{"kind": "processing", "kind": "reduce"}'}

    refused_files(files, file="interface.json", field="", words='has the key "kind" twice')


def test_json_nested_too_deeply_is_refused() -> None:
    files = tt_files() | {"interface.json": b"[" * 100_000 + b"]" * 100_000}

    refused_files(files, file="interface.json", field="", words="nests lists or objects too deeply")


def test_json_that_is_not_an_object_is_refused() -> None:
    files = tt_files() | {"metadata.json": b"[]"}

    refused_files(files, file="metadata.json", field="(top level)", words="must be an object")


def test_json_with_a_utf8_byte_order_mark_loads() -> None:
    files = tt_files() | {"interface.json": b"\xef\xbb\xbf" + encode(tt_interface())}

    assert parse(files).task_type.interface.kind == "processing"


# -- metadata.json ----------------------------------------------------------------------------


def test_package_without_metadata_is_refused() -> None:
    files = tt_files()
    del files["metadata.json"]

    refused_files(files, file="metadata.json", field="", words="is missing")


def test_unknown_package_format_is_refused() -> None:
    files = tt_files(tt_metadata(package_format="XFP-TT2.0"))

    refused_files(
        files,
        file="metadata.json",
        field="package_format",
        words="must be one of XFP-TT1.0 (task type)",
    )


def test_package_format_missing_is_refused() -> None:
    files = tt_files(tt_metadata(package_format=DROP))

    refused_files(files, file="metadata.json", field="package_format", words="is missing; add it")


@pytest.mark.parametrize("version", ["1.2", "1.2.0.0.0", "1.02.0.0", "1.2.0.a", "1.2.0.-1", ""])
def test_version_that_is_not_four_numbers_is_refused(version: str) -> None:
    files = tt_files(tt_metadata(version=version))

    refused_files(files, file="metadata.json", field="version", words="four whole numbers")


def test_version_that_is_a_number_is_refused() -> None:
    files = tt_files(tt_metadata(version=1.2))

    refused_files(files, file="metadata.json", field="version", words="must be a string, not 1.2")


@pytest.mark.parametrize("name", ["Lab Threshold", "Lab-Threshold", "", "L" * 51])
def test_task_type_name_outside_the_rules_is_refused(name: str) -> None:
    files = tt_files(tt_metadata(name=name))

    refused_files(files, file="metadata.json", field="name", words="1 to 50 letters, digits")


def test_task_type_name_of_50_characters_loads() -> None:
    assert parse(tt_files(tt_metadata(name="L" * 50))).task_type.name == "L" * 50


def test_misspelt_metadata_field_is_refused_with_the_known_fields() -> None:
    files = tt_files(tt_metadata(timout_seconds=5))

    error = refused_files(
        files, file="metadata.json", field="timout_seconds", words="is not a known field"
    )
    assert "timeout_seconds" in error.message


@pytest.mark.parametrize("timeout", [0, -1, True, "60"])
def test_timeout_that_is_not_a_positive_number_is_refused(timeout: Any) -> None:
    files = tt_files(tt_metadata(timeout_seconds=timeout))

    refused_files(files, file="metadata.json", field="timeout_seconds", words="must be")


def test_jobs_per_process_loads_and_defaults_to_a_new_process_per_job() -> None:
    assert parse(tt_files()).task_type.jobs_per_process == 1
    reused = parse(tt_files(tt_metadata(jobs_per_process=3))).task_type
    assert reused.jobs_per_process == 3


@pytest.mark.parametrize("jobs", [0, -1, "3", True, 2.5, 3.0, None])
def test_jobs_per_process_that_is_not_a_whole_number_of_at_least_1_is_refused(jobs: Any) -> None:
    """0 and -1: "must be a whole number of at least 1 (1: a new process for every job)";
    the others: "must be a whole number, not true"."""
    files = tt_files(tt_metadata(jobs_per_process=jobs))

    refused_files(
        files, file="metadata.json", field="jobs_per_process", words="must be a whole number"
    )


def test_resources_load_and_default_to_none() -> None:
    assert parse(tt_files()).task_type.resources == {}
    asked = {"cpus": 8, "memory": "16G", "partition": "long"}
    assert parse(tt_files(tt_metadata(resources=asked))).task_type.resources == asked


@pytest.mark.parametrize(
    ("resources", "field", "words"),
    [
        ({"cpus": 0}, "resources.cpus", "a whole number of CPUs"),
        ({"memory": "lots"}, "resources.memory", "sbatch --mem"),
        ({"memory": 4}, "resources.memory", "must be"),
        ({"partition": "a b"}, "resources.partition", "a partition's name"),
        ({"gpus": 1}, "resources.gpus", "known fields: cpus, memory, partition"),
        ([], "resources", "must be"),
    ],
)
def test_resources_that_sbatch_could_not_take_are_refused(
    resources: Any, field: str, words: str
) -> None:
    files = tt_files(tt_metadata(resources=resources))

    refused_files(files, file="metadata.json", field=field, words=words)


def test_entry_point_missing_from_the_package_is_refused() -> None:
    files = tt_files(tt_metadata(entry_point="run.py"))

    refused_files(
        files, file="metadata.json", field="entry_point", words='is "run.py", which is not in'
    )


def test_default_entry_point_missing_from_the_package_is_refused() -> None:
    files = tt_files()
    del files["main.py"]

    refused_files(files, file="metadata.json", field="entry_point", words="(the default)")


@pytest.mark.parametrize("entry_point", ["../main.py", "/main.py", "lib\\helpers.py"])
def test_entry_point_outside_the_package_is_refused(entry_point: str) -> None:
    files = tt_files(tt_metadata(entry_point=entry_point))

    refused_files(files, file="metadata.json", field="entry_point", words="relative to the package")


def test_dependency_listed_twice_is_refused() -> None:
    deps = [{"name": "numpy", "version": "1.0.0.0"}, {"name": "numpy", "version": "2.0.0.0"}]
    files = tt_files(tt_metadata(dependencies=deps))

    refused_files(files, file="metadata.json", field="dependencies[1].name", words="a second time")


def test_dependency_without_version_is_refused() -> None:
    files = tt_files(tt_metadata(dependencies=[{"name": "numpy"}]))

    refused_files(files, file="metadata.json", field="dependencies[0].version", words="is missing")


def test_version_key_pads_each_number_so_versions_sort_as_numbers() -> None:
    assert version_key("1.2.0.10") == "0000000001.0000000002.0000000000.0000000010"
    versions = ["10.0.0.0", "2.0.0.0", "2.0.0.10", "2.0.0.9"]
    assert sorted(versions, key=version_key) == ["2.0.0.0", "2.0.0.9", "2.0.0.10", "10.0.0.0"]


def test_version_key_refuses_a_malformed_version() -> None:
    with pytest.raises(InvalidInput, match="four whole numbers"):
        version_key("1.2.3")


# -- interface.json ---------------------------------------------------------------------------


def test_task_type_without_interface_is_refused() -> None:
    files = tt_files()
    del files["interface.json"]

    refused_files(files, file="interface.json", field="", words="is missing")


def test_unknown_kind_is_refused() -> None:
    files = tt_files(interface=tt_interface(kind="batch"))

    refused_files(files, file="interface.json", field="kind", words='must be one of "processing"')


@pytest.mark.parametrize("type_name", ["Integer", "List[List[Int]]", "List[]", "int"])
def test_unknown_parameter_type_is_refused(type_name: str) -> None:
    files = tt_files(interface=with_input(2, type=type_name))

    refused_files(files, file="interface.json", field="inputs[2].type", words="a parameter type")


def test_list_parameter_types_load() -> None:
    interface = tt_interface(kind="reduce", inputs=[{"key": "counts", "type": "List[Int]"}])

    tt = parse(tt_files(interface=interface)).task_type

    assert tt.interface.inputs[0].type == "List[Int]"


@pytest.mark.parametrize("key", ["2image", "my-image", "", "image name"])
def test_parameter_key_that_is_not_an_identifier_is_refused(key: str) -> None:
    files = tt_files(interface=with_input(0, key=key))

    refused_files(files, file="interface.json", field="inputs[0].key", words="an identifier")


def test_input_key_used_twice_is_refused() -> None:
    files = tt_files(interface=with_input(2, key="level"))

    refused_files(
        files, file="interface.json", field="inputs[2].key", words="is used by two inputs"
    )


def test_output_key_used_twice_is_refused() -> None:
    outputs = [{"key": "mask", "type": "Image"}, {"key": "mask", "type": "CSV"}]
    files = tt_files(interface=tt_interface(outputs=outputs))

    refused_files(files, file="interface.json", field="outputs[1].key", words="used by two outputs")


def test_unknown_supported_mode_is_refused() -> None:
    files = tt_files(interface=with_input(0, supported_modes=["output", "manual"]))

    refused_files(
        files,
        file="interface.json",
        field="inputs[0].supported_modes[1]",
        words='"define_on_first"',
    )


def test_parameter_without_type_is_refused() -> None:
    files = tt_files(interface=with_input(1, type=DROP))

    refused_files(files, file="interface.json", field="inputs[1].type", words="is missing; add it")


@pytest.mark.parametrize(
    ("index", "changes", "words"),
    [
        (1, {"default": True}, "must be a whole number (Int); found true"),
        (1, {"default": 2.5}, "must be a whole number (Int); found 2.5"),
        (1, {"default": -1}, "must be at least 0; found -1"),
        (1, {"default": 11}, "must be at most 10; found 11"),
        (2, {"default": "mean"}, 'must be one of "otsu", "fixed"; found "mean"'),
        (2, {"default": 3}, "must be a string (String); found 3"),
        (0, {"default": "a.aim"}, 'must be an object or null (Image); found "a.aim"'),
    ],
)
def test_default_that_does_not_fit_the_input_is_refused(
    index: int, changes: dict[str, Any], words: str
) -> None:
    files = tt_files(interface=with_input(index, **changes))

    refused_files(files, file="interface.json", field=f"inputs[{index}].default", words=words)


def test_minimum_greater_than_maximum_is_refused() -> None:
    files = tt_files(interface=with_input(1, minimum=20, default=DROP))

    refused_files(
        files, file="interface.json", field="inputs[1].maximum", words="less than the minimum"
    )


@pytest.mark.parametrize("constraint", ["minimum", "maximum", "multipleOf"])
def test_number_constraint_on_a_string_input_is_refused(constraint: str) -> None:
    files = tt_files(interface=with_input(2, **{constraint: 1}))

    refused_files(
        files, file="interface.json", field=f"inputs[2].{constraint}", words="only to Int and Float"
    )


def test_enum_choice_of_the_wrong_type_is_refused() -> None:
    files = tt_files(interface=with_input(2, enum=["otsu", 7]))

    refused_files(
        files, file="interface.json", field="inputs[2].enum[1]", words="(String); found 7"
    )


def test_list_default_checks_every_item() -> None:
    inputs = [{"key": "levels", "type": "List[Int]", "default": [1, 2, "3"]}]
    files = tt_files(interface=tt_interface(kind="reduce", inputs=inputs))

    refused_files(files, file="interface.json", field="inputs[0].default", words="item 2 must be")


@pytest.mark.parametrize(
    ("type_name", "constraints", "value"),
    [
        ("Int", {"minimum": 0, "maximum": 10}, 10),
        ("Float", {"multipleOf": 0.1}, 0.3),
        ("Float", {}, 3),
        ("Int", {"multipleOf": 5}, 15),
        ("Bool", {}, False),
        ("String", {"enum": ["a", "b"]}, "b"),
        ("Entity", {}, {"type": "Entity", "uuid": "u", "name": "n"}),
        ("ForeignFile", {}, None),
        ("List[Float]", {"minimum": 0}, [0.5, 2]),
    ],
)
def test_check_value_accepts_values_that_fit(
    type_name: str, constraints: dict[str, Any], value: Any
) -> None:
    param = Parameter(key="x", type=type_name, constraints=constraints)

    assert check_value(param, value) is None


@pytest.mark.parametrize(
    ("type_name", "constraints", "value", "words"),
    [
        ("Float", {"multipleOf": 0.1}, 0.35, "must be a multiple of 0.1"),
        ("Int", {"multipleOf": 5}, 12, "must be a multiple of 5"),
        ("Float", {}, False, "must be a number (Float); found false"),
        ("Bool", {"enum": [True]}, 1, "true or false (Bool)"),
        ("Int", {"enum": [1]}, True, "whole number (Int)"),
        ("List[Int]", {}, 3, "must be a list (List[Int])"),
    ],
)
def test_check_value_describes_values_that_do_not_fit(
    type_name: str, constraints: dict[str, Any], value: Any, words: str
) -> None:
    param = Parameter(key="x", type=type_name, constraints=constraints)

    problem = check_value(param, value)

    assert problem is not None and words in problem


# -- dependency packages ----------------------------------------------------------------------


def dep_metadata(**changes: Any) -> dict[str, Any]:
    base = {
        "package_format": "XFP-DEP1.0",
        "name": "numpy",
        "version": "2.1.0.0",
        "summary": "Arrays",
        "install": "%xfpip% install numpy==2.1.0",
        "dependencies": [{"name": "python-base", "version": "3.11.0.0"}],
    }
    return changed(base, changes)


def test_dependency_package_loads_its_install_command(tmp_path: Path) -> None:
    pkg = load_package(write_zip(tmp_path / "numpy.xfp", {"metadata.json": dep_metadata()}))

    assert pkg == DependencyPackage(
        name="numpy",
        version="2.1.0.0",
        summary="Arrays",
        install="%xfpip% install numpy==2.1.0",
        dependencies=(Dependency(name="python-base", version="3.11.0.0"),),
        files={"metadata.json": encode(dep_metadata())},
    )


def test_dependency_package_with_a_blank_install_command_is_refused() -> None:
    files = {"metadata.json": dep_metadata(install="  ")}

    refused_files(files, file="metadata.json", field="install", words="a command like")


def test_virtual_marker_dependency_package_without_install_command_loads() -> None:
    """A "virtual marker" only flags workers that have some software already."""
    pkg = parse({"metadata.json": dep_metadata(install=DROP)})

    assert isinstance(pkg, DependencyPackage)
    assert (pkg.name, pkg.install) == ("numpy", "")


# -- workflow packages ------------------------------------------------------------------------


def param(key: str, type_name: str, **changes: Any) -> Parameter:
    return Parameter(key=key, type=type_name, **changes)


def task_type(
    name: str,
    version: str,
    inputs: tuple[Parameter, ...] = (),
    outputs: tuple[Parameter, ...] = (),
    kind: str = "processing",
) -> TaskType:
    interface = Interface(kind=kind, inputs=inputs, outputs=outputs)
    return TaskType(name=name, version=version, interface=interface)


def installed() -> list[TaskType]:
    select = task_type(
        "XF.Data.SelectImage",
        "1.0.0.0",
        inputs=(param("image", "Image", supported_modes=("ui",)),),
        outputs=(param("image", "Image"),),
    )
    threshold_inputs = (
        param("image", "Image", supported_modes=("output", "ui")),
        param("level", "Int", default=5, constraints={"minimum": 0, "maximum": 10}),
        param("method", "String"),
        param("label", "String"),
    )
    threshold_outputs = (param("mask", "Image"), param("count", "Int"))
    return [
        select,
        task_type("Lab.Threshold", "1.0.0.0", threshold_inputs, threshold_outputs),
        task_type("Lab.Threshold", "2.0.0.0", threshold_inputs, threshold_outputs),
        task_type("Lab.Statistics", "1.1.0.0", (param("mask", "Image"),), (param("t", "CSV"),)),
        task_type("Lab.Statistics", "1.0.0.0", (param("mask", "Image"),), (param("t", "CSV"),)),
        task_type(
            "Lab.Summary",
            "1.0.0.0",
            inputs=(param("counts", "List[Int]"),),
            outputs=(param("table", "CSV"),),
            kind="reduce",
        ),
    ]


class Finder:
    """``find_task_type`` over a list; remembers what it was asked."""

    def __init__(self, task_types: list[TaskType]) -> None:
        self.task_types = task_types
        self.calls: list[tuple[str, str | None]] = []

    def __call__(self, name: str, version: str | None) -> TaskType | None:
        self.calls.append((name, version))
        found = [t for t in self.task_types if t.name == name and version in (None, t.version)]
        return max(found, key=lambda t: version_key(t.version), default=None)


def wf_metadata(**changes: Any) -> dict[str, Any]:
    base = {
        "package_format": "XFP-WF1.0",
        "name": "Bone study",
        "version": "1.0.0.0",
        "remarks": "# Bone study\nThreshold, then statistics.",
    }
    return changed(base, changes)


def wf_tasks() -> dict[str, Any]:
    return {
        "tasks": [
            {
                "name": "Select image",
                "task_type": {"name": "XF.Data.SelectImage", "version": "1.0.0.0"},
                "inputs": [{"key": "image", "source": {"mode": "ui"}}],
            },
            {
                "name": "Threshold",
                "task_type": {"name": "Lab.Threshold", "version": "1.0.0.0"},
                "inputs": [
                    {"key": "image", "source": {"mode": "output", "task": 0, "key": "image"}},
                    {"key": "level", "source": {"mode": "fixed", "fixed_value": 7}},
                    {"key": "label", "source": {"mode": "define_on_first", "template": "L"}},
                ],
            },
            {
                "name": "Statistics",
                "task_type": {"name": "Lab.Statistics"},
                "inputs": [{"key": "mask", "source": {"mode": "output", "task": 1, "key": "mask"}}],
            },
        ]
    }


def wf_files(tasks: dict[str, Any] | None = None, **metadata: Any) -> dict[str, Any]:
    return {"metadata.json": wf_metadata(**metadata), "tasks.json": tasks or wf_tasks()}


def wf_with(task: int, source_or_input: dict[str, Any], number: int = 0) -> dict[str, Any]:
    """tasks.json with input ``number`` of task ``task`` replaced."""
    tasks = wf_tasks()
    tasks["tasks"][task]["inputs"][number] = source_or_input
    return tasks


def output(task: str, key: str) -> InputSource:
    return InputSource(mode="output", task=task, key=key)


def test_workflow_package_loads_tasks_with_upstream_task_names(tmp_path: Path) -> None:
    pkg = load_package(write_zip(tmp_path / "wf.xfp", wf_files()))

    assert isinstance(pkg, WorkflowPackage)
    assert (pkg.name, pkg.version) == ("Bone study", "1.0.0.0")
    assert pkg.remarks.startswith("# Bone study")
    assert [t.name for t in pkg.tasks] == ["Select image", "Threshold", "Statistics"]
    assert pkg.tasks[2] == WorkflowTaskSpec(
        name="Statistics",
        task_type_name="Lab.Statistics",
        task_type_version=None,
        inputs=(TaskInput(key="mask", source=output("Threshold", "mask")),),
    )
    assert pkg.tasks[1].inputs[1].source == InputSource(mode="fixed", fixed_value=7)
    assert pkg.tasks[1].inputs[2].source == InputSource(mode="define_on_first", template="L")


def test_a_workflow_package_layout_is_read_and_checked_against_its_tasks() -> None:
    positions = {"Threshold": {"x": 240, "y": 12.5}, "Statistics": {"x": 480, "y": -3}}
    pkg = parse({**wf_files(), "layout.json": {"positions": positions}})
    assert pkg.layout == {"positions": positions}
    assert parse(wf_files()).layout is None, "layout.json is optional"

    unknown = {"positions": {**positions, "Segment": {"x": 0, "y": 0}}}
    refused_files({**wf_files(), "layout.json": unknown}, file="layout.json",
                  field="positions.Segment", words="names no task of the package")  # fmt: skip
    no_y = {"positions": {"Threshold": {"x": 1}}}
    refused_files({**wf_files(), "layout.json": no_y}, file="layout.json",
                  field="positions.Threshold.y", words="is missing")  # fmt: skip
    text = {"positions": {"Threshold": {"x": "left", "y": 0}}}
    refused_files({**wf_files(), "layout.json": text}, file="layout.json",
                  field="positions.Threshold.x", words="number")  # fmt: skip


def test_resolve_uses_the_newest_version_when_the_package_names_none() -> None:
    find = Finder(installed())

    resolved = resolve_workflow(parse(wf_files()), find)

    assert ("Lab.Statistics", None) in find.calls
    assert [(s.name, t.name, t.version) for s, t in resolved] == [
        ("Select image", "XF.Data.SelectImage", "1.0.0.0"),
        ("Threshold", "Lab.Threshold", "1.0.0.0"),
        ("Statistics", "Lab.Statistics", "1.1.0.0"),
    ]
    assert resolved[2][0].task_type_version == "1.1.0.0"


def test_resolve_gives_unlisted_inputs_their_default_or_none() -> None:
    tasks = wf_tasks()
    del tasks["tasks"][1]["inputs"][1]  # level: default 5

    threshold = resolve_workflow(parse(wf_files(tasks)), Finder(installed()))[1][0]

    assert {i.key: i.source for i in threshold.inputs} == {
        "image": output("Select image", "image"),
        "level": InputSource(mode="fixed", fixed_value=5),
        "method": InputSource(mode="none"),
        "label": InputSource(mode="define_on_first", template="L"),
    }


def test_workflow_without_tasks_file_is_refused() -> None:
    refused_files({"metadata.json": wf_metadata()}, file="tasks.json", field="", words="is missing")


@pytest.mark.parametrize(
    ("name", "words"),
    [("", "without control characters"), ("Bone\tstudy", "control"), ("x" * 201, "1 to 200")],
)
def test_workflow_name_outside_the_rules_is_refused(name: str, words: str) -> None:
    refused_files(wf_files(name=name), file="metadata.json", field="name", words=words)


def test_task_names_used_twice_are_refused() -> None:
    tasks = wf_tasks()
    tasks["tasks"][2]["name"] = "Threshold"

    refused_files(
        wf_files(tasks), file="tasks.json", field="tasks[2].name", words="also the name of tasks[1]"
    )


@pytest.mark.parametrize("upstream", [1, 2, 5])
def test_output_source_that_is_not_an_earlier_task_is_refused(upstream: int) -> None:
    tasks = wf_with(1, {"key": "image", "source": {"mode": "output", "task": upstream, "key": "x"}})

    refused_files(
        wf_files(tasks),
        file="tasks.json",
        field="tasks[1].inputs[0].source.task",
        words="must name an earlier task by its index (0 to 0)",
    )


def test_output_source_index_that_is_not_an_integer_is_refused() -> None:
    tasks = wf_with(1, {"key": "image", "source": {"mode": "output", "task": 0.0, "key": "x"}})

    refused_files(
        wf_files(tasks),
        file="tasks.json",
        field="tasks[1].inputs[0].source.task",
        words="must be a whole number",
    )


def test_fixed_source_without_a_value_is_refused() -> None:
    tasks = wf_with(1, {"key": "level", "source": {"mode": "fixed"}}, number=1)

    refused_files(
        wf_files(tasks),
        file="tasks.json",
        field="tasks[1].inputs[1].source.fixed_value",
        words="is missing; add it",
    )


def test_unknown_source_mode_is_refused() -> None:
    tasks = wf_with(0, {"key": "image", "source": {"mode": "manual"}})

    refused_files(
        wf_files(tasks), file="tasks.json", field="tasks[0].inputs[0].source.mode", words='"ui"'
    )


def test_source_field_that_does_not_belong_to_its_mode_is_refused() -> None:
    tasks = wf_with(0, {"key": "image", "source": {"mode": "ui", "fixed_value": 3}})

    refused_files(
        wf_files(tasks),
        file="tasks.json",
        field="tasks[0].inputs[0].source.fixed_value",
        words="is not a known field",
    )


def test_input_listed_twice_for_one_task_is_refused() -> None:
    tasks = wf_with(1, {"key": "image", "source": {"mode": "ui"}}, number=1)

    refused_files(
        wf_files(tasks), file="tasks.json", field="tasks[1].inputs[1].key", words="listed twice"
    )


def resolve_refused(tasks: dict[str, Any], *, field: str, words: str) -> InvalidPackage:
    pkg = parse(wf_files(tasks))
    return refused(
        lambda: resolve_workflow(pkg, Finder(installed())),
        file="tasks.json",
        field=field,
        words=words,
    )


def test_resolve_refuses_a_task_type_that_is_not_installed() -> None:
    tasks = wf_tasks()
    tasks["tasks"][1]["task_type"]["version"] = "3.0.0.0"

    resolve_refused(
        tasks,
        field="tasks[1].task_type",
        words='task type "Lab.Threshold" (version 3.0.0.0) is not installed',
    )


def test_resolve_refuses_an_input_the_interface_does_not_have() -> None:
    tasks = wf_with(1, {"key": "colour", "source": {"mode": "ui"}}, number=1)

    resolve_refused(tasks, field="tasks[1].inputs[1].key", words='has no input "colour"')


def test_resolve_refuses_a_mode_the_input_does_not_support() -> None:
    tasks = wf_with(1, {"key": "image", "source": {"mode": "fixed", "fixed_value": None}})

    resolve_refused(tasks, field="tasks[1].inputs[0].source.mode", words="use one of output, ui")


@pytest.mark.parametrize(("value", "words"), [("7", "must be a whole number"), (11, "at most 10")])
def test_resolve_refuses_a_fixed_value_that_does_not_fit(value: Any, words: str) -> None:
    tasks = wf_with(1, {"key": "level", "source": {"mode": "fixed", "fixed_value": value}}, 1)

    resolve_refused(tasks, field="tasks[1].inputs[1].source.fixed_value", words=words)


def test_resolve_refuses_an_output_the_upstream_task_does_not_have() -> None:
    tasks = wf_with(2, {"key": "mask", "source": {"mode": "output", "task": 1, "key": "masks"}})

    resolve_refused(tasks, field="tasks[2].inputs[0].source.key", words='has no output "masks"')


def test_resolve_refuses_an_output_of_another_type() -> None:
    tasks = wf_with(2, {"key": "mask", "source": {"mode": "output", "task": 1, "key": "count"}})

    resolve_refused(
        tasks, field="tasks[2].inputs[0].source.key", words='is Int, but input "mask" needs Image'
    )


def summary_task(kind_name: str = "Lab.Summary") -> dict[str, Any]:
    return {
        "name": "Summary",
        "task_type": {"name": kind_name},
        "inputs": [{"key": "counts", "source": {"mode": "output", "task": 1, "key": "count"}}],
    }


def test_resolve_lets_a_reduce_task_take_a_list_of_an_output() -> None:
    tasks = wf_tasks()
    tasks["tasks"].append(summary_task())

    resolved = resolve_workflow(parse(wf_files(tasks)), Finder(installed()))

    assert resolved[3][0].inputs == (TaskInput(key="counts", source=output("Threshold", "count")),)


def test_resolve_refuses_a_list_input_from_a_single_output_outside_reduce() -> None:
    task_types = [t for t in installed() if t.name != "Lab.Summary"]
    summary = task_type(
        "Lab.Summary", "1.0.0.0", inputs=(param("counts", "List[Int]"),), kind="processing"
    )
    tasks = wf_tasks()
    tasks["tasks"].append(summary_task())
    pkg = parse(wf_files(tasks))

    refused(
        lambda: resolve_workflow(pkg, Finder([*task_types, summary])),
        file="tasks.json",
        field="tasks[3].inputs[0].source.key",
        words="needs List[Int]",
    )


def test_resolve_refuses_tasks_that_use_each_other_in_a_cycle() -> None:
    def task(name: str, upstream: str) -> WorkflowTaskSpec:
        inputs = (TaskInput(key="image", source=output(upstream, "mask")),)
        return WorkflowTaskSpec(name=name, task_type_name="Lab.Threshold", inputs=inputs)

    pkg = WorkflowPackage(name="Loop", version="1.0.0.0", tasks=(task("A", "B"), task("B", "A")))

    refused(
        lambda: resolve_workflow(pkg, Finder(installed())),
        file="tasks.json",
        field="tasks[0].inputs",
        words="in a cycle (A -> B -> A)",
    )


def test_resolve_refuses_an_output_source_naming_an_unknown_task() -> None:
    inputs = (TaskInput(key="image", source=output("Nowhere", "mask")),)
    spec = WorkflowTaskSpec(name="A", task_type_name="Lab.Threshold", inputs=inputs)
    pkg = WorkflowPackage(name="Lost", version="1.0.0.0", tasks=(spec,))

    refused(
        lambda: resolve_workflow(pkg, Finder(installed())),
        file="tasks.json",
        field="tasks[0].inputs[0].source.task",
        words='names task "Nowhere", which is not in the workflow',
    )


# -- export -----------------------------------------------------------------------------------


def test_exported_workflow_package_loads_back_unchanged(tmp_path: Path) -> None:
    resolved = resolve_workflow(parse(wf_files()), Finder(installed()))
    tasks = [(spec.name, tt, spec.inputs) for spec, tt in resolved]
    path = tmp_path / "bone.xfp"

    path.write_bytes(workflow_package_bytes("Bone study", "1.0.0.0", "# Notes", tasks))

    assert load_package(path) == WorkflowPackage(
        name="Bone study",
        version="1.0.0.0",
        remarks="# Notes",
        tasks=tuple(spec for spec, _ in resolved),
        documentation=Documentation(remarks="# Notes"),
    )
    tasks_json = json.loads(zipfile.ZipFile(path).read("tasks.json"))
    assert tasks_json["tasks"][2]["inputs"][0]["source"] == {
        "mode": "output",
        "task": 1,
        "key": "mask",
    }


def test_export_puts_upstream_tasks_before_the_tasks_that_use_them() -> None:
    finder = Finder(installed())
    select, stats = finder("XF.Data.SelectImage", None), finder("Lab.Statistics", None)
    assert select is not None and stats is not None
    late = (TaskInput(key="mask", source=output("Select", "image")),)

    data = workflow_package_bytes(
        "W", "1.0.0.0", "", [("Stats", stats, late), ("Select", select, ())]
    )

    pkg = load_package_bytes(data)
    assert [t.name for t in pkg.tasks] == ["Select", "Stats"]


def test_export_refuses_a_source_naming_a_task_that_is_not_exported() -> None:
    stats = Finder(installed())("Lab.Statistics", None)
    assert stats is not None
    inputs = (TaskInput(key="mask", source=output("Gone", "mask")),)

    refused(
        lambda: workflow_package_bytes("W", "1.0.0.0", "", [("Stats", stats, inputs)]),
        file="tasks.json",
        field="tasks",
        words='tasks "Stats" use outputs of tasks that are missing',
    )


def test_export_refuses_an_invalid_workflow_name() -> None:
    refused(
        lambda: workflow_package_bytes("", "1.0.0.0", "", []),
        file="metadata.json",
        field="name",
        words="1 to 200 characters",
    )


def load_package_bytes(data: bytes) -> WorkflowPackage:
    pkg = parse_package(read_package_bytes(data, "export.xfp"))
    assert isinstance(pkg, WorkflowPackage)
    return pkg


def test_every_schema_is_a_valid_draft_2020_12_schema() -> None:
    for schema in schemas.ALL:
        check_schema(schema)


# -- XamFlow's documented metadata.json fields ------------------------------------------------

CITATION = 'cff-version: 1.2.0\ntitle: "Threshold"\nauthors:\n  - family-names: Lab\n'
AUTHOR = {"name": "Ada Lab", "email": "ada@lab.org", "website": "https://lab.org/ada"}


def documented(**changes: Any) -> dict[str, Any]:
    """Every optional field XamFlow documents for metadata.json."""
    base = {
        "display_name": "Threshold (Otsu)",
        "summary": "Binarises an image.",
        "description_filename": "docs/description.md",
        "citation_cff_filename": "CITATION.cff",
        "remarks": "Written for the *bone* study.",
        "author": AUTHOR,
        "dependencies": [{"name": "Core.Python.numpy", "version": "1.0.0.0"}],
    }
    return changed(base, changes)


def documented_files(**changes: Any) -> dict[str, Any]:
    return tt_files(
        tt_metadata(**documented(**changes)),
        **{
            "docs/description.md": "# Threshold\n\nSplits **bone** from background.\n",
            "CITATION.cff": CITATION,
            "readme.txt": "Threshold\r\n=========\r\n",
        },
    )


def test_task_type_with_every_documented_metadata_field_loads_its_documentation() -> None:
    pkg = parse(documented_files())

    assert isinstance(pkg, TaskTypePackage)
    assert pkg.task_type.author == "Ada Lab"
    assert pkg.task_type.dependencies == (Dependency(name="Core.Python.numpy", version="1.0.0.0"),)
    assert pkg.documentation == Documentation(
        remarks="Written for the *bone* study.",
        author=Author(name="Ada Lab", email="ada@lab.org", website="https://lab.org/ada"),
        description=DocumentFile(
            filename="docs/description.md",
            text="# Threshold\n\nSplits **bone** from background.\n",
        ),
        citation_cff=DocumentFile(filename="CITATION.cff", text=CITATION),
        readme=DocumentFile(filename="readme.txt", text="Threshold\n=========\n"),
    )


@pytest.mark.parametrize("package_format", ["XFP-TT1.0", "XFP-WF1.0", "XFP-DEP1.0"])
def test_every_package_format_accepts_every_documented_metadata_field(package_format: str) -> None:
    files = documented_files()
    metadata = {"package_format": package_format, "name": "Lab.Threshold", "version": "1.0.0.0"}
    files["metadata.json"] = encode(metadata | documented())
    if package_format == "XFP-WF1.0":
        files["tasks.json"] = encode({"tasks": []})

    pkg = parse(files)

    assert pkg.documentation.author.email == "ada@lab.org"
    assert pkg.documentation.description is not None
    assert pkg.documentation.citation_cff == DocumentFile(filename="CITATION.cff", text=CITATION)
    assert pkg.documentation.remarks == "Written for the *bone* study."


def test_a_plain_string_author_keeps_working() -> None:
    pkg = parse(tt_files())

    assert pkg.task_type.author == "Lab"
    assert pkg.documentation == Documentation(author=Author(name="Lab"))


def test_an_author_object_with_a_field_xamflow_does_not_document_is_refused() -> None:
    files = documented_files(author=AUTHOR | {"phone": "123"})

    error = refused_files(
        files, file="metadata.json", field="author.phone", words="is not a known field"
    )
    assert "name, email, website" in error.message


def test_an_author_that_is_neither_a_name_nor_an_object_is_refused() -> None:
    files = documented_files(author=["Ada"])

    refused_files(
        files, file="metadata.json", field="author", words="must be a string or an object"
    )


@pytest.mark.parametrize(
    "field", ["description_filename", "citation_cff_filename"], ids=["description", "citation"]
)
def test_a_documentation_file_missing_from_the_package_is_refused_naming_the_field(
    field: str,
) -> None:
    files = documented_files(**{field: "docs/missing.md"})

    refused_files(
        files, file="metadata.json", field=field, words='"docs/missing.md", which is not in the'
    )


@pytest.mark.parametrize("name", ["../README.md", "/etc/passwd", "docs\\description.md", "a//b"])
@pytest.mark.parametrize(
    "field", ["description_filename", "citation_cff_filename"], ids=["description", "citation"]
)
def test_a_documentation_file_outside_the_package_is_refused_naming_the_field(
    field: str, name: str
) -> None:
    files = documented_files(**{field: name})

    refused_files(files, file="metadata.json", field=field, words="relative to the package")


def test_an_empty_documentation_file_name_is_refused() -> None:
    files = documented_files(description_filename="")

    refused_files(
        files, file="metadata.json", field="description_filename", words="the path of a file"
    )


def test_a_documentation_file_that_is_not_text_is_refused() -> None:
    files = documented_files() | {"docs/description.md": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"}

    refused_files(
        files, file="metadata.json", field="description_filename", words="is not a text file"
    )


def test_a_documentation_file_larger_than_1_mib_is_refused() -> None:
    files = documented_files() | {"CITATION.cff": b"x" * (documentation.MAX_DOCUMENT_BYTES + 1)}

    refused_files(files, file="metadata.json", field="citation_cff_filename", words="1 MiB")


def test_documentation_text_in_utf16_or_windows_1252_is_read() -> None:
    assert documentation.document_text("Ångström\r\n".encode("utf-16")) == "Ångström\n"
    assert documentation.document_text("Ångström µm".encode("cp1252")) == "Ångström µm"
    assert documentation.document_text(b"\xef\xbb\xbfWith a BOM") == "With a BOM"


def test_a_readme_in_any_case_is_found_and_not_repeated_when_it_is_the_description() -> None:
    readme_md = documented_files(description_filename=DROP) | {"README.MD": "# Read me"}
    del readme_md["readme.txt"]
    as_description = documented_files(description_filename="readme.txt")

    assert parse(readme_md).documentation.readme == DocumentFile(
        filename="README.MD", text="# Read me"
    )
    assert parse(as_description).documentation.description == DocumentFile(
        filename="readme.txt", text="Threshold\n=========\n"
    )
    assert parse(as_description).documentation.readme is None


@pytest.mark.parametrize("display_name", ["L" * 51, "Two\nlines", "Trailing break\n"])
def test_a_display_name_longer_than_50_characters_or_of_several_lines_is_refused(
    display_name: str,
) -> None:
    files = tt_files(tt_metadata(display_name=display_name))

    refused_files(files, file="metadata.json", field="display_name", words="one line of at most 50")


def test_a_display_name_of_50_characters_loads() -> None:
    assert parse(tt_files(tt_metadata(display_name="D" * 50))).task_type.display_name == "D" * 50


def test_an_installed_folder_reads_back_the_documentation_its_import_checked(
    tmp_path: Path,
) -> None:
    files = documented_files()
    folder = write_folder(tmp_path / "installed", files)

    assert read_documentation(folder) == parse(files).documentation


def test_an_installed_folder_missing_its_files_reads_what_is_left(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "installed", documented_files())
    (folder / "CITATION.cff").unlink()
    (folder / "docs" / "description.md").unlink()

    found = read_documentation(folder)

    assert (found.description, found.citation_cff) == (None, None)
    assert found.readme is not None and found.remarks.startswith("Written")
    assert read_documentation(tmp_path / "nowhere") == Documentation()


# -- XamFlow's parameter types (Core.Type.Base) ------------------------------------------------

CORE_TYPE_BASE = [
    "Bitmap",
    "ChartReport",
    "ChartReportConfig",
    "Contours",
    "CSV",
    "Entity",
    "ForeignFile",
    "GIResult",
    "HTMLDocument",
    "Image",
    "ImagePairList",
    "ImageVOI",
    "Mesh",
]
BITMAP = {
    "type": "Bitmap",
    "source": "filestore",
    "file_id": "f1",
    "filename": "slice.png",
    "size": 1234,
    "sha256": "0" * 64,
}


def test_an_interface_without_kind_is_a_processing_task() -> None:
    tt = parse(tt_files(interface=tt_interface(kind=DROP))).task_type

    assert tt.interface.kind == "processing"


@pytest.mark.parametrize("type_name", CORE_TYPE_BASE)
def test_core_type_base_types_load_as_inputs_outputs_and_reduce_lists(type_name: str) -> None:
    interface = tt_interface(
        kind="reduce",
        inputs=[{"key": "many", "type": f"List[{type_name}]"}, {"key": "one", "type": type_name}],
        outputs=[{"key": "result", "type": type_name}],
    )

    tt = parse(tt_files(interface=interface)).task_type

    assert [p.type for p in tt.interface.inputs] == [f"List[{type_name}]", type_name]
    assert tt.interface.outputs[0].type == type_name


def test_every_type_is_named_when_a_type_is_unknown() -> None:
    error = refused_files(
        tt_files(interface=with_input(0, type="Picture")),
        file="interface.json",
        field="inputs[0].type",
        words="a parameter type",
    )
    for type_name in [*CORE_TYPE_BASE, "Int", "Float", "String", "Bool", "Folder"]:
        assert type_name in error.message


@pytest.mark.parametrize(
    ("type_name", "value"),
    [
        ("Bitmap", BITMAP),
        ("ChartReport", {"title": "Density", "series": [{"x": [1, 2], "y": [3, 4]}]}),
        ("ImageVOI", {"image": {"type": "Image"}, "origin": [0, 0, 0], "size": [4, 4, 4]}),
        ("List[Bitmap]", [BITMAP, BITMAP]),
        ("Mesh", None),
    ],
)
def test_composite_values_are_json_objects(type_name: str, value: Any) -> None:
    assert check_value(param("v", type_name), value) is None


@pytest.mark.parametrize(("type_name", "value"), [("Bitmap", "slice.png"), ("GIResult", 3)])
def test_a_composite_type_refuses_a_plain_value(type_name: str, value: Any) -> None:
    assert "an object or null" in (check_value(param("v", type_name), value) or "")


@pytest.mark.parametrize(
    ("output_type", "input_type", "kind", "connected"),
    [
        ("Bitmap", "Bitmap", "processing", True),
        ("Bitmap", "Image", "processing", False),
        ("CSV", "ForeignFile", "processing", False),
        ("Mesh", "List[Mesh]", "reduce", True),
        ("Mesh", "List[Mesh]", "processing", False),
        ("ChartReport", "List[ChartReportConfig]", "reduce", False),
    ],
)
def test_an_output_feeds_an_input_of_its_own_type_or_a_reduce_list_of_it(
    output_type: str, input_type: str, kind: str, connected: bool
) -> None:
    assert parameters.connects(output_type, input_type, kind) is connected


def test_resolve_connects_core_type_base_outputs_and_refuses_another_type() -> None:
    render = task_type("Lab.Render", "1.0.0.0", outputs=(param("picture", "Bitmap"),))
    report = task_type(
        "Lab.Report", "1.0.0.0", inputs=(param("pictures", "List[Bitmap]"),), kind="reduce"
    )
    mesh = task_type("Lab.Mesh", "1.0.0.0", inputs=(param("surface", "Mesh"),))
    finder = Finder([render, report, mesh])

    def tasks(consumer: str, key: str) -> dict[str, Any]:
        source = {"mode": "output", "task": 0, "key": "picture"}
        return {
            "tasks": [
                {"name": "Render", "task_type": {"name": "Lab.Render"}},
                {
                    "name": "Use",
                    "task_type": {"name": consumer},
                    "inputs": [{"key": key, "source": source}],
                },
            ]
        }

    resolved = resolve_workflow(parse(wf_files(tasks("Lab.Report", "pictures"))), finder)
    assert resolved[1][0].inputs[0].source == output("Render", "picture")
    refused(
        lambda: resolve_workflow(parse(wf_files(tasks("Lab.Mesh", "surface"))), finder),
        file="tasks.json",
        field="tasks[1].inputs[0].source.key",
        words='is Bitmap, but input "surface" needs Mesh',
    )


# -- export keeps the documented fields -------------------------------------------------------


def test_an_exported_workflow_keeps_its_documented_metadata_fields_and_files() -> None:
    files = wf_files(**documented()) | {
        "docs/description.md": "# Bone study\n",
        "CITATION.cff": CITATION,
        "README.txt": "read me\n",
    }
    pkg = parse(files)
    resolved = resolve_workflow(pkg, Finder(installed()))

    data = workflow_package_bytes(
        pkg.name,
        pkg.version,
        pkg.remarks,
        [(spec.name, tt, spec.inputs) for spec, tt in resolved],
        display_name=pkg.display_name,
        summary=pkg.summary,
        dependencies=pkg.dependencies,
        documentation=pkg.documentation,
    )

    again = load_package_bytes(data)
    assert again.documentation == pkg.documentation
    assert (again.display_name, again.summary, again.author, again.dependencies) == (
        "Threshold (Otsu)",
        "Binarises an image.",
        "Ada Lab",
        pkg.dependencies,
    )
    assert json.loads(zipfile.ZipFile(io.BytesIO(data)).read("metadata.json"))["author"] == AUTHOR


def test_an_exported_workflow_writes_a_plain_author_as_a_name() -> None:
    data = workflow_package_bytes(
        "W", "1.0.0.0", "", [], documentation=Documentation(author=Author(name="Lab"))
    )

    assert json.loads(zipfile.ZipFile(io.BytesIO(data)).read("metadata.json"))["author"] == "Lab"
