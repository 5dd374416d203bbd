"""Offline sources of real biomedical images (installed packages) and the tasks of ``umedpt-mini`` built from them."""

from __future__ import annotations

from .base import BuiltTask, Source, TaskRecipe
from .brain import MNI152, MRICRON
from .brain_tasks import (
    build_colin27_deep_grey_det,
    build_colin27_lobe_multilabel,
    build_colin27_lobe_seg,
    build_mni152_lobe_cls,
)
from .harvard_oxford import HARVARD_OXFORD
from .head_ct import INVESALIUS, build_head_ct_tissue_seg
from .modality import PYDICOM, SKIMAGE, build_modality_cls
from .nuclei import STARDIST, build_nuclei_det
from .xray import PYDICOM_DATA, build_xray_bodypart_cls

SOURCES: dict[str, Source] = {
    s.name: s for s in (MNI152, MRICRON, HARVARD_OXFORD, INVESALIUS, STARDIST, PYDICOM_DATA, PYDICOM, SKIMAGE)
}

TASK_RECIPES: tuple[TaskRecipe, ...] = (
    TaskRecipe("colin27_lobe_seg", "segmentation", "mri", ("mricron",), build_colin27_lobe_seg),
    TaskRecipe("colin27_deep_grey_det", "detection", "mri", ("mricron",), build_colin27_deep_grey_det),
    TaskRecipe("colin27_lobe_multilabel", "multilabel", "mri", ("mricron",), build_colin27_lobe_multilabel),
    TaskRecipe("head_ct_tissue_seg", "segmentation", "ct", ("invesalius",), build_head_ct_tissue_seg),
    TaskRecipe("dsb2018_nuclei_det", "detection", "microscopy", ("stardist",), build_nuclei_det),
    TaskRecipe(
        "modality_cls",
        "classification",
        "mixed",
        (),
        build_modality_cls,
        optional_sources=("invesalius", "mricron", "pydicom", "stardist", "skimage"),
    ),
    TaskRecipe("mni152_lobe_cls", "classification", "mri", ("mni152", "harvard_oxford"), build_mni152_lobe_cls),
    TaskRecipe("xray_bodypart_cls", "classification", "xray", ("pydicom_data",), build_xray_bodypart_cls),
)


def locate_source(name: str):
    """Paths of the installed source ``name`` (None when it is not installed)."""
    if name not in SOURCES:
        raise ValueError(f"unknown source {name!r}; known: {sorted(SOURCES)}")
    return SOURCES[name].locate()


__all__ = ["SOURCES", "TASK_RECIPES", "BuiltTask", "Source", "TaskRecipe", "locate_source"]
