"""A working folder hands out new paths that never collide (runyard.task.workdir, the base of
XamFlow's TemporaryWorkingDirectory)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runyard.task.workdir import WorkingDirectory, related_name


@pytest.mark.parametrize(
    ("path", "postfix", "name"),
    [
        ("/x/scan.aim", "_seg.omni", "scan_seg.omni"),
        (Path("/data/SCAN.ISQ;1"), ".omni", "SCAN.omni"),
        ("/Scans/s1/image.tar.gz", "_x", "image.tar_x"),
        ("C:\\scans\\scan.aim", ".csv", "scan.csv"),
        ("noext", "_seg.omni", "noext_seg.omni"),
    ],
)
def test_a_related_name_is_the_stem_plus_the_postfix(path: str, postfix: str, name: str) -> None:
    assert related_name(path, postfix) == name


def test_paths_handed_out_are_new_even_before_they_are_written(tmp_path: Path) -> None:
    work = WorkingDirectory(tmp_path)
    first = work.create_related_path("/Scans/SCAN.AIM;1", "_seg.omni")
    second = work.create_related_path("/other/SCAN.ISQ", "_seg.omni")
    assert (first.name, second.name) == ("SCAN_seg.omni", "SCAN_seg_2.omni")
    (tmp_path / "table.csv").write_text("x")
    assert work.create_temp_path("table.csv") == tmp_path / "table_2.csv", "on disk: taken"
    assert not any(p.name.startswith("SCAN") for p in tmp_path.iterdir()), "nothing created"


def test_new_paths_go_into_a_subdir_within_its_block(tmp_path: Path) -> None:
    work = WorkingDirectory(tmp_path)
    with work.subdir("segmentations") as sub:
        assert sub == tmp_path / "segmenta" and sub.is_dir(), "cut to max_name_len=8"
        assert work.create_temp_path("a.png") == sub / "a.png"
        with work.subdir("x", max_name_len=1) as inner:
            assert work.create_temp_path("a.png") == inner / "a.png" == sub / "x" / "a.png"
        assert work.create_temp_path("b.png") == sub / "b.png"
    with work.subdir("segmentations") as again:
        assert again == tmp_path / "segmenta_2", "a second subdir of the same name is new"
    assert work.create_temp_path("a.png") == tmp_path / "a.png"


def test_is_under_resolves_dots_and_symlinks(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    work = WorkingDirectory(tmp_path / "work")
    (tmp_path / "work" / "out").symlink_to(tmp_path)
    assert work.is_under(tmp_path / "work" / "a" / "b")
    assert work.is_under(tmp_path / "work")
    assert not work.is_under(tmp_path / "work" / ".." / "x")
    assert not work.is_under(tmp_path / "work" / "out" / "x"), "a symlink out is outside"


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a\\b", "a\0"])
def test_bad_names_are_refused(tmp_path: Path, name: str) -> None:
    work = WorkingDirectory(tmp_path)
    with pytest.raises(ValueError, match="plain file name"):
        work.create_temp_path(name)
    with pytest.raises(ValueError, match="postfix"):
        work.create_related_path("a.aim", "/x")


def test_a_created_working_directory_is_fresh_and_removed_whole(tmp_path: Path) -> None:
    one = WorkingDirectory.create("job-", parent=tmp_path)
    two = WorkingDirectory.create("job-", parent=tmp_path)
    assert one.path != two.path and one.path.name.startswith("job-")
    (one.path / "f").write_text("x")
    one.remove()
    assert not one.path.exists() and two.path.is_dir()
