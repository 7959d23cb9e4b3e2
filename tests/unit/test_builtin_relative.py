"""How the built-in Lucid.Util.RelativeUserDataImage reads its template and finds the image:
placeholders, '..' and the mapped root, OpenVMS-style names; against a fake User Data
server in memory (the real one: tests/acceptance/test_relative_image.py)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from runyard.builtin import relative
from runyard.builtin.relative import (
    PLACEHOLDERS,
    RelativeImageError,
    check_format,
    expand,
    find,
    match_file,
    match_folder,
    relative_image,
    resolve,
)
from runyard.client import RemoteError
from runyard.task import userdata

SCAN = "/Scans/2026/P01/C0001_SCAN.ISQ;1"


def test_each_placeholder_gives_the_documented_part_of_the_input_path() -> None:
    for key, value in PLACEHOLDERS.items():
        assert expand(f"{{{key}}}", SCAN) == value, key
    assert expand("{parent3}", SCAN) == "Scans"
    assert expand("{stem}", "/Scans/a/scan.v2.omni") == "scan.v2"
    assert expand("{suffix}|{version}", "/Scans/a/NOTES") == "|"


def test_placeholders_mix_with_fixed_text_and_literal_braces() -> None:
    template = "{folder}../Segmentations/{parent}/{stem}_SEG.AIM{version}"
    assert expand(template, SCAN) == "/Scans/2026/P01/../Segmentations/P01/C0001_SCAN_SEG.AIM;1"
    assert expand("{{x}}_{name}", SCAN) == "{x}_C0001_SCAN.ISQ;1"


def test_placeholders_are_sliced_like_python_strings() -> None:
    assert expand("{stem[:-5]}_SEG.AIM", SCAN) == "C0001_SEG.AIM"
    assert expand("{stem[1:5]}|{stem[0]}|{stem[-1]}|{stem[:]}", SCAN) == "0001|C|N|C0001_SCAN"
    assert expand("{parent2[2:]}", SCAN) == "26"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{folder}{sample}.AIM", r"unknown placeholder \{sample\}; use \{folder\}, \{name\}"),
        ("{Stem}.AIM", r"unknown placeholder \{Stem\}"),
        ("{}.AIM", r"unknown placeholder \{\}"),
        ("{stem.upper}.AIM", r"unknown placeholder \{stem.upper\}"),
        ("{stem2}.AIM", r"unknown placeholder \{stem2\}"),
        ("{stem:>9}.AIM", "placeholders take no format or conversion"),
        ("{stem!r}.AIM", "placeholders take no format or conversion"),
        ("{folder}{stem.AIM", "is malformed"),
        ("{folder}stem}.AIM", "is malformed"),
        ("{stem[a:b]}.AIM", r"\[a:b\] is not a slice"),
        ("{stem[]}.AIM", r"\[\] is not a slice"),
        ("{stem[20]}.AIM", "has no character 20"),
        ("{parent5}/x.AIM", "names the folder 5 levels up, but .* lies in 3 folders"),
    ],
)
def test_bad_templates_are_refused_with_the_reason(template: str, message: str) -> None:
    with pytest.raises(RelativeImageError, match=message):
        expand(template, SCAN)


def test_a_template_not_starting_with_a_slash_is_relative_to_the_input_folder() -> None:
    target = resolve("C0001_SEG.AIM", "/Scans/P01/")
    assert (target.path, target.top, target.climbs) == (
        "/Scans/P01/C0001_SEG.AIM",
        "/Scans/P01/",
        False,
    )
    assert resolve("sub/./x.aim", "/Scans/P01/").path == "/Scans/P01/sub/x.aim"
    assert resolve("/Results//x.aim", "/Scans/P01/").path == "/Results/x.aim"


def test_dot_dot_is_resolved_and_the_highest_folder_it_reaches_is_kept() -> None:
    target = resolve("/Scans/2026/P01/../../Segs/P01/x.aim", "/ignored/")
    assert (target.path, target.top, target.climbs) == ("/Scans/Segs/P01/x.aim", "/Scans/", True)
    assert resolve("../a/../../b/x.aim", "/Scans/2026/P01/").top == "/Scans/"
    assert resolve("../../../x.aim", "/Scans/2026/P01/").top == "/"


@pytest.mark.parametrize(
    ("expanded", "message"),
    [
        ("../../../../x.aim", "climbs above / with '..', out of the mapped User Data roots"),
        ("Segs/", "names a folder, not a file"),
        ("Segs/..", "names a folder, not a file"),
        ("a\\b.aim", "contains a backslash"),
        ("%2e%2e/x.aim", "is '.' or '..'"),
    ],
)
def test_a_result_that_is_no_file_path_is_refused(expanded: str, message: str) -> None:
    with pytest.raises(RelativeImageError, match=message):
        resolve(expanded, "/Scans/2026/P01/")


@pytest.mark.parametrize(
    "path", ["/S/a.AIM", "/S/a.aim;1", "/S/b.ISQ;12", "/S/c.isq", "/S/d.omni", "/S/e.OMNI;"]
)
def test_omni_aim_and_isq_names_are_images_in_any_case_and_version(path: str) -> None:
    check_format(path)


@pytest.mark.parametrize("path", ["/S/a.txt", "/S/a.raw", "/S/a.AIM.gz", "/S/AIM", "/S/a.ISQ;x"])
def test_other_names_are_refused_as_not_an_image(path: str) -> None:
    with pytest.raises(RelativeImageError, match="is not an OMNI, AIM or ISQ image"):
        check_format(path)


def test_file_names_match_as_openvms_reads_them() -> None:
    names = [
        "A_SEG.AIM;1",
        "A_SEG.AIM;3",
        "a_seg.aim;2",
        "b.isq",
        "B.ISQ",
        "c.Aim",
        "D.AIM",
        "d.aim;1",
    ]
    assert match_file("b.isq", names) == "b.isq"  # the same name wins
    assert match_file("C.AIM", names) == "c.Aim"  # else one that differs by case
    assert match_file("a_seg.AIM", names) == "A_SEG.AIM;3"  # no version: the highest one
    assert match_file("A_SEG.AIM;", names) == "A_SEG.AIM;3"
    assert match_file("a_seg.aim;1", names) == "A_SEG.AIM;1"  # a version: that one
    assert match_file("A_SEG.AIM;02", names) == "a_seg.aim;2"
    assert match_file("D.AIM", names) == "D.AIM"
    assert match_file("d.AIM", names) == "d.aim;1"  # a version beats none
    assert match_file("A_SEG.AIM;4", names) is None
    assert match_file("E.AIM", names) is None


def test_names_that_differ_only_by_case_are_refused_as_ambiguous() -> None:
    with pytest.raises(RelativeImageError, match=r"B.isq is ambiguous: B.ISQ, b.isq differ"):
        match_file("B.isq", ["b.isq", "B.ISQ"])
    with pytest.raises(RelativeImageError, match="folder segs is ambiguous"):
        match_folder("segs", ["SEGS", "Segs"])
    assert match_folder("Segs", ["SEGS", "Segs"]) == "Segs"
    assert match_folder("segs", ["SEGS", "other"]) == "SEGS"


def _lister(paths: list[str]) -> relative.Lister:
    def listing(folder: str) -> tuple[list[str], list[str]] | None:
        below = [p[len(folder) :] for p in paths if p.startswith(folder)]
        if not below:
            return None
        files = sorted(p for p in below if "/" not in p)
        folders = sorted({p.split("/", 1)[0] for p in below if "/" in p})
        return files, folders

    return listing


def test_folders_and_files_are_found_in_any_case() -> None:
    lister = _lister(["/Scans/Segmentations/P01/c0001_seg.aim;1", "/Scans/P01/C0001.ISQ"])
    wanted = "/Scans/segmentations/p01/C0001_SEG.AIM"
    assert find(wanted, lister) == "/Scans/Segmentations/P01/c0001_seg.aim;1"
    assert find("/Scans/P01/C0001.ISQ", lister) == "/Scans/P01/C0001.ISQ"
    assert find("/Scans/segmentations/P02/C0002_SEG.AIM", lister) is None
    assert find("/Scans/Nowhere/x.aim", lister) is None


# -- the whole task against a fake User Data server --------------------------------------------

ROOTS = ("/Lab/Scans/", "/Results/")
SIZES = {
    "/Lab/Scans/2026/P01/C0001.ISQ;1": [6, 5, 4],
    "/Lab/Scans/2026/P01/C0001_SEG.AIM;1": [5, 5, 5],
    "/Lab/Scans/2026/P01/C0001_SEG.AIM;2": [6, 5, 4],
    "/Lab/Scans/2026/Segmentations/P01/c0001_seg.aim": [6, 5, 4],
    "/Lab/Scans/2026/P01/C0001_MASK.omni": [6, 5, 4],
    "/Lab/Scans/2026/P01/C0001_NOTES.TXT": [0],
    "/Results/P01/C0001_TH.AIM": [6, 5, 4],
}
INPUT = {
    "type": "Image",
    "source": "userdata",
    "virtualpath": "/Lab/Scans/2026/P01/C0001.ISQ;1",
    "filename": "C0001.ISQ;1",
    "size": [6, 5, 4],
}


class FakeUserData:
    """The server's side of the User Data calls, over ``SIZES``: tokens only under
    ``ROOTS``, and each call checked against its token's scopes."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def token(self, scopes: list[tuple[str, str]], **_: Any) -> str:
        self.calls.append(f"token {scopes}")
        for _, path in scopes:
            if not path.startswith(ROOTS):
                raise RemoteError(404, "not_found", f"no User Data root covers {path}", {})
        return json.dumps(scopes)

    def list_folder(self, token: str, folder: str, **_: Any) -> userdata.FolderListing:
        self.calls.append(f"list {folder}")
        assert any(op == "list" and folder.startswith(p) for op, p in json.loads(token))
        found = _lister(list(SIZES))(folder)
        if found is None:
            raise RemoteError(404, "not_found", f"no folder {folder} in User Data", {})
        when = datetime(2026, 1, 1, tzinfo=UTC)
        return userdata.FolderListing(
            path=folder,
            files=tuple(userdata.FileItem(name=n, size=1, mtime=when) for n in found[0]),
            folders=tuple(userdata.FolderItem(name=n, virtual_name=n + "/") for n in found[1]),
        )

    def header(self, token: str, path: str, **_: Any) -> dict[str, Any]:
        self.calls.append(f"header {path}")
        assert any(op == "read" and path.startswith(p) for op, p in json.loads(token))
        return {"path": path, "size": SIZES[path]}


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> FakeUserData:
    fake = FakeUserData()
    monkeypatch.setattr(relative.userdata, "userdata_token", fake.token)
    monkeypatch.setattr(relative.userdata, "list_folder", fake.list_folder)
    monkeypatch.setattr(relative.userdata, "image_header", fake.header)
    return fake


