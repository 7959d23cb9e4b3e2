"""Synthetic micro-CT scans for ``runyard demo``: small phantoms of "bone" (spheres and rods
of about 900 mg HA/ccm) in soft tissue (about 50 mg HA/ccm), with noise, stored as Scanco
scans do (16-bit raw values with mu scaling and a density calibration), in AIM (v020 and
v030), ISQ (some with a version suffix, ``S02.ISQ;1``) and OMNI files, plus pairs of a scan
and its segmentation (``P01.AIM`` + ``P01_SEG.AIM``, 0 and 127 as Scanco writes them).

``write_demo_data(folder)`` makes the folder once (written beside it and renamed, so that it
is complete or absent) with ``phantoms.csv``, each phantom's true bone volume fraction.
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from runyard.images import Image
from runyard.images.scanco import calibrations
from runyard.images.scanco_writer import write_aim, write_isq

SPACING_MM = 0.02  # 20 um voxels
CALIBRATIONS = calibrations(
    mu_scaling=8192.0,
    density_slope=1603.5,
    density_intercept=-391.2,
    density_unit="mg HA/ccm",
    mu_water=0.2409,
)
BONE_DENSITY, TISSUE_DENSITY, NOISE = 900.0, 50.0, 60.0  # mg HA/ccm
SIZES = (32, 40, 48, 56)
# The formats of single scans, in turn: (label, file name suffix).
FORMATS = (("AIM v020", ".AIM"), ("ISQ", ".ISQ;1"), ("OMNI", ".omni"), ("AIM v030", ".AIM"),
           ("ISQ", ".ISQ"))  # fmt: skip
CREATED = datetime(2026, 1, 15, 9, 30)


@dataclass(frozen=True, kw_only=True)
class Phantom:
    """One synthetic scan: the run the search makes of it, its files, and the truth."""

    run: str  # the run's name: the file name (single scans) or the stem (pairs)
    folder: str  # "scans" or "pairs"
    files: tuple[str, ...]  # paths below the demo folder, the scan first
    format: str
    size: tuple[int, int, int]
    bone_voxels: int

    @property
    def bv_tv(self) -> float:
        return self.bone_voxels / (self.size[0] * self.size[1] * self.size[2])


def phantom_pixels(seed: int, size: tuple[int, int, int]) -> tuple[np.ndarray[Any, Any], Any]:
    """The raw int16 pixels of a phantom and its bone mask (a bool array), from ``seed``."""
    rng = np.random.default_rng(seed)
    x, y, z = np.ogrid[: size[0], : size[1], : size[2]]
    bone = np.zeros(size, dtype=bool)
    for _ in range(int(rng.integers(3, 7))):  # spheres
        r = rng.uniform(2.5, max(3.0, min(size) / 5))
        cx, cy, cz = (rng.uniform(0, n) for n in size)  # partly outside the image, maybe
        bone |= (x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 <= r * r
    for _ in range(int(rng.integers(2, 6))):  # rods along z, y or x
        r = rng.uniform(1.5, 3.5)
        a, b = rng.uniform(0, min(size), 2)
        axis = int(rng.integers(0, 3))
        across = [(y, z), (x, z), (x, y)][axis]
        bone |= (across[0] - a) ** 2 + (across[1] - b) ** 2 <= r * r
    density = np.where(bone, BONE_DENSITY, TISSUE_DENSITY) + rng.normal(0, NOISE, size)
    raw = np.round(CALIBRATIONS[1].to_raw(density)).astype(np.int16)
    return np.asfortranarray(raw), bone


def phantom_image(seed: int, size: tuple[int, int, int]) -> tuple[Image, int]:
    """A phantom as a calibrated image (linear attenuation, density, Hounsfield units;
    density the default, as scanners write it) and its number of bone voxels."""
    raw, bone = phantom_pixels(seed, size)
    image = Image.from_array(
        raw,
        spacing=(SPACING_MM,) * 3,
        calibrations=CALIBRATIONS,
        default_pixel_calibration_unit_type="density",
    )
    return image, int(bone.sum())


def write_scan(folder: Path, index: int) -> Phantom:
    """The ``index``-th single scan (from 1), in the format of its turn."""
    label, suffix = FORMATS[(index - 1) % len(FORMATS)]
    n = SIZES[(index - 1) % len(SIZES)]
    size = (n, n, n - 8 if n > 32 else n)
    image, bone = phantom_image(index, size)
    name = f"S{index:02d}{suffix}"
    path = folder / name
    details = {"Patient Name": f"Phantom S{index:02d}"}
    if label == "AIM v020":
        write_aim(path, image, version=20, log=details, created=CREATED)
    elif label == "AIM v030":
        write_aim(path, image, version=30, log=details, created=CREATED)
    elif label == "ISQ":
        write_isq(path, image, created=CREATED, patient_name=details["Patient Name"])
    else:
        image.save(path)
    files = (name, f"S{index:02d}.raw") if label == "OMNI" else (name,)
    return Phantom(run=name, folder="scans", files=files, format=label, size=size, bone_voxels=bone)


def write_pair(folder: Path, index: int) -> Phantom:
    """The ``index``-th scan with its segmentation (``P01.AIM`` + ``P01_SEG.AIM``)."""
    size = (40, 40, 32)
    seed = 1000 + index
    image, bone_voxels = phantom_image(seed, size)
    _, bone = phantom_pixels(seed, size)
    stem = f"P{index:02d}"
    write_aim(folder / f"{stem}.AIM", image, version=20, created=CREATED)
    segmentation = Image.from_array(
        np.asfortranarray(np.where(bone, 127, 0).astype(np.int8)), spacing=(SPACING_MM,) * 3
    )
    write_aim(folder / f"{stem}_SEG.AIM", segmentation, version=20, created=CREATED)
    files = (f"{stem}.AIM", f"{stem}_SEG.AIM")
    return Phantom(run=stem, folder="pairs", files=files, format="AIM v020 + _SEG.AIM",
                   size=size, bone_voxels=bone_voxels)  # fmt: skip


def write_demo_data(folder: Path, scans: int, pairs: int) -> list[Phantom]:
    """Write ``scans`` single scans into ``folder/scans/`` and ``pairs`` scan and
    segmentation pairs into ``folder/pairs/``, with ``folder/phantoms.csv``. Nothing is
    written if ``folder`` exists; it never exists half-written."""
    if folder.exists():
        return read_phantoms(folder)
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "scans").mkdir(parents=True)
    (staging / "pairs").mkdir()
    found = [write_scan(staging / "scans", i) for i in range(1, scans + 1)]
    found += [write_pair(staging / "pairs", i) for i in range(1, pairs + 1)]
    with (staging / "phantoms.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["run", "folder", "files", "format", "size", "bone_voxels", "BV_TV"])
        for p in found:
            size = "x".join(map(str, p.size))
            row = [p.run, p.folder, " ".join(p.files), p.format, size, p.bone_voxels]
            writer.writerow([*row, f"{p.bv_tv:.6f}"])
    staging.rename(folder)
    return found


def read_phantoms(folder: Path) -> list[Phantom]:
    """The phantoms listed in ``folder/phantoms.csv``."""
    with (folder / "phantoms.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    return [
        Phantom(
            run=row["run"],
            folder=row["folder"],
            files=tuple(row["files"].split(" ")),
            format=row["format"],
            size=tuple(int(n) for n in row["size"].split("x")),  # type: ignore[arg-type]
            bone_voxels=int(row["bone_voxels"]),
        )
        for row in rows
    ]
