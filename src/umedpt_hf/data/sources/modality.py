"""Modality classification (CT, MRI, ultrasound, microscopy) over the installed pretraining sources.

Images are grey, per-image scaled to uint8 (CT: window L40/W400) and 64 px. Volumes and tiles keep the spatial
partition of their source; single DICOM files go to train, cine loops are cut into blocks of frames. The sources of
the held-out tasks (the MNI152 template, the two radiographs) are not used: there is no X-ray class, because the only
offline radiographs belong to the held-out X-ray task.
"""

from __future__ import annotations

import numpy as np

from ..schema import make_spec
from .base import BuiltTask, Located, Source, append_row, cap_rows, empty_rows, package_dir
from .spatial import BlockPartition, to_square, to_uint8
from .xray import dicom_image_id

SIZE = 64
MODALITY_CLASSES = ("ct", "mri", "ultrasound", "microscopy")
SINGLE_DICOMS = {  # file: class (files of pydicom's own test set or of pydicom-data)
    "CT_small.dcm": "ct",
    "explicit_VR-UN.dcm": "ct",
    "J2K_pixelrep_mismatch.dcm": "ct",
    "693_UNCR.dcm": "ct",
    "MR_small.dcm": "mri",
    "MR2_UNCR.dcm": "mri",
    "emri_small.dcm": "mri",
    "MR-SIEMENS-DICOM-WithOverlays.dcm": "mri",
    "examples_overlay.dcm": "mri",
    "OBXXXX1A.dcm": "ultrasound",
    "US1_UNCR.dcm": "ultrasound",
    "gdcm-US-ALOKA-16.dcm": "ultrasound",
    "examples_rgb_color.dcm": "ultrasound",
    "color-px.dcm": "ultrasound",
}
CINE_LOOPS = {"color3d_jpeg_baseline.dcm": "ultrasound", "examples_ybr_color.dcm": "ultrasound"}
CT_WINDOW = (-160.0, 240.0)


def locate_pydicom() -> Located | None:
    found = {}
    for package in ("pydicom", "data_store"):
        root = package_dir(package)
        if root is None:
            continue
        for folder in (root / "data" / "test_files", root / "data"):
            for name in (*SINGLE_DICOMS, *CINE_LOOPS):
                if (folder / name).is_file():
                    found.setdefault(name, folder / name)
    return found or None


def locate_skimage() -> Located | None:
    return {"module": "skimage.data"} if package_dir("skimage") is not None else None


PYDICOM = Source(
    name="pydicom",
    description="DICOM test files of pydicom (and pydicom-data when installed): CT, MR and ultrasound images",
    install_hint="pip install pydicom pydicom-data",
    licence="pydicom MIT; test images from public DICOM sample sets (see pydicom's test_files README)",
    locate=locate_pydicom,
)
SKIMAGE = Source(
    name="skimage",
    description="scikit-image bundled microscopy images: cell (phase contrast), immunohistochemistry",
    install_hint="pip install scikit-image",
    licence="scikit-image BSD-3; images public domain / CC0 per skimage.data",
    locate=locate_skimage,
)


def _grey(pixels: np.ndarray) -> np.ndarray:
    """Luminance of an RGB frame (pydicom's ``pixel_array`` already converts YBR to RGB); grey frames unchanged."""
    if pixels.ndim == 3 and pixels.shape[-1] == 3:
        return pixels.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return pixels


def _picture(pixels: np.ndarray, modality: str) -> np.ndarray:
    scaled = to_uint8(pixels, *CT_WINDOW) if modality == "ct" else to_uint8(pixels)
    return to_square(scaled, SIZE)[0]


def _add(rows: dict, split: str | None, pixels: np.ndarray, modality: str, source: str, region: list[int]) -> None:
    if split is not None:
        append_row(
            rows,
            split,
            image=_picture(pixels, modality),
            label=MODALITY_CLASSES.index(modality),
            source=source,
            region=region,
        )


def _add_volume(rows: dict, stack: np.ndarray, modality: str, source: str, step: int, min_fraction: float = 0.1):
    partition = BlockPartition(length=len(stack), block=6, gap=1)
    _, height, width = stack.shape
    for z in range(0, len(stack), step):
        foreground = (stack[z] > np.percentile(stack[z], 5)).mean()
        if foreground >= min_fraction:
            _add(rows, partition.split_of(z, z + 1), stack[z], modality, source, [z, z + 1, 0, height, 0, width])


def _add_tiles(rows: dict, image: np.ndarray, source: str, tile: int = 64) -> None:
    grey = _grey(image)
    partition = BlockPartition(length=grey.shape[1], block=128, pattern=("train", "validation", "train", "test"))
    for x0, x1, split in partition.windows(tile, tile):
        for y0 in range(0, grey.shape[0] - tile + 1, tile):
            _add(rows, split, grey[y0 : y0 + tile, x0:x1], "microscopy", source, [0, 1, y0, y0 + tile, x0, x1])


def build_modality_cls(located: dict[str, Located]) -> BuiltTask:
    rows = empty_rows(("image", "label", "source", "region"))
    sources = []
    if "invesalius" in located:
        from .head_ct import CT_SOURCE, load_head_ct

        _add_volume(rows, load_head_ct(str(located["invesalius"]["project"])), "ct", CT_SOURCE, step=1)
        sources.append("invesalius")
    if "mricron" in located:
        from .brain import COLIN27_T1_ID, load_colin27

        _add_volume(rows, load_colin27(located["mricron"])["t1"], "mri", COLIN27_T1_ID, step=2)
        sources.append("mricron")
    if "pydicom" in located:
        from ...io import load_dicom

        for name, path in located["pydicom"].items():
            pixels, _ = load_dicom(path)
            modality = SINGLE_DICOMS.get(name) or CINE_LOOPS[name]
            frames = pixels if (pixels.ndim == 4 or (pixels.ndim == 3 and pixels.shape[-1] != 3)) else pixels[None]
            for index, frame in enumerate(frames):
                grey = _grey(frame)
                split = (
                    BlockPartition(len(frames), 10, gap=1).split_of(index, index + 1) if name in CINE_LOOPS else "train"
                )
                _add(
                    rows,
                    split,
                    grey,
                    modality,
                    dicom_image_id(name),
                    [index, index + 1, 0, grey.shape[0], 0, grey.shape[1]],
                )
        sources.append("pydicom")
    if "stardist" in located:
        from .nuclei import NUCLEI_SOURCE, load_nuclei

        paths = located["stardist"]
        _add_tiles(rows, load_nuclei(str(paths["image"]), str(paths["instances"]))[0], NUCLEI_SOURCE)
        from PIL import Image

        _add_tiles(rows, np.asarray(Image.open(paths["histo"]).convert("RGB")), "stardist_histo")
        sources.append("stardist")
    if "skimage" in located:
        from skimage import data

        _add_tiles(rows, data.cell(), "skimage_cell")
        _add_tiles(rows, data.immunohistochemistry(), "skimage_immunohistochemistry")
        sources.append("skimage")
    present = sorted({MODALITY_CLASSES[label] for label in rows["train"]["label"]})
    if len(present) < 2:
        raise ValueError(f"modality_cls needs images of at least two modalities; found only {present}")
    return BuiltTask(
        name="modality_cls",
        spec=make_spec("classification", list(MODALITY_CLASSES), "mixed"),
        rows=cap_rows(rows, {"train": 60, "validation": 20, "test": 20}, by="label", seed=4),
        label_origin="the modality of the source (DICOM Modality tag, or the kind of the source image)",
        description="slices, patches, frames and tiles of every installed source, grey uint8, 64 px",
        sources=sources,
    )