def run(template: str, **inputs: Any) -> dict[str, Any]:
    given = inputs or {"input_image": INPUT}
    return relative_image(given | {"template": template}, log=lambda _: None)


def image(path: str) -> dict[str, Any]:
    name = path.rsplit("/", 1)[1]
    return {"type": "Image", "source": "userdata", "virtualpath": path, "filename": name,
            "size": SIZES[path]}  # fmt: skip


def test_the_output_is_the_image_value_with_the_size_from_its_header(
    server: FakeUserData,
) -> None:
    assert run("{folder}{stem}_SEG.AIM;1") == image("/Lab/Scans/2026/P01/C0001_SEG.AIM;1")
    assert server.calls == [
        "token [('list', '/Lab/Scans/2026/P01/'), ('read', '/Lab/Scans/2026/P01/')]",
        "list /Lab/Scans/2026/P01/",
        "header /Lab/Scans/2026/P01/C0001_SEG.AIM;1",
    ]


def test_a_name_without_version_finds_the_highest_version(server: FakeUserData) -> None:
    assert run("{stem}_seg.aim") == image("/Lab/Scans/2026/P01/C0001_SEG.AIM;2")


def test_dot_dot_and_folders_in_another_case_are_followed_within_the_root(
    server: FakeUserData,
) -> None:
    found = run("{folder}../SEGMENTATIONS/{parent}/{stem}_SEG.AIM")
    assert found == image("/Lab/Scans/2026/Segmentations/P01/c0001_seg.aim")
    assert server.calls[0] == "token [('list', '/Lab/Scans/2026/'), ('read', '/Lab/Scans/2026/')]"


