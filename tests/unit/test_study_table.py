"""The pure parts of the study table and the output zips: which values a column shows, the
CSV text, the files an output value points at, and the names inside a zip."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

from runyard.operations.output_zips import ZipEntry, files_in, safe, unique, zip_chunks
from runyard.operations.study_table import CSV_CHUNK_ROWS, cell, csv_chunks

FILE_A = "a" * 32
FILE_B = "b" * 32


def test_a_cell_shows_a_value_of_its_columns_type_only() -> None:
    assert cell(3, "Int") == 3 and cell(2.5, "Float") == 2.5 and cell(2, "Float") == 2
    assert cell(True, "Bool") is True and cell("mm", "String") == "mm"
    assert cell(True, "Int") is None and cell(False, "Float") is None, "a boolean is no number"
    assert cell("3", "Int") is None and cell(1, "Bool") is None and cell(None, "String") is None
    assert cell({"file_id": FILE_A}, "String") is None


def test_the_csv_has_a_header_quotes_what_needs_it_and_comes_in_chunks() -> None:
    rows = [
        {"run_id": i, "run": f'r "{i}", x', "serial": i, "values": [i * 0.5, i % 2 == 0, None]}
        for i in range(CSV_CHUNK_ROWS + 3)
    ]
    table = {"columns": [{"key": "bv_tv"}, {"key": "ok"}, {"key": "note"}], "rows": rows}
    chunks = list(csv_chunks(table))
    assert len(chunks) == 2, "a chunk every CSV_CHUNK_ROWS rows, then the rest"
    text = "".join(chunks)
    assert text.startswith("run_id,run,bv_tv,ok,note\r\n")
    assert '1,"r ""1"", x",0.5,false,\r\n' in text
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    assert parsed[1] == ["0", 'r "0", x', "0.0", "true", ""]
    assert len(parsed) == CSV_CHUNK_ROWS + 4


def test_files_in_finds_files_images_and_lists_of_them() -> None:
    image = {
        "type": "Image",
        "source": "filestore",
        "file_id": FILE_A,
        "filename": "mask.omni",
        "raw_file_id": FILE_B,
        "raw_filename": "mask.raw",
    }
    other = {"source": "filestore", "file_id": "../../etc/passwd", "filename": "x"}
    userdata = {"source": "userdata", "virtualpath": "/Scans/a.isq"}
    found = list(files_in([image, other, userdata, 3, "text"]))
    assert found == [(FILE_A, "mask.omni"), (FILE_B, "mask.raw")], "no id that is not one"


def test_names_in_a_zip_are_plain_and_unique() -> None:
    assert safe("a/b\\c:d") == "a_b_c_d" and safe("..") == "_" and safe("  ") == "_"
    taken: set[str] = set()
    names = [unique(n, taken) for n in ["r/T/k/a.txt", "r/T/k/a.txt", "r/T/k/a.txt", "r/T/k/x"]]
    assert names == ["r/T/k/a.txt", "r/T/k/a (2).txt", "r/T/k/a (3).txt", "r/T/k/x"]
    assert unique("r/T/k/.hidden", taken) == "r/T/k/.hidden"
    assert unique("r/T/k/.hidden", taken) == "r/T/k/.hidden (2)"


def test_the_zip_written_in_chunks_holds_every_file_whole(tmp_path: Path) -> None:
    big = bytes(range(256)) * 20_000  # 5 MB: written over several chunks
    (tmp_path / "a").write_bytes(big)
    (tmp_path / "b").write_bytes(b"")
    entries = [
        ZipEntry(name="r/T/k/big.bin", file_id=FILE_A, path=tmp_path / "a"),
        ZipEntry(name="r/T/k/empty", file_id=FILE_B, path=tmp_path / "b"),
    ]
    chunks = list(zip_chunks(entries))
    assert len([c for c in chunks if c]) > 2
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as zf:
        assert zf.testzip() is None
        assert zf.read("r/T/k/big.bin") == big and zf.read("r/T/k/empty") == b""
