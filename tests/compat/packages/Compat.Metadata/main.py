import xfworkerutil

worker = xfworkerutil.XFWorkerJob()
value = worker.job["inputs"]["value"]
print(f"adding one to {value}")
worker.finish({"result": value + 1})