def test_a_foreign_file_input_and_an_absolute_template_in_another_root_work(
    server: FakeUserData,
) -> None:
    file = {k: v for k, v in INPUT.items() if k != "size"} | {"type": "ForeignFile"}
    found = run("/Results/{parent}/{stem}_TH.AIM", input_file=file, input_image=None)
    assert found == image("/Results/P01/C0001_TH.AIM")
    folder_form = INPUT | {"virtualpath": "/Lab/Scans/2026/P01/"}
    assert run("{stem}_MASK.omni", input_image=folder_form) == image(
        "/Lab/Scans/2026/P01/C0001_MASK.omni"
    )


@pytest.mark.parametrize(
    "template",
    [
        "{folder}../../../Other/{stem}.AIM",
        "../../../Results/P01/C0001_TH.AIM",
        "/Lab/Other/x.aim/../y.aim",
    ],
)
def test_a_result_that_leaves_the_mapped_root_is_refused(
    server: FakeUserData, template: str
) -> None:
    with pytest.raises(RelativeImageError, match="leaves the mapped User Data root"):
        run(template)
    assert not any(call.startswith(("list", "header")) for call in server.calls)


def test_a_result_under_no_mapped_root_is_refused(server: FakeUserData) -> None:
    with pytest.raises(RelativeImageError, match=r"/Elsewhere/x\.aim lies in no mapped User Data"):
        run("/Elsewhere/x.aim")


