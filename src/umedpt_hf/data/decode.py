"""Decode ``datasets.Image`` cells straight into numpy arrays (no PIL round trip for grey 8/16-bit PNG and TIFF).

`make_task_dataloader` reads image and mask columns undecoded (``Image(decode=False)``: ``{"bytes", "path"}``) and the
collator decodes them here: grey 8- and 16-bit PNG / TIFF with OpenCV (into numpy, values exact), everything else
(RGB, palette, 32-bit "I" images such as int16 HU) with PIL as `datasets` would. PIL images and arrays pass through.
"""

from __future__ import annotations

import io
from typing import Any

import cv2
import numpy as np
from PIL import Image as PILImage

FAST_MODES = {"L", "I;16"}  # grey 8-bit, grey 16-bit (little-endian values in numpy)
FAST_FORMATS = {"PNG", "TIFF"}


def _bytes_of(value: dict[str, Any]) -> bytes:
    if value.get("bytes") is not None:
        return value["bytes"]
    if value.get("path") is None:
        raise ValueError("an image cell has neither bytes nor a path")
    with open(value["path"], "rb") as stream:
        return stream.read()


def decode_cell(value: Any) -> Any:
    """A numpy array (grey PNG / TIFF decoded by OpenCV) or a loaded PIL image for one Image cell; other values as
    they are (already decoded images and arrays)."""
    if not isinstance(value, dict) or not {"bytes", "path"} >= set(value) or not value:
        return value
    data = _bytes_of(value)
    with PILImage.open(io.BytesIO(data)) as header:  # reads the header only
        mode, kind = header.mode, header.format
    if mode in FAST_MODES and kind in FAST_FORMATS:
        array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        expected = np.uint8 if mode == "L" else np.uint16
        if array is not None and array.ndim == 2 and array.dtype == expected:
            return array
    image = PILImage.open(io.BytesIO(data))
    image.load()
    return image
