import xfworkerutil

worker = xfworkerutil.XFWorkerJob()
inputs = worker.job["inputs"]
summary = f"a={inputs['a']} b={inputs['b']} label={inputs['label']} extra={inputs['extra']}"
print(summary)
worker.finish({"summary": summary})
