"""Writes and reads Scanco files with ITK (itk-ioscanco) for the reader tests, in a process of
its own: ITK's extension modules crash the interpreter that loaded them at exit when
psycopg's are loaded too, so the test process never imports ITK.

Protocol: one JSON request per line on stdin, one JSON answer per line on stdout.
``{"op": "write", "path", "pixels": .npy path (x, y, z), "version": str | null,
"calibrated": bool, "created": str}`` -> ``{}``;
``{"op": "read", "path", "pixels": .npy path to write}`` -> the header fields.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from typing import Any

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import itk

CALIBRATION = {"MuScaling": 4096.0, "MuWater": 0.24, "RescaleSlope": 1603.5,
               "RescaleIntercept": -391.2}  # fmt: skip


def write(request: dict[str, Any]) -> dict[str, Any]:
    pixels = np.load(request["pixels"])
    image = itk.image_from_array(np.ascontiguousarray(pixels.transpose(2, 1, 0)))
    image.SetSpacing([0.5, 0.25, 0.125])
    image.SetOrigin([1.0, 2.0, 3.0])
    fields = image.GetMetaDataDictionary()
    fields["CreationDate"] = request["created"]
    fields["ModificationDate"] = request["created"]
    if request.get("version"):
        fields["Version"] = request["version"]
    if request.get("calibrated"):
        for key, value in CALIBRATION.items():
            number = itk.MetaDataObject[itk.D].New()  # a Python float would be a C float
            number.SetMetaDataObjectValue(value)
            fields.Set(key, number)
        fields["RescaleUnits"] = "mg HA/ccm"
    itk.imwrite(image, request["path"])
    return {}


def read(request: dict[str, Any]) -> dict[str, Any]:
    io = itk.ScancoImageIO.New()
    io.SetFileName(request["path"])
    io.ReadImageInformation()
    pixels = itk.array_from_image(itk.imread(request["path"])).transpose(2, 1, 0)
    np.save(request["pixels"], pixels)
    return {
        "dimensions": [io.GetDimensions(i) for i in range(3)],
        "spacing": [io.GetSpacing(i) for i in range(3)],
        "origin": [io.GetOrigin(i) for i in range(3)],
        "version": io.GetVersion(),
        "mu_scaling": io.GetMuScaling(),
        "mu_water": io.GetMuWater(),
        "rescale_units": io.GetRescaleUnits(),
        "rescale_slope": io.GetRescaleSlope(),
        "rescale_intercept": io.GetRescaleIntercept(),
        "rescale_type": io.GetRescaleType(),
        "creation_date": io.GetCreationDate(),
    }


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        try:
            answer = {"ok": (write if request["op"] == "write" else read)(request)}
        except Exception as exc:  # reported to the test, which fails with it
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    sys.stdout.flush()
    os._exit(0)  # skip the interpreter's teardown, where ITK's modules crash


if __name__ == "__main__":
    main()
