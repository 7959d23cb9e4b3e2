import logging
import sys

import xfworkerutil

worker = xfworkerutil.XFWorkerJob()
value = worker.job["inputs"]["value"]

print(f"compat log: printed {value}")
print(f"compat log: printed to stderr {value}", file=sys.stderr)
logging.info(f"compat log: logged info {value}")
logging.warning(f"compat log: logged warning {value}")

with worker.server_connection() as connection:
    task_types = worker.find_xf_task_types(connection, "Compat.Log")
worker.activity_log_message(f"compat log: {len(task_types)} version(s)")

worker.finish({"versions": len(task_types)})
