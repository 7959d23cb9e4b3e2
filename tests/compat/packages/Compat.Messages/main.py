import xfworkerutil

worker = xfworkerutil.XFWorkerJob()
value = worker.job["inputs"]["value"]

worker.clear_error_message(save=False)
worker.clear_error_message()
worker.activity_log_message(
    f"Compat messages: a warning for {value}", level=xfworkerutil.ActivityLogLevel.WARNING
)
worker.activity_log_message(f"Compat messages: information for {value}")

if value < 0:
    worker.error(f"value must not be negative; got {value}")

print(f"after the check of {value}")
worker.finish({"value": value})
