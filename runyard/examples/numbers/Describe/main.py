from runyard import task

job = task.current_job()
n, square, unit = job.inputs["number"], job.inputs["square"], job.inputs["unit"]
task.finish({"text": f"a square of side {n} {unit} has an area of {square} {unit}²"})
