import json

import xfworkerutil

worker = xfworkerutil.XFWorkerJob()
received = {key: type(value).__name__ for key, value in worker.job["inputs"].items()}
print(json.dumps(received, indent=1))
worker.finish({"received": json.dumps(received)})
