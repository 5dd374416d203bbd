"""umedpt_hf: UMedPT, a multi-task biomedical imaging foundation model, for the Hugging Face stack.

Importing the package registers the UMedPT classes with the transformers Auto classes."""

from transformers import (
    AutoBackbone,
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForImageClassification,
    AutoModelForObjectDetection,
    AutoModelForPreTraining,
    AutoModelForSemanticSegmentation,
)

from .configuration_umedpt import TASK_TYPES, UMedPTConfig
from .image_processing_umedpt import UMedPTImageProcessor
from .modeling_umedpt import (
    UMedPTBackbone,
    UMedPTForImageClassification,
    UMedPTForMultiTask,
    UMedPTForObjectDetection,
    UMedPTForSemanticSegmentation,
    UMedPTModel,
    UMedPTModelOutput,
    UMedPTObjectDetectionOutput,
    UMedPTPreTrainedModel,
)
from .presets import config_from_preset, swinv2_t_config, tiny_config

__version__ = "0.1.0"

AutoConfig.register("umedpt", UMedPTConfig, exist_ok=True)
for _auto_class, _model_class in (
    (AutoModel, UMedPTModel),
    (AutoModelForPreTraining, UMedPTForMultiTask),
    (AutoModelForImageClassification, UMedPTForImageClassification),
    (AutoModelForSemanticSegmentation, UMedPTForSemanticSegmentation),
    (AutoModelForObjectDetection, UMedPTForObjectDetection),
    (AutoBackbone, UMedPTBackbone),
):
    _auto_class.register(UMedPTConfig, _model_class, exist_ok=True)
AutoImageProcessor.register(UMedPTConfig, image_processor_classes={"pil": UMedPTImageProcessor}, exist_ok=True)
# preprocessor_config.json gets an auto_map and the processor modules are copied next to it (remote code)
UMedPTImageProcessor.register_for_auto_class("AutoImageProcessor")

# conversion of foreign checkpoints loads lazily (umedpt_hf.conversion; the model files never import it)
_CONVERSION_EXPORTS = ("convert_checkpoint", "init_encoder_from", "export_timm")


def __getattr__(name: str):
    if name in _CONVERSION_EXPORTS:
        from . import conversion

        return getattr(conversion, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "TASK_TYPES",
    "UMedPTBackbone",
    "UMedPTConfig",
    "UMedPTForImageClassification",
    "UMedPTForMultiTask",
    "UMedPTForObjectDetection",
    "UMedPTForSemanticSegmentation",
    "UMedPTImageProcessor",
    "UMedPTModel",
    "UMedPTModelOutput",
    "UMedPTObjectDetectionOutput",
    "UMedPTPreTrainedModel",
    "config_from_preset",
    "convert_checkpoint",
    "swinv2_t_config",
    "tiny_config",
]
