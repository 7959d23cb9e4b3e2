import json

import numpy as np
import omni
import xfworkerutil

worker = xfworkerutil.XFWorkerJob()

calibration = omni.Calibration(
    type="slope_intercept",
    unit_type="compat",
    unit_name="compat units",
    slope=2.0,
    intercept=-10.0,
    indirect_base_unit_type=None,
)
raw = np.array([1.0, 2.0])
checks = {
    "type": calibration.type,
    "unit_type": calibration.unit_type,
    "unit_name": calibration.unit_name,
    "slope": calibration.slope,
    "intercept": calibration.intercept,
    "indirect_base_unit_type": calibration.indirect_base_unit_type,
    "raw_to_calibrated(5)": float(calibration.raw_to_calibrated(5.0)),
    "calibrated_to_raw(0)": float(calibration.calibrated_to_raw(0.0)),
    "raw_to_calibrated([1, 2])": [float(v) for v in calibration.raw_to_calibrated(raw)],
    "raw_stddev_to_calibrated_stddev(3)": float(calibration.raw_stddev_to_calibrated_stddev(3.0)),
    "raw_variance_to_calibrated_variance(3)": float(
        calibration.raw_variance_to_calibrated_variance(3.0)
    ),
}
worker.finish({"checks": json.dumps(checks)})
