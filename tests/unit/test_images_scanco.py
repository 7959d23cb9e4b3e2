"""Scanco AIM (v020, v030) and ISQ files made byte by byte here, read by runyard.images:
size, spacing, origin, calibrations (linear attenuation, density, Hounsfield units, the
default unit type), dates, pixels; saved as OMNI; version-suffixed names; and clear errors
for truncated, corrupt and unsupported files."""

from __future__ import annotations

import os
import struct
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from runyard import images
from runyard.images import ImageError

VMS_EPOCH = datetime(1858, 11, 17)


def vax_f(value: float) -> bytes:
    ieee = struct.pack("<f", value * 4)
    return bytes((ieee[2], ieee[3], ieee[0], ieee[1]))


def vax_g(value: float) -> bytes:
    d = struct.pack("<d", value * 4)
    return bytes((d[6], d[7], d[4], d[5], d[2], d[3], d[0], d[1]))


def vms_date(moment: datetime) -> bytes:
    return struct.pack("<Q", (moment - VMS_EPOCH) // timedelta(microseconds=1) * 10)


def processing_log(entries: dict[str, str]) -> bytes:
    lines = ["! ", "! Processing Log ", "!", "!" + "-" * 79]
    lines += [f"{key:<30}{value:>20}" for key, value in entries.items()]
    return ("\n".join(lines) + "\n").encode("latin-1")


CALIBRATED_LOG = {
    "Created by": "hand",
    "Time": "26-NOV-2026 10:11:12.345",
    "Original Creation-Date": "3-FEB-2025 08:00:01.500",
    "Patient Name": "Sample 7",
    "Index Measurement": "4242",
    "Mu_Scaling": "8192",
    "Calib. default unit type": "2 (Density)",
    "Density: unit": "mg HA/ccm",
    "Density: slope": "1603.5",
    "Density: intercept": "-391.2",
    "HU: mu water": "0.2409",
}


def aim_file(
    version: int,
    pixels: np.ndarray,
    *,
    spacing: tuple[float, float, float] = (0.0105, 0.0105, 0.021),
    position: tuple[int, int, int] = (10, 20, 30),
    type_code: int = 0x00020002,
    log: dict[str, str] | None = None,
    data: bytes | None = None,
) -> bytes:
    """An AIM file: [magic] pre-header, image structure, processing log, pixels."""
    log_bytes = processing_log(CALIBRATED_LOG if log is None else log)
    body = pixels.tobytes(order="F") if data is None else data
    size = pixels.shape
    if version == 20:
        structure = bytearray(140)
        struct.pack_into("<i", structure, 20, type_code)
        struct.pack_into("<3i", structure, 24, *position)
        struct.pack_into("<3i", structure, 36, *size)
        structure[108:120] = b"".join(vax_f(s) for s in spacing)
        pre = struct.pack("<5i", 20, 140, len(log_bytes), len(body), 0)
        return pre + bytes(structure) + log_bytes + body
    structure = bytearray(224)
    struct.pack_into("<i", structure, 12, type_code)
    struct.pack_into("<3q", structure, 16, *position)
    struct.pack_into("<3q", structure, 40, *size)
    struct.pack_into("<3q", structure, 184, *(round(s * 1e6) for s in spacing))
    pre = struct.pack("<5q", 40, 224, len(log_bytes), len(body), 0)
    return b"AIMDATA_V030   \0" + pre + bytes(structure) + log_bytes + body


def isq_file(
    pixels: np.ndarray,
    *,
    physical_um: tuple[int, int, int] | None = None,
    mu_scaling: int = 4096,
    created: datetime = datetime(2026, 11, 26, 10, 11, 12, 345000),
    calibration: bool = True,
    default_unit_type: int = 2,
) -> bytes:
    """An ISQ file: the 512-byte header, [MultiHeader, directory, 2 calibration blocks], pixels."""
    size = pixels.shape
    physical = physical_um or tuple(n * 10 for n in size)  # 10 um voxels
    header = bytearray(512)
    header[:16] = b"CTDATA-HEADER_V1"
    struct.pack_into("<4i", header, 16, 3, pixels.nbytes, pixels.nbytes // 512, 17)
    struct.pack_into("<i", header, 32, 3401)  # scanner id
    header[36:44] = vms_date(created)
    struct.pack_into("<3i", header, 44, *size)
    struct.pack_into("<3i", header, 56, *physical)
    struct.pack_into("<3i", header, 68, 10, 10, 1234)  # slice thickness, increment, start
    struct.pack_into("<3i", header, 80, -500, 9000, mu_scaling)
    struct.pack_into("<i", header, 112, 4242)  # measurement index
    header[128:168] = b"Sample 7".ljust(40)
    extended = b""
    if calibration:
        multi = bytearray(512)
        multi[8:24] = b"MultiHeader     "
        directory = bytearray(512)
        directory[8:24] = b"Calibration     "
        struct.pack_into("<i", directory, 24, 2)
        cal = bytearray(1024)
        cal[28:92] = b"HA phantom 2026".ljust(64)
        struct.pack_into("<i", cal, 632, default_unit_type)
        cal[648:664] = b"mg HA/ccm".ljust(16)
        cal[664:672] = vax_g(1603.5)
        cal[672:680] = vax_g(-391.2)
        cal[688:696] = vax_g(0.2409)
        extended = bytes(multi + directory + cal)
    struct.pack_into("<i", header, 508, len(extended) // 512)
    return bytes(header) + extended + pixels.astype("<i2").tobytes(order="F")


def ramp(size: tuple[int, int, int], dtype: str = "int16") -> np.ndarray:
    return np.arange(np.prod(size), dtype=dtype).reshape(size, order="F")


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# -- AIM ----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [20, 30])
def test_aim_header_gives_size_spacing_origin_calibrations_and_dates(
    tmp_path: Path, version: int
) -> None:
    pixels = ramp((4, 3, 2))
    path = write(tmp_path / f"SAMPLE_V{version}.AIM;1", aim_file(version, pixels))
    image = images.import_from_aim(path, load_pixels=False)
    assert image.size == (4, 3, 2) and image.axes == "XYZ" and image.unit == "mm"
    assert image.metadata.data_type == "int16" and not image.has_pixels
    assert image.spacing == pytest.approx((0.0105, 0.0105, 0.021), rel=1e-6)
    assert image.origin == pytest.approx((0.105, 0.21, 0.63), rel=1e-6)
    mu, density, hu = image.calibrations
    assert (mu.type, mu.unit_type, mu.unit_name, mu.slope, mu.intercept) == (
        "slope_intercept", "linear_attenuation", "1/cm", 1 / 8192, 0.0
    )  # fmt: skip
    assert (density.unit_type, density.unit_name, density.slope, density.intercept) == (
        "density",
        "mg HA/ccm",
        pytest.approx(1603.5 / 8192),
        pytest.approx(-391.2),
    )
    assert (hu.unit_type, hu.unit_name) == ("hounsfield", "HU")
    assert hu.raw_to_calibrated(0.2409 * 8192) == pytest.approx(0.0)
    assert hu.raw_to_calibrated(0) == -1000.0  # air
    assert image.default_pixel_calibration_unit_type == "density"
    assert image.source["default_unit_type"] == 2
    source = image.source
    assert source["format"] == "AIM" and source["version"] == f"AIMDATA_V0{version}"
    assert source["filename"] == f"SAMPLE_V{version}.AIM;1"
    assert source["modified"] == "2026-11-26T10:11:12.345"
    assert source["created"] == "2025-02-03T08:00:01.500"
    assert source["patient_name"] == "Sample 7" and source["measurement_index"] == 4242
    with pytest.raises(ImageError, match=r"SAMPLE_V.*AIM;1: only the header was read"):
        image.pixels


@pytest.mark.parametrize("version", [20, 30])
@pytest.mark.parametrize(
    ("type_code", "dtype"),
    [(0x00010001, "int8"), (0x00020002, "int16"), (0x00170002, "uint16"), (0x001A0004, "float32")],
)
def test_aim_pixels_are_memory_mapped_x_fastest(
    tmp_path: Path, version: int, type_code: int, dtype: str
) -> None:
    pixels = ramp((5, 4, 3), dtype)
    path = write(tmp_path / "scan.aim", aim_file(version, pixels, type_code=type_code))
    image = images.import_from_aim(path)
    assert isinstance(image.pixels, np.memmap) and not image.pixels.flags.writeable
    assert image.pixels.dtype == np.dtype(dtype) and image.metadata.data_type == dtype
    np.testing.assert_array_equal(image.pixels, pixels)
    assert image.pixels[1, 0, 0] == 1 and image.pixels[0, 1, 0] == 5  # x varies fastest


def test_aim_run_length_compressed_pixels_are_expanded(tmp_path: Path) -> None:
    expected = np.array([7] * 3 + [0] * 10 + [7] * 3, dtype=np.int8).reshape((4, 2, 2), order="F")
    # (length, value) byte pairs, after the data's own length (4 bytes in v020).
    pairs = bytes([3, 7, 10, 0, 3, 7])
    data = struct.pack("<i", 4 + len(pairs)) + pairs
    path = write(tmp_path / "seg.aim", aim_file(20, expected, type_code=0x00080002, data=data))
    np.testing.assert_array_equal(images.import_from_aim(path).pixels, expected)


def test_aim_run_length_bits_alternate_between_two_values(tmp_path: Path) -> None:
    expected = np.array([0] * 3 + [127] * 300 + [0] * 1, dtype=np.int8).reshape(
        (4, 76, 1), order="F"
    )
    # Two values, then runs: 3 x 0; 255 means 254 x 127 without switching; 46 x 127; 1 x 0.
    runs = bytes([0, 127, 3, 255, 46, 1])
    data = struct.pack("<q", 8 + len(runs)) + runs
    path = write(tmp_path / "seg.aim", aim_file(30, expected, type_code=0x00150001, data=data))
    np.testing.assert_array_equal(images.import_from_aim(path).pixels, expected)


@pytest.mark.parametrize("load_pixels", [False, True])
def test_an_import_with_or_without_pixels_has_the_same_calibrations(
    tmp_path: Path, load_pixels: bool
) -> None:
    aim = write(tmp_path / "A.AIM;1", aim_file(20, ramp((2, 2, 2))))
    isq = write(tmp_path / "S.ISQ;1", isq_file(ramp((2, 2, 2))))
    for path, read in ((aim, images.import_from_aim), (isq, images.import_from_isq)):
        image, header = read(path, load_pixels=load_pixels), read(path, load_pixels=False)
        assert image.calibrations == header.calibrations and len(image.calibrations) == 3
        assert image.default_pixel_calibration_unit_type == "density"


def test_a_default_unit_type_runyard_does_not_know_gives_density_if_there_is_one(
    tmp_path: Path,
) -> None:
    isq = write(tmp_path / "S.ISQ", isq_file(ramp((2, 2, 2)), default_unit_type=0))
    assert images.import_from_isq(isq).default_pixel_calibration_unit_type == "density"
    log = CALIBRATED_LOG | {"Calib. default unit type": "7 (Something)"}
    aim = write(tmp_path / "A.AIM", aim_file(30, ramp((2, 2, 2)), log=log))
    header = images.import_from_aim(aim, load_pixels=False)
    assert header.default_pixel_calibration_unit_type == "density"
    assert header.source["default_unit_type"] == 7
    undensed = {k: v for k, v in log.items() if not k.startswith("Density")}
    aim = write(tmp_path / "B.AIM", aim_file(30, ramp((2, 2, 2)), log=undensed))
    assert images.import_from_aim(aim).default_pixel_calibration_unit_type is None


@pytest.mark.parametrize("name", ["SCAN.ISQ;1", "V020.AIM", "V030.AIM;2"])
def test_an_import_saved_as_omni_keeps_pixels_calibrations_and_header(
    tmp_path: Path, name: str
) -> None:
    pixels = ramp((6, 5, 4)) - 30
    data = isq_file(pixels) if "ISQ" in name else aim_file(int(name[2:4]), pixels)
    scan = images.open_image(write(tmp_path / name, data))
    saved = scan.save(tmp_path / "scan.omni")
    # The pixels are the file's bytes after its header, copied file to file.
    assert (tmp_path / "scan.raw").read_bytes() == data[-pixels.nbytes :]
    again = images.Image.load(saved)
    assert again.calibrations == scan.calibrations and len(again.calibrations) == 3
    assert again.default_pixel_calibration_unit_type == "density"
    assert again.source == scan.source and again.spacing == scan.spacing
    np.testing.assert_array_equal(again.pixels, pixels)


def test_aim_without_calibration_has_none(tmp_path: Path) -> None:
    path = write(tmp_path / "x.aim", aim_file(30, ramp((2, 2, 2)), log={"Mu_Scaling": "0"}))
    assert images.import_from_aim(path, load_pixels=False).calibrations == ()


# -- ISQ ----------------------------------------------------------------------------------


def test_isq_header_gives_size_spacing_calibrations_and_date(tmp_path: Path) -> None:
    pixels = ramp((6, 5, 4))
    path = write(tmp_path / "SCAN.ISQ;1", isq_file(pixels, physical_um=(60, 50, 41)))
    image = images.import_from_isq(path, load_pixels=False)
    assert image.size == (6, 5, 4) and image.metadata.data_type == "int16"
    assert image.spacing == pytest.approx((0.01, 0.01, 0.01025))
    assert image.origin == (0.0, 0.0, 0.0)
    assert image.calibration("mu").slope == 1 / 4096
    density = image.calibration("density")
    assert density.unit_name == "mg HA/ccm" and image.calibration("mg HA/ccm") is density
    assert image.default_pixel_calibration_unit_type == "density"
    assert density.to_calibrated(4096) == pytest.approx(1603.5 - 391.2)
    assert density.to_raw(density.to_calibrated(1234.0)) == pytest.approx(1234.0)
    assert image.calibration("HU").to_calibrated(0.2409 * 4096) == pytest.approx(0.0)
    source = image.source
    assert source["format"] == "ISQ" and source["filename"] == "SCAN.ISQ;1"
    assert source["created"] == "2026-11-26T10:11:12.345"
    assert source["patient_name"] == "Sample 7" and source["patient_index"] == 17
    assert source["calibration_data"] == "HA phantom 2026"
    assert source["data_range"] == [-500, 9000] and source["mu_scaling"] == 4096


def test_isq_pixels_are_memory_mapped(tmp_path: Path) -> None:
    pixels = ramp((6, 5, 4))
    path = write(tmp_path / "SCAN.ISQ;12", isq_file(pixels))
    image = images.import_from_isq(path)
    assert isinstance(image.pixels, np.memmap) and not image.pixels.flags.writeable
    np.testing.assert_array_equal(image.pixels, pixels)


def test_isq_without_calibration_header_has_mu_only(tmp_path: Path) -> None:
    path = write(tmp_path / "s.isq", isq_file(ramp((2, 2, 2)), calibration=False))
    image = images.import_from_isq(path, load_pixels=False)
    assert [c.unit_type for c in image.calibrations] == ["linear_attenuation"]
    assert image.source["density_unit"] == "" and image.default_pixel_calibration_unit_type is None


def test_header_of_a_2_gib_sparse_file_is_read_without_its_pixels(tmp_path: Path) -> None:
    size = (1024, 1024, 1024)  # int16: 2 GiB of pixels, more than a 32-bit count
    header = isq_file(np.zeros((1, 1, 1), dtype=np.int16), calibration=False)[:512]
    header = header[:44] + struct.pack("<3i", *size) + header[56:]
    path = write(tmp_path / "BIG.ISQ;1", header)
    os.truncate(path, 512 + 2 * 1024**3)
    image = images.import_from_isq(path, load_pixels=False)
    assert image.size == size
    mapped = images.import_from_isq(path)
    assert mapped.pixels[-1, -1, -1] == 0


@pytest.mark.parametrize("version", [20, 30])
def test_aim_of_2_gib_and_more_reads_its_header(tmp_path: Path, version: int) -> None:
    """v020 lengths are unsigned 32-bit: 2 GiB of pixels is 0x80000000, not negative."""
    small = aim_file(version, np.zeros((1, 1, 1), dtype=np.int16))[:-2]
    one, big = struct.pack("<3q" if version == 30 else "<3i", 1, 1, 1), (1024, 1024, 1024)
    data = small.replace(one, struct.pack("<3q" if version == 30 else "<3i", *big), 1)
    if version == 20:
        data = data[:12] + struct.pack("<I", 2 * 1024**3) + data[16:]
    path = write(tmp_path / "BIG.AIM;1", data)
    os.truncate(path, len(data) + 2 * 1024**3)
    assert images.import_from_aim(path, load_pixels=False).size == big
    assert images.import_from_aim(path).pixels[-1, -1, -1] == 0


def test_open_image_chooses_the_reader_by_suffix_with_versions(tmp_path: Path) -> None:
    isq = write(tmp_path / "SCAN.ISQ;1", isq_file(ramp((2, 2, 2))))
    aim = write(tmp_path / "scan.Aim;3", aim_file(20, ramp((2, 2, 2))))
    assert images.open_image(isq, load_pixels=False).source["format"] == "ISQ"
    assert images.open_image(aim, load_pixels=False).source["format"] == "AIM"
    with pytest.raises(ImageError, match=r"scan.tif: not an image"):
        images.open_image(tmp_path / "scan.tif")


# -- bad files ----------------------------------------------------------------------------


def truncated(data: bytes, keep: int) -> bytes:
    return data[:keep]


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("a.aim", b"", "truncated: its pre-header"),
        ("a.aim", truncated(aim_file(20, ramp((3, 3, 3))), 12), "truncated: its pre-header"),
        ("a.aim", truncated(aim_file(30, ramp((3, 3, 3))), 100), "truncated: its image struct"),
        ("a.aim", truncated(aim_file(20, ramp((3, 3, 3))), -10), "truncated: the header says"),
        ("a.aim", truncated(aim_file(30, ramp((3, 3, 3))), -1), "the file has"),
        ("a.aim", b"GIF89a" + bytes(200), "not an AIM"),
        ("a.aim", isq_file(ramp((2, 2, 2))), "not an AIM"),
        ("a.aim", aim_file(20, ramp((2, 2, 2)), type_code=0x00060001), "packed bits"),
        ("a.aim", aim_file(30, ramp((2, 2, 2)), type_code=0x12345678), "0x12345678"),
        (
            "a.aim",
            aim_file(30, ramp((2, 2, 2)), position=(0, 0, 0)).replace(
                struct.pack("<3q", 2, 2, 2), struct.pack("<3q", 2, 0, 2), 1
            ),
            "empty axis",
        ),
        ("a.isq", b"CTDATA-HEADER_V1" + bytes(100), "truncated: an ISQ header is 512 bytes"),
        ("a.isq", truncated(isq_file(ramp((4, 4, 4))), -2), "truncated: the header says"),
        ("a.isq", truncated(isq_file(ramp((4, 4, 4))), 1000), "truncated"),
        ("a.isq", aim_file(30, ramp((2, 2, 2))) + bytes(512), "looks like an AIM file"),
        ("a.isq", b"\0" * 1024, "not an ISQ file"),
    ],
)
def test_truncated_and_corrupt_files_raise_a_clear_error(
    tmp_path: Path, name: str, data: bytes, message: str
) -> None:
    path = write(tmp_path / name, data)
    read = images.import_from_aim if name.endswith(".aim") else images.import_from_isq
    for load_pixels in (False, True):
        with pytest.raises(ImageError, match=message) as error:
            read(path, load_pixels=load_pixels)
        assert str(error.value).startswith(f"{path}: ")
        assert error.value.code == "invalid_image" and error.value.details == {"file": str(path)}


def test_isq_with_a_corrupt_data_offset_is_refused(tmp_path: Path) -> None:
    data = bytearray(isq_file(ramp((2, 2, 2))))
    struct.pack_into("<i", data, 508, -3)
    path = write(tmp_path / "a.isq", bytes(data))
    with pytest.raises(ImageError, match="corrupt header: -3 further header blocks"):
        images.import_from_isq(path)


@pytest.mark.parametrize("name", ["a.aim", "a.isq"])
def test_a_size_whose_pixel_count_overflows_64_bits_is_refused_as_truncated(
    tmp_path: Path, name: str
) -> None:
    # 2**64 pixels: a 64-bit count wraps to 0, which a file of any length would hold.
    if name == "a.aim":
        data = aim_file(30, ramp((2, 2, 2)), position=(0, 0, 0)).replace(
            struct.pack("<3q", 2, 2, 2), struct.pack("<3q", 2**32, 2**32, 1), 1
        )
    else:
        data = bytearray(isq_file(ramp((2, 2, 2))))
        struct.pack_into("<3i", data, 44, 2**30, 2**30, 16)
    path = write(tmp_path / name, bytes(data))
    read = images.import_from_aim if name == "a.aim" else images.import_from_isq
    for load_pixels in (False, True):
        with pytest.raises(ImageError, match="truncated: the header says"):
            read(path, load_pixels=load_pixels)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"nothing.aim: no such file"):
        images.import_from_aim(tmp_path / "nothing.aim")
