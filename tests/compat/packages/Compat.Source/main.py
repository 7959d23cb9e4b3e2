import xfworkerutil

worker = xfworkerutil.XFWorkerJob()
worker.error("a source task's jobs are created with their outputs; nothing to run")
