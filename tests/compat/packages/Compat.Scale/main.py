import xfworkerutil

worker = xfworkerutil.XFWorkerJob()
inputs = worker.job["inputs"]
print(f"scaling {inputs['value']} by {inputs['factor']}")
worker.finish({"scaled": inputs["value"] * inputs["factor"]})
