from runyard import task

job = task.current_job()
number = job.inputs["number"]
print(f"squaring {number}")
task.finish({"square": number * number})
