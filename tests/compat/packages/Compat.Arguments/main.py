import json

import xfworkerutil

arguments = xfworkerutil.XFWorkerArguments()
worker = xfworkerutil.XFWorkerJob()

types = {
    "job_serial": type(arguments.job_serial).__name__,
    "server_auth": type(arguments.server_auth).__name__,
    "server_host": type(arguments.server_host).__name__,
    "server_port": type(arguments.server_port).__name__,
}
print(f"job {arguments.job_serial} on {arguments.server_host}:{arguments.server_port}")
worker.finish(
    {
        "job_serial": arguments.job_serial,
        "server_host": arguments.server_host,
        "server_port": arguments.server_port,
        "server_auth_given": bool(arguments.server_auth),
        "types": json.dumps(types),
    }
)
