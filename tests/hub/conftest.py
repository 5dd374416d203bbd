"""Fixtures of the Hub tests: a loopback Hub the real huggingface_hub client talks to, and a tiny saved UMedPT."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
COLIN27 = Path("/usr/share/mricron/templates/ch2.nii.gz")
# one task per type, with the modalities the demo reads
HUB_TASKS = {
    "chest": {"type": "classification", "labels": ["normal", "effusion", "nodule"], "modality": "xray"},
    "findings": {"type": "multilabel", "labels": ["opacity", "device"], "modality": "xray"},
    "tissue": {"type": "segmentation", "labels": ["background", "grey", "white"], "modality": "mri"},
    "nuclei": {"type": "detection", "labels": ["nucleus"], "modality": "microscopy"},
}


@pytest.fixture
def hub_tasks() -> dict:
    """The tasks of the tiny model: one per type."""
    return {name: dict(spec) for name, spec in HUB_TASKS.items()}


@pytest.fixture
def hub_client(tmp_path, monkeypatch):
    """The already-imported huggingface_hub client let online (HF_HUB_OFFLINE=0), without Xet, caching in tmp_path."""
    from huggingface_hub import constants

    hf_home = tmp_path / "hf_home"
    for key, value in {"HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_XET": "1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)  # the client would upload through Xet otherwise
    monkeypatch.setattr(constants, "HF_HOME", str(hf_home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    return constants


@pytest.fixture
def loopback_hub(tmp_path, monkeypatch, hub_client):
    """A running loopback Hub; the environment and the already-imported huggingface_hub point at it."""
    from hub_server import LoopbackHub

    hub = LoopbackHub(tmp_path / "hub-storage", token="hf_loopback_test_token").start()
    for key, value in hub.client_env().items():
        monkeypatch.setenv(key, value)
    # huggingface_hub read these when it was imported: point the live module at the loopback Hub too
    monkeypatch.setattr(hub_client, "ENDPOINT", hub.endpoint)
    template = hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    monkeypatch.setattr(hub_client, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    yield hub
    hub.stop()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny UMedPTForMultiTask (one task per type) saved with its image processor (64 x 64)."""
    import torch

    from umedpt_hf import UMedPTForMultiTask, tiny_config
    from umedpt_hf.image_processing_umedpt import UMedPTImageProcessor

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_umedpt")
    UMedPTForMultiTask(tiny_config(tasks=HUB_TASKS)).eval().save_pretrained(folder)
    UMedPTImageProcessor(size={"height": 64, "width": 64}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def space_app():
    """hub_cards/space/app.py imported as a module (it is a Space's script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("umedpt_space_app", REPO_ROOT / "hub_cards" / "space" / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def demo_inputs(tmp_path) -> dict[str, str]:
    """Real images in the four formats the demo reads."""
    import pydicom.data
    import skimage.data
    from PIL import Image

    png = tmp_path / "cells.png"
    Image.fromarray(skimage.data.cell()).save(png)
    jpeg = tmp_path / "ihc.jpg"
    Image.fromarray(skimage.data.immunohistochemistry()).save(jpeg, quality=90)
    dicom = pydicom.data.get_testdata_file("CT_small.dcm")
    if dicom is None:
        pytest.skip("pydicom-data is not installed")
    if COLIN27.is_file():
        nifti = str(COLIN27)
    else:  # mricron-data missing: a small real volume from nilearn instead
        nilearn_datasets = pytest.importorskip("nilearn.datasets")
        nifti = str(tmp_path / "mni.nii.gz")
        nilearn_datasets.load_mni152_template(2).to_filename(nifti)
    return {"png": str(png), "jpeg": str(jpeg), "dicom": dicom, "nifti": nifti}