def test_a_missing_file_is_refused_naming_the_virtual_path_looked_for(
    server: FakeUserData,
) -> None:
    with pytest.raises(
        RelativeImageError, match=r"not found: /Lab/Scans/2026/P01/C0001_GOBJ.AIM \(looked"
    ):
        run("{folder}{stem}_GOBJ.AIM")
    with pytest.raises(RelativeImageError, match=r"not found: /Lab/Scans/2026/Nowhere/x\.aim"):
        run("../Nowhere/x.aim")


def test_a_format_other_than_omni_aim_isq_is_refused_before_looking(
    server: FakeUserData,
) -> None:
    with pytest.raises(RelativeImageError, match=r"C0001_NOTES\.TXT is not an OMNI, AIM or ISQ"):
        run("{stem}_NOTES.TXT")
    assert server.calls == []


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({}, "connect exactly one of the inputs input_image .* 0 given"),
        ({"input_image": INPUT, "input_file": INPUT}, "2 given"),
        ({"input_image": INPUT | {"source": "filestore"}}, "must be a User Data Image value"),
        ({"input_file": {"source": "userdata"}}, "input_file has no usable virtual path"),
        ({"input_image": INPUT, "template": ""}, "input template must be a path like"),
        ({"input_image": INPUT, "template": None}, "input template must be a path like"),
    ],
)
def test_inputs_that_do_not_fit_are_refused(
    server: FakeUserData, inputs: dict[str, Any], message: str
) -> None:
    with pytest.raises(RelativeImageError, match=message):
        relative_image({"template": "{stem}.AIM"} | inputs)
    assert server.calls == []


def test_the_documented_placeholders_give_what_the_docs_say() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "builtin.md").read_text()
    rows = re.findall(r"^\| `\{(\w+)\}`[^|]* \| [^|]+ \| `([^`]+)`", docs, flags=re.MULTILINE)
    assert [key for key, _ in rows] == list(PLACEHOLDERS)
    for key, example in rows:
        assert expand(f"{{{key}}}", SCAN) == example == PLACEHOLDERS[key]
