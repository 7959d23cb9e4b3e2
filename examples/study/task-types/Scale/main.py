"""Example.Scale: value x factor."""

from runyard import task

job = task.current_job()
value, factor = job.inputs["value"], job.inputs["factor"]
print(f"{value} x {factor}")
task.finish({"value": value * factor})
