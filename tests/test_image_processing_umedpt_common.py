"""UMedPTImageProcessor against transformers' own ImageProcessingTestMixin (the installed version's)."""

from __future__ import annotations

import unittest

from transformers_compat import common_tests

from umedpt_hf.image_processing_umedpt import UMedPTImageProcessor

common = common_tests("test_image_processing_common")


class UMedPTImageProcessingTester(common.ImageProcessingTester):
    def __init__(self, parent, **kwargs):
        kwargs.setdefault("size", {"height": 18, "width": 20})
        kwargs.setdefault("num_labels", 3)
        kwargs.setdefault("modality", "microscopy")
        super().__init__(parent, batch_size=7, min_resolution=30, max_resolution=80, **kwargs)

    def _get_image_processing_classes(self):
        return {"pil": UMedPTImageProcessor}


class UMedPTImageProcessingTest(
    common.ImageProcessingTestMixin, common.PostProcessSemanticSegmentationTestMixin, unittest.TestCase
):
    image_processor_tester_class = UMedPTImageProcessingTester

    @unittest.skip(reason="Converts inputs to its channel policy (num_channels 1 or 3): a 4th channel is dropped")
    def test_call_numpy_4_channels(self):
        pass

    @unittest.skip(reason="PIL backend only: torchvision does not import with the supported CPU torch (torch resizes)")
    def test_new_models_require_torchvision_backend(self):
        pass
