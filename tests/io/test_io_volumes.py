"""extract_volume_features: one vector per slice of a real MNI152 volume through a tiny UMedPT encoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from umedpt_hf.image_processing_umedpt import UMedPTImageProcessor
from umedpt_hf.io import extract_volume_features, iter_slices, load_nifti


@pytest.fixture(scope="module")
def small_volume(mni_nifti_path) -> np.ndarray:
    volume, _ = load_nifti(mni_nifti_path)
    return volume[::4, ::4, ::6]  # (50, 59, 32): 32 axial slices


@pytest.fixture(scope="module")
def tiny_encoder():
    from umedpt_hf.modeling_umedpt import UMedPTModel
    from umedpt_hf.presets import tiny_config

    torch.manual_seed(0)
    return UMedPTModel(tiny_config())


PROCESSOR = UMedPTImageProcessor(size={"height": 32, "width": 32}, modality="mri")


def test_one_feature_vector_per_slice(small_volume, tiny_encoder):
    tiny_encoder.train()
    features = extract_volume_features(tiny_encoder, PROCESSOR, small_volume, axis=2, batch_size=8, progress=False)
    assert features.shape == (32, tiny_encoder.config.hidden_size) and features.dtype == torch.float32
    assert torch.isfinite(features).all()
    assert tiny_encoder.training  # the caller's mode is restored

    # the same as processing all slices at once with the volume's own percentiles
    low, high = np.percentile(small_volume.astype(np.float64), [0.5, 99.5])
    pixel_values = PROCESSOR(list(iter_slices(small_volume, axis=2)), value_range=(low, high))["pixel_values"]
    tiny_encoder.eval()
    with torch.no_grad():
        expected = tiny_encoder.get_image_features(pixel_values=pixel_values).pooler_output
    torch.testing.assert_close(features, expected, atol=1e-5, rtol=1e-4)

    # a subset gives the same rows; per-slice scaling differs from the shared volume scaling
    subset = extract_volume_features(tiny_encoder, PROCESSOR, small_volume, indices=[5, 20], progress=False)
    torch.testing.assert_close(subset, features[[5, 20]], atol=1e-5, rtol=1e-4)
    per_slice = extract_volume_features(
        tiny_encoder, PROCESSOR, small_volume, indices=[2], shared_intensity=False, progress=False
    )
    assert not torch.allclose(per_slice, features[[2]], atol=1e-4)


def test_ct_volume_uses_the_window_and_other_axes(tiny_encoder):
    hu = np.full((24, 40, 36), -1000, dtype=np.int16)
    hu[4:20, 10:30, 8:28] = 40  # soft tissue block in air
    features = extract_volume_features(
        tiny_encoder, PROCESSOR, hu, axis=0, batch_size=5, modality="ct", window="soft_tissue", progress=False
    )
    assert features.shape == (24, tiny_encoder.config.hidden_size)
    assert torch.allclose(features[0], features[-1], atol=1e-5)  # two air-only slices
    assert not torch.allclose(features[0], features[12], atol=1e-3)


def test_bad_volumes(tiny_encoder):
    with pytest.raises(ValueError, match="3-D volume"):
        extract_volume_features(tiny_encoder, PROCESSOR, np.zeros((8, 8)), progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        extract_volume_features(tiny_encoder, PROCESSOR, np.zeros((4, 8, 8)), batch_size=0, progress=False)
    with pytest.raises(TypeError, match="volume"):
        extract_volume_features(tiny_encoder, PROCESSOR, [[1, 2]], progress=False)
    with pytest.raises(ValueError, match="NaN"):
        extract_volume_features(tiny_encoder, PROCESSOR, np.full((2, 8, 8), np.nan), progress=False)
