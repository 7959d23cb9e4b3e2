import json

import numpy as np
import xfworkerutil

worker = xfworkerutil.XFWorkerJob()
image = worker.get_omni_image(worker.job["inputs"]["image"])

unit_type = image.default_pixel_calibration_unit_type
calibrations = image.pixel_calibrations_of_unit_type(unit_type)
print(f"default unit type {unit_type!r}: {calibrations!r}")
image_calibration = {"default_unit_type": unit_type, "calibrations": len(calibrations)}
if calibrations:
    calibration = calibrations[0]
    back = calibration.calibrated_to_raw(calibration.raw_to_calibrated(1000.0))
    image_calibration.update(
        {
            "type": calibration.type,
            "unit_type": calibration.unit_type,
            "unit_name": calibration.unit_name,
            "slope": calibration.slope,
            "intercept": calibration.intercept,
            "raw 1000": float(calibration.raw_to_calibrated(1000.0)),
            "back to raw": float(back),
        }
    )

calibrated_omni = worker.create_related_path(image.metadata_path, "_cal.omni")
calibrated_raw = worker.create_related_path(image.metadata_path, "_cal.raw")
calibrated = image.derive_image(
    calibrated_omni, calibrated_raw, override_metadata={"data_type": "float32"}
)
pixels = np.asarray(image.pixels, dtype=np.float64)
calibrated.pixels[...] = calibrations[0].raw_to_calibrated(pixels) if calibrations else pixels
calibrated.save()

worker.finish(
    {
        "calibrated": worker.upload_omni_output(calibrated),
        "image_calibration": json.dumps(image_calibration),
    }
)
