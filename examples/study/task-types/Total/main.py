"""Example.Total: a reduce job's inputs are lists, one value per run; its job's ``runs`` says
which run each value is from (in the same order)."""

import csv

from runyard import task

job = task.current_job()
values = job.inputs["values"]
path = job.working_dir / "total.csv"
with path.open("w", newline="") as out:
    writer = csv.writer(out)
    writer.writerow(["run", "value"])
    for run, value in zip(job.runs, values, strict=True):
        writer.writerow([run["name"], value])
print(f"{len(values)} runs, total {sum(values)}")
task.finish({"table": job.upload(path, value_type="CSV"), "total": sum(values)})
