import json
import pathlib

import numpy as np
import omni
import xfworkerutil

worker = xfworkerutil.XFWorkerJob()
inputs = worker.job["inputs"]
image = worker.get_omni_image(inputs["image"])
lower, upper = inputs["threshold_lower0"], inputs["threshold_upper0"]

unit_type = inputs["calibration"] or image.default_pixel_calibration_unit_type
calibrations = image.pixel_calibrations_of_unit_type(unit_type) if unit_type else []
if calibrations:
    calibration = calibrations[0]
    bounds = [calibration.calibrated_to_raw(lower), calibration.calibrated_to_raw(upper)]
    unit = calibration.unit_name
else:
    bounds = [lower, upper]
    unit = ""
lower_raw, upper_raw = min(bounds), max(bounds)
print(f"thresholds {lower}..{upper} {unit}: raw {lower_raw}..{upper_raw}")

segments_omni = worker.create_related_path(image.metadata_path, "_seg.omni")
segments_raw = worker.create_related_path(image.metadata_path, "_seg.raw")
segments = image.derive_segments(segments_omni, segments_raw)
pixels = np.asarray(image.pixels)
mask = (pixels >= lower_raw) & (pixels <= upper_raw)
segments.pixels[...] = mask
segments.save()

saved = omni.Image.load(segments_omni)
metadata_path = pathlib.Path(image.metadata_path)
checks = {
    "segments saved, voxels of label 1": int((np.asarray(saved.pixels) == 1).sum()),
    "segments saved, size": [int(n) for n in saved.size],
    "metadata_path suffix": metadata_path.suffix,
    "metadata_path is a file": metadata_path.is_file(),
    "related": segments_omni.name,
    "axes": image.axes,
    "size": [int(n) for n in image.size],
}
worker.finish(
    {
        "segments": worker.upload_omni_output(segments),
        "unit": unit,
        "voxels": int(mask.sum()),
        "checks": json.dumps(checks),
    }
)
