import json

import xfworkerutil

worker = xfworkerutil.XFWorkerJob()
image = worker.get_omni_image(worker.job["inputs"]["image"])
nx, ny, nz = (int(n) for n in image.size)
outline = [[0, 0], [nx - 1, 0], [nx - 1, ny - 1], [0, ny - 1]]
contours = {"slices": [{"z": z, "polygons": [outline]} for z in range(nz)]}
(worker.working_dir.path / "outline.json").write_text(json.dumps(contours))
worker.finish({"contours": worker.create_output_contours("outline.json", image)})
