import json

import xfworkerutil

worker = xfworkerutil.XFWorkerJob()
inputs = worker.job["inputs"]
print(json.dumps(inputs, sort_keys=True))

if inputs["mode"] not in ("fast", "exact"):
    worker.error(f"Unknown mode {inputs['mode']}")

types = {key: type(value).__name__ for key, value in inputs.items()}
worker.finish(
    {
        "echo": json.dumps(inputs, sort_keys=True),
        "types": json.dumps(types, sort_keys=True),
        "product": inputs["value"] * inputs["scale"],
    }
)
