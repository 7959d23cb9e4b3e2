"""How the built-in search (Lucid.Util.SearchFolderFilesBySuffix) groups the files it finds."""

from __future__ import annotations

import pytest

from runyard.builtin.search import FoundFile, SearchError, find_groups, parse_suffixes

PATHS = [
    "/Scans/top.txt",
    "/Scans/s1/A_SCAN.AIM",
    "/Scans/s1/a_seg.aim",
    "/Scans/s1/B_SCAN.AIM",  # incomplete: no B_SEG
    "/Scans/s1/deep/C_scan.Aim",
    "/Scans/s1/deep/C_SEG.AIM",
    "/Scans/s2/SCAN.AIM",
    "/Scans/s2/SEG.AIM",
    "/Scans/s3/SCAN.AIM",  # incomplete: no SEG in s3
    "/Scans/s4/C0007_SCAN.ISQ;1",
    "/Scans/s4/C0007_SEG.ISQ;1",
]
FILES = [FoundFile(p.rsplit("/", 1)[1], p) for p in PATHS]


def groups(suffixes: str, mode: str) -> list[tuple[str, list[str]]]:
    logged: list[str] = []
    found = find_groups(FILES, parse_suffixes(suffixes, mode), mode, logged.append)
    return [(g.name, [f.virtualpath for f in g.files]) for g in found]


def test_standalone_is_one_run_per_file_with_any_suffix_in_any_case() -> None:
    assert [name for name, _ in groups(".aim|.txt", "standalone")] == [
        "top.txt",
        "A_SCAN.AIM",
        "a_seg.aim",
        "B_SCAN.AIM",
        "C_scan.Aim",
        "C_SEG.AIM",
        "SCAN.AIM",
        "SEG.AIM",
        "SCAN.AIM",
    ]


def test_filename_mode_groups_by_name_stem_and_skips_incomplete_groups() -> None:
    assert groups("_scan.aim|_seg.aim", "filename") == [
        ("A", ["/Scans/s1/A_SCAN.AIM", "/Scans/s1/a_seg.aim"]),
        ("C", ["/Scans/s1/deep/C_scan.Aim", "/Scans/s1/deep/C_SEG.AIM"]),
    ]


def test_dirname_mode_groups_files_of_one_folder_and_names_the_run_after_it() -> None:
    assert groups("SCAN.AIM|SEG.AIM", "dirname") == [
        ("/Scans/s1/", ["/Scans/s1/A_SCAN.AIM", "/Scans/s1/a_seg.aim"]),
        ("/Scans/s1/deep/", ["/Scans/s1/deep/C_scan.Aim", "/Scans/s1/deep/C_SEG.AIM"]),
        ("/Scans/s2/", ["/Scans/s2/SCAN.AIM", "/Scans/s2/SEG.AIM"]),
    ]


def test_suffix_regex_uses_groups_in_the_later_suffixes() -> None:
    assert groups(r"C(\d+)_SCAN\.ISQ(;\d+)?|C\1_SEG.ISQ\2", "suffix_regex") == [
        ("0007", ["/Scans/s4/C0007_SCAN.ISQ;1", "/Scans/s4/C0007_SEG.ISQ;1"]),
    ]
    assert groups(r"(?P<run>C\d+)_SCAN\.ISQ;1|\g<run>_SEG.ISQ;1", "suffix_regex") == [
        ("C0007", ["/Scans/s4/C0007_SCAN.ISQ;1", "/Scans/s4/C0007_SEG.ISQ;1"]),
    ]
    assert groups(r"_(S)CAN\.AIM|_\1EG.AIM", "suffix_regex") == [
        ("A", ["/Scans/s1/A_SCAN.AIM", "/Scans/s1/a_seg.aim"]),
        ("C", ["/Scans/s1/deep/C_scan.Aim", "/Scans/s1/deep/C_SEG.AIM"]),
    ]


@pytest.mark.parametrize(
    ("suffixes", "mode", "message"),
    [
        (".AIM||.ISQ", "filename", "has an empty suffix"),
        ("", "standalone", "has an empty suffix"),
        ("(unclosed|x", "suffix_regex", "is not a regular expression"),
        (".AIM", "bydate", "unknown mode 'bydate'"),
    ],
)
def test_bad_suffixes_and_modes_are_refused(suffixes: str, mode: str, message: str) -> None:
    with pytest.raises(SearchError, match=message):
        parse_suffixes(suffixes, mode)


def test_a_template_referring_to_a_missing_group_is_refused() -> None:
    with pytest.raises(SearchError, match="does not fit"):
        groups(r"C(\d+)_SCAN\.ISQ;1|C\2_SEG.ISQ;1", "suffix_regex")
