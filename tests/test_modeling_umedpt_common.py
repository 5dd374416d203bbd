"""transformers' own common tests (ModelTesterMixin, BackboneTesterMixin, ConfigTester of the installed version) run
against the UMedPT classes. The skips are those transformers' vision models of the same kind use (UperNet: an
AutoBackbone + decoder model; ConvNext / Dinov2: backbones with classification heads), each with its reason."""

from __future__ import annotations

import unittest

import pytest
import torch
from transformers import Swinv2Config
from transformers.models.auto import modeling_auto
from transformers.utils import logging
from transformers_compat import common_tests
from umedpt_test_utils import SMALL_DECODERS

from umedpt_hf import (
    UMedPTBackbone,
    UMedPTConfig,
    UMedPTForImageClassification,
    UMedPTForObjectDetection,
    UMedPTForSemanticSegmentation,
    UMedPTModel,
)

ModelTesterMixin = common_tests("test_modeling_common").ModelTesterMixin
floats_tensor = common_tests("test_modeling_common").floats_tensor
BackboneTesterMixin = common_tests("test_backbone_common").BackboneTesterMixin
ConfigTester = common_tests("test_configuration_common").ConfigTester

# the name tables the common tests read to decide which inputs and labels a class gets (what transformers' own models
# are listed in); registered for the duration of this module only
NAME_TABLES = {
    "MODEL_MAPPING_NAMES": "UMedPTModel",
    "MODEL_FOR_BACKBONE_MAPPING_NAMES": "UMedPTBackbone",
    "MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES": "UMedPTForImageClassification",
    "MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING_NAMES": "UMedPTForSemanticSegmentation",
    "MODEL_FOR_OBJECT_DETECTION_MAPPING_NAMES": "UMedPTForObjectDetection",
}


@pytest.fixture(autouse=True, scope="module")
def umedpt_in_the_name_tables():
    for table, class_name in NAME_TABLES.items():
        getattr(modeling_auto, table)["umedpt"] = class_name
    yield
    for table in NAME_TABLES:
        getattr(modeling_auto, table).pop("umedpt", None)


class UMedPTModelTester:
    """A two-stage Swin-V2 UMedPT with every decoder at its smallest (the common tests want <= 2 layers)."""

    def __init__(self, parent, batch_size: int = 2, image_size: int = 32) -> None:
        self.parent = parent
        self.batch_size = batch_size
        self.image_size = image_size
        self.num_channels = 3
        self.patch_size = 4
        self.embed_dim = 8
        self.depths = [1, 1]
        self.num_hidden_layers = len(self.depths)
        self.seq_length = (image_size // self.patch_size) ** 2  # tokens of the first hidden state
        self.hidden_size = self.embed_dim  # width of the first hidden state
        self.num_labels = 3
        self.is_training = True

    def get_config(self) -> UMedPTConfig:
        backbone = Swinv2Config(
            image_size=self.image_size,
            patch_size=self.patch_size,
            embed_dim=self.embed_dim,
            depths=self.depths,
            num_heads=[1, 2],
            window_size=2,
            drop_path_rate=0.0,
            out_features=["stage1", "stage2"],
        )
        return UMedPTConfig(
            backbone_config=backbone, fpn_num_extra_levels=1, num_labels=self.num_labels, **SMALL_DECODERS
        )

    def prepare_config_and_inputs_for_common(self):
        pixel_values = floats_tensor([self.batch_size, self.num_channels, self.image_size, self.image_size])
        return self.get_config(), {"pixel_values": pixel_values}


class UMedPTModelTest(ModelTesterMixin, unittest.TestCase):
    all_model_classes = (
        UMedPTModel,
        UMedPTForImageClassification,
        UMedPTForSemanticSegmentation,
        UMedPTForObjectDetection,
        UMedPTBackbone,
    )
    test_resize_embeddings = False  # as ConvNext / UperNet: no token embeddings
    has_attentions = False  # as UperNet: the decoders sit on backbone feature maps, no attention outputs
    test_can_init_all_missing_weights_before_2023 = True  # run it: _init_weights covers every UMedPT weight
    # as Step3p7 / LightOnOcr: last_hidden_state is a (B, C, H, W) map, not (B, tokens, hidden_size)
    skip_test_image_features_output_shape = True

    def setUp(self) -> None:
        # the common tests read transformers' warnings (e.g. "Reinit due to size mismatch"); conftest silences them
        self.verbosity = logging.get_verbosity()
        logging.set_verbosity_warning()
        self.model_tester = UMedPTModelTester(self)
        self.config_tester = ConfigTester(
            self,
            config_class=UMedPTConfig,
            has_text_modality=False,
            pixel_embedding_dim=8,
            fpn_channels=16,
            common_properties=["hidden_size", "num_channels"],
        )

    def tearDown(self) -> None:
        logging.set_verbosity(self.verbosity)

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        """As transformers' detection tests (DETR, YOLOS) do: detection labels are one dict of targets per image."""
        inputs = super()._prepare_for_class(inputs_dict, model_class, return_labels=return_labels)
        if return_labels and model_class is UMedPTForObjectDetection:
            inputs["labels"] = [
                {"class_labels": torch.tensor([index % 3]), "boxes": torch.tensor([[0.5, 0.5, 0.4, 0.3]])}
                for index in range(self.model_tester.batch_size)
            ]
        return inputs

    def test_config(self):
        self.config_tester.run_common_tests()

    @unittest.skip(reason="UMedPT does not support input and output embeddings (as UperNet, ConvNext)")
    def test_model_get_set_embeddings(self):
        pass


class UMedPTBackboneTest(BackboneTesterMixin, unittest.TestCase):
    all_model_classes = (UMedPTBackbone,)
    config_class = UMedPTConfig
    has_attentions = False  # as ConvNextBackboneTest

    def setUp(self) -> None:
        self.model_tester = UMedPTModelTester(self)
