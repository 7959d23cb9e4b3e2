import xfworkerutil

worker = xfworkerutil.XFWorkerJob()
inputs = worker.job["inputs"]
worker.finish({"sum": inputs["a"] + inputs["b"]})
