import struct
import zlib

import xfworkerutil

worker = xfworkerutil.XFWorkerJob()
value = worker.job["inputs"]["value"]


def png(width, height, gray_rows):
    """A grayscale 8-bit PNG."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + bytes(row) for row in gray_rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


plot = worker.working_dir.path / "plot.png"
plot.write_bytes(png(4, 3, [[0, 64, 128, 255]] * 3))
worker.finish({"plot": worker.create_output_bitmap("plot.png")})
