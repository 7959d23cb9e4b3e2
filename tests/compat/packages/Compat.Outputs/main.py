# Output values as XamFlow documents them: write the file into the working directory, then
# call create_output_csv, and put the returned dict in finish's outputs. Each call is tried on
# its own so that one that raises does not hide the others.
import json
import traceback

import xfworkerutil

worker = xfworkerutil.XFWorkerJob()
value = worker.job["inputs"]["value"]
outputs = {}
problems = {}


def attempt(key, make):
    try:
        outputs[key] = make()
    except Exception:
        problems[key] = traceback.format_exc(limit=3).strip().splitlines()[-1]


table = worker.working_dir.path / "table.csv"
table.write_text(f"value,square\n{value},{value * value}\n")
attempt("table", lambda: worker.create_output_csv("table.csv"))

table2 = worker.working_dir.path / "table2.csv"
table2.write_text(f"value,cube\n{value},{value**3}\n")
attempt("table_path", lambda: worker.create_output_csv(table2))

attempt("entity", lambda: worker.create_output_entity(f"compat-{value}", f"Sample {value}"))


def related_name():
    related = worker.create_related_path(table, "_copy.csv")
    if related.parent != worker.working_dir.path:
        raise ValueError(f"{related} is not in the working dir {worker.working_dir.path}")
    return related.name


attempt("related", related_name)
attempt(
    "scan_related",
    lambda: worker.create_related_path("/Scans/s1/SAMPLE.AIM;1", "_SEG.AIM").name,
)

print(json.dumps(problems, indent=1))
outputs["problems"] = json.dumps(problems)
worker.finish(outputs)
