"""Acceptance: ``runyard demo --exit`` (the README's first command) in an empty folder makes
its synthetic scans, runs both demo workflows on a real server and local worker, and writes
study tables with one row per scan whose numbers are those of the phantoms; run again in the
same folder, it shows the same study without searching again."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import pytest

from tests.acceptance.conftest import RUNYARD, clean_env

VOXEL_MM3 = 0.02**3


def demo(folder: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*RUNYARD, "demo", "--dir", str(folder), "--exit", "--port", "0"],
        env=clean_env({"COLUMNS": "120"}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return result


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_the_demo_writes_one_row_per_scan_with_the_phantoms_numbers(tmp_path: Path) -> None:
    folder = tmp_path / "runyard-demo"
    first = demo(folder)
    truth = rows(folder / "userdata" / "phantoms.csv")
    assert len(truth) == 36 and {t["format"] for t in truth} == {
        "AIM v020", "AIM v030", "ISQ", "OMNI", "AIM v020 + _SEG.AIM",
    }  # fmt: skip
    assert any(t["run"].endswith(".ISQ;1") for t in truth)
    for table, where in (("scans.csv", "scans"), ("pairs.csv", "pairs")):
        expected = [t for t in truth if t["folder"] == where]
        found = rows(folder / table)
        assert [r["run"] for r in found] == [t["run"] for t in expected]  # one per scan, in order
        assert list(found[0]) == ["run", "TV_mm3", "BV_mm3", "BV_TV", "mean", "min", "max", "unit"]
        for row, phantom in zip(found, expected, strict=True):
            x, y, z = (int(n) for n in phantom["size"].split("x"))
            assert float(row["TV_mm3"]) == pytest.approx(x * y * z * VOXEL_MM3, rel=1e-5)
            assert float(row["BV_TV"]) == pytest.approx(float(phantom["BV_TV"]), abs=1e-3)
            assert float(row["BV_mm3"]) == pytest.approx(
                float(row["BV_TV"]) * float(row["TV_mm3"]), rel=1e-6
            )
            # Tissue of 50 and bone of 900 mg HA/ccm, with noise.
            assert -400 < float(row["min"]) < 50 < float(row["mean"]) < 900 < float(row["max"])
            assert row["unit"] == "mg HA/ccm"
        assert f"CSV: {folder / table}" in first.stdout
    assert "Web UI: http://127.0.0.1:" in first.stdout and "/ui/" in first.stdout
    assert "Made 36 synthetic scans" in first.stdout

    tables = {name: (folder / name).read_text() for name in ("scans.csv", "pairs.csv")}
    again = demo(folder)
    assert "Using the scans made before" in again.stdout
    assert {name: (folder / name).read_text() for name in tables} == tables
