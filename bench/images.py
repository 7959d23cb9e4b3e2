"""Benchmark images: how long reading a Scanco header takes, whatever the file's size.

    .venv/bin/python bench/images.py [--repeat 25]

For each format (AIM v020, AIM v030, ISQ) it writes two files in a temporary folder: 16 MB
(256 x 256 x 128 int16, pixels written) and 2 GiB (1024 x 1024 x 1024 int16, a sparse file:
the header, then ``truncate``), and times ``import_from_aim`` / ``import_from_isq`` with
``load_pixels=False`` (the header alone), and with ``load_pixels=True`` (a memory map, no
pixel read), ``--repeat`` times each after one warm-up call; it prints the medians. The
page cache is warm (the file was just written), as it is for a search that lists and then
reads. The target is below 5 ms per header; it is printed, not asserted. See
docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import struct
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import describe_code, load_average, median

from runyard import images

TARGET_SECONDS = 0.005
SMALL = (256, 256, 128)  # int16: 16 MiB
LARGE = (1024, 1024, 1024)  # int16: 2 GiB

LOG = (
    b"! \n! Processing Log \n!\n"
    b"Time                          26-NOV-2026 10:11:12.345\n"
    b"Mu_Scaling                                    8192\n"
    b"Density: unit                 mg HA/ccm\n"
    b"Density: slope                         1603.5\n"
    b"Density: intercept                     -391.2\n"
)


def aim_header(version: int, size: tuple[int, int, int], data_bytes: int) -> bytes:
    """An AIM v020 or v030 header (pre-header, image structure, log) for int16 pixels."""
    if version == 20:
        structure = bytearray(140)
        struct.pack_into("<i", structure, 20, 0x00020002)
        struct.pack_into("<3i", structure, 36, *size)
        vax = struct.pack("<f", 0.0105 * 4)
        structure[108:120] = bytes((vax[2], vax[3], vax[0], vax[1])) * 3
        # A 2 GiB data length does not fit a signed 32-bit field; readers use the size.
        pre = struct.pack("<5I", 20, 140, len(LOG), data_bytes & 0xFFFFFFFF, 0)
        return pre + bytes(structure) + LOG
    structure = bytearray(224)
    struct.pack_into("<i", structure, 12, 0x00020002)
    struct.pack_into("<3q", structure, 40, *size)
    struct.pack_into("<3q", structure, 184, 10500, 10500, 10500)
    pre = struct.pack("<5q", 40, 224, len(LOG), data_bytes, 0)
    return b"AIMDATA_V030   \0" + pre + bytes(structure) + LOG


def isq_header(size: tuple[int, int, int], data_bytes: int) -> bytes:
    """A one-block ISQ header for int16 pixels (no calibration header)."""
    header = bytearray(512)
    header[:16] = b"CTDATA-HEADER_V1"
    struct.pack_into("<i", header, 16, 3)
    struct.pack_into("<3i", header, 44, *size)
    struct.pack_into("<3i", header, 56, *(n * 10 for n in size))
    struct.pack_into("<i", header, 88, 8192)
    return bytes(header)


def write_file(path: Path, header: bytes, data_bytes: int, *, sparse: bool) -> Path:
    with open(path, "wb") as f:
        f.write(header)
        if not sparse:
            f.write(os.urandom(1 << 20) * (data_bytes >> 20))
    if sparse:
        os.truncate(path, len(header) + data_bytes)
    return path


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


def time_median(call: Callable[[], object], repeat: int) -> float:
    call()  # warm-up: imports, the page cache
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=25, help="timed calls per file")
    args = parser.parse_args()
    print(
        f"system: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}, {load_average()}\n{describe_code()}"
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="runyard-bench-images-") as folder:
        for label, size, sparse in (("16 MiB", SMALL, False), ("2 GiB sparse", LARGE, True)):
            data_bytes = size[0] * size[1] * size[2] * 2
            files = {
                "AIM v020": (aim_header(20, size, data_bytes), images.import_from_aim, "A.AIM;1"),
                "AIM v030": (aim_header(30, size, data_bytes), images.import_from_aim, "B.AIM;1"),
                "ISQ": (isq_header(size, data_bytes), images.import_from_isq, "C.ISQ;1"),
            }
            for kind, (header, read, name) in files.items():
                path = write_file(Path(folder) / name, header, data_bytes, sparse=sparse)
                image = read(path, load_pixels=False)
                assert image.size == size, (kind, image.size)
                head = time_median(lambda: read(path, load_pixels=False), args.repeat)
                mapped = time_median(lambda: read(path, load_pixels=True), args.repeat)
                rows.append((kind, label, head, mapped))
                path.unlink()
    print(f"\nheader read, median of {args.repeat} (target < {ms(TARGET_SECONDS)}):")
    print(f"{'format':<10} {'file':<14} {'header only':>12} {'with pixels (mmap)':>20}  target")
    for kind, label, head, mapped in rows:
        verdict = "met" if head < TARGET_SECONDS else "NOT met"
        print(f"{kind:<10} {label:<14} {ms(head):>12} {ms(mapped):>20}  {verdict}")


if __name__ == "__main__":
    main()
