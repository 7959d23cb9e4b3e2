import numpy as np
import xfworkerutil

worker = xfworkerutil.XFWorkerJob()
image = worker.get_omni_image(worker.job["inputs"]["image"])
pixels = np.asarray(image.pixels)
print(f"{image.metadata_path}: {pixels.shape} {pixels.dtype}")
worker.finish({"min": float(pixels.min()), "max": float(pixels.max())})
