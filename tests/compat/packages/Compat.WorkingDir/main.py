# worker.working_dir and TemporaryWorkingDirectory as XamFlow documents them; every check is
# an output, so that a test sees which ones hold.
import json
import pathlib

import xfworkerutil

worker = xfworkerutil.XFWorkerJob()
checks = {}

working_dir = worker.working_dir
checks["working_dir is a TemporaryWorkingDirectory"] = isinstance(
    working_dir, xfworkerutil.TemporaryWorkingDirectory
)
checks["working_dir.path is a pathlib.Path"] = isinstance(working_dir.path, pathlib.Path)
x = working_dir.path / "x"
x.write_text("x")
checks["working_dir.path / 'x' can be written"] = x.read_text() == "x"
checks["working_dir.is_under(its file)"] = working_dir.is_under(x)

scratch = xfworkerutil.TemporaryWorkingDirectory(prefix="compat_")
checks["prefix starts the folder name"] = scratch.path.name.startswith("compat_")
checks["the folder exists"] = scratch.path.is_dir()

first = scratch.create_temp_path("a.txt")
first.write_text("a")
second = scratch.create_temp_path("a.txt")
checks["create_temp_path is in the folder"] = first.parent == scratch.path
checks["create_temp_path is new each time"] = first != second and not second.exists()
checks["create_temp_path keeps the extension"] = first.suffix == ".txt" == second.suffix

related = scratch.create_related_path(first, "_b.csv")
checks["create_related_path is in the folder"] = related.parent == scratch.path
checks["create_related_path is the stem plus the postfix"] = related.name.startswith(
    first.stem
) and related.name.endswith("_b.csv")

with scratch.subdir("segmentations", max_name_len=8):
    inner = scratch.create_temp_path("c.txt")
    inner_related = scratch.create_related_path(first, "_d.txt")
    inner.write_text("c")
checks["subdir: temp paths go into a subdirectory"] = inner.parent.parent == scratch.path
checks["subdir: related paths go into the same subdirectory"] = inner_related.parent == inner.parent
checks["subdir: its name has at most max_name_len characters"] = len(inner.parent.name) <= 8
checks["subdir: the subdirectory exists"] = inner.parent.is_dir()
after = scratch.create_temp_path("e.txt")
checks["after the subdir: back in the folder"] = after.parent == scratch.path

checks["is_under(a file in its subdirectory)"] = scratch.is_under(inner)
checks["is_under(its parent folder)"] = not scratch.is_under(scratch.path.parent)
checks["is_under(the job's working dir file)"] = not scratch.is_under(x)

scratch.remove()
checks["remove() deletes the folder"] = not scratch.path.exists()

print(json.dumps(checks, indent=1))
worker.finish({"checks": json.dumps(checks)})
