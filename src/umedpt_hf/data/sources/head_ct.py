"""Head CT from the InVesalius example project ``Cranium.inv3`` (Debian invesalius-examples), int16 HU."""

from __future__ import annotations

import functools
import plistlib
import tarfile
from pathlib import Path

import numpy as np

from ..schema import make_spec
from .base import BuiltTask, Located, Source, append_row, empty_rows, existing
from .spatial import BlockPartition, to_square

CRANIUM = Path("/usr/share/doc/invesalius-examples/examples/Cranium.inv3")
BONE_HU, BODY_HU = 226, -142  # the thresholds of the bone and skin masks saved in the project
CT_SOURCE, SEG_SIZE = "invesalius_cranium_ct", 128  # CT_SOURCE: the source id of the volume


def locate_invesalius() -> Located | None:
    return existing({"project": CRANIUM})


INVESALIUS = Source(
    name="invesalius",
    description="head CT 108x256x256 int16 HU from the InVesalius example project Cranium.inv3",
    install_hint="apt-get install invesalius-examples",
    licence="GPL-2 (InVesalius examples, Debian invesalius-examples)",
    locate=locate_invesalius,
)


@functools.lru_cache(maxsize=2)
def load_head_ct(path: str) -> np.ndarray:
    """The CT volume (slices, rows, cols) in HU, read from the project tar (main.plist gives dtype and shape)."""
    try:
        with tarfile.open(path) as archive:
            members = {Path(m.name).name: m for m in archive.getmembers()}
            header = plistlib.loads(archive.extractfile(members["main.plist"]).read())
            matrix = header["matrix"]
            raw = archive.extractfile(members[matrix["filename"]]).read()
    except (tarfile.TarError, KeyError, plistlib.InvalidFileException) as error:
        raise ValueError(f"{path} is not a readable InVesalius project: {error}") from None
    shape, dtype = tuple(matrix["shape"]), np.dtype(matrix["dtype"])
    if len(raw) != int(np.prod(shape)) * dtype.itemsize:
        raise ValueError(f"{path}: matrix has {len(raw)} bytes, expected {shape} x {dtype}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).astype(np.int16)


def slab_partition(num_slices: int) -> BlockPartition:
    return BlockPartition(length=num_slices, block=6, gap=1)


def build_head_ct_tissue_seg(located: dict[str, Located]) -> BuiltTask:
    volume = load_head_ct(str(located["invesalius"]["project"]))
    labels = np.zeros(volume.shape, dtype=np.uint8)
    labels[volume >= BODY_HU] = 1
    labels[volume >= BONE_HU] = 2
    partition = slab_partition(len(volume))
    rows = empty_rows(("image", "mask", "source", "region"))
    _, height, width = volume.shape
    for z in range(len(volume)):
        split = partition.split_of(z, z + 1)
        if split is None:
            continue
        image, _, _ = to_square(volume[z], SEG_SIZE)
        mask, _, _ = to_square(labels[z], SEG_SIZE, is_mask=True)
        append_row(rows, split, image=image, mask=mask, source=CT_SOURCE, region=[z, z + 1, 0, height, 0, width])
    return BuiltTask(
        name="head_ct_tissue_seg",
        spec=make_spec("segmentation", ["background", "soft_tissue", "bone"], "ct"),
        rows=rows,
        label_origin=f"HU thresholds of the masks saved in the project: body >= {BODY_HU} HU, bone >= {BONE_HU} HU",
        description="axial slices of a head CT (int16 HU kept); air / soft tissue / bone segmentation",
    )
