"""Single-task UMedPT models for transformers' tooling (Auto classes, pipelines, `Trainer`).

From a multi-task checkpoint, `from_pretrained(folder, task=name)` takes that task's labels and trained head (and the
shared decoder it uses). Without `task=` and without `num_labels` / `id2label`, a multi-task checkpoint with exactly one
task of the model's kind gives that task (with a warning saying so); with several or none it raises, listing them."""

from __future__ import annotations

import copy
import os
import re

import torch
from transformers.utils import logging
from transformers.utils.generic import can_return_tuple

from .configuration_umedpt import UMedPTConfig
from .detection_umedpt import build_detection_decoder
from .encoder_umedpt import UMedPTModel, UMedPTPreTrainedModel
from .heads_umedpt import build_head, task_output
from .pixel_decoder_umedpt import build_pixel_decoder
from .validation_umedpt import CLASSIFICATION_PROBLEMS

logger = logging.get_logger(__name__)

HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder", "proxies")
LABEL_KWARGS = ("num_labels", "id2label", "label2id")


class UMedPTSingleTaskModel(UMedPTPreTrainedModel):
    """Base of the single-task models: one head named `head_name` for a task of one of `task_types`, checked and
    decoded by the same code as `UMedPTForMultiTask`."""

    task_types: tuple[str, ...] = ()
    head_name = ""
    pipeline_task = ""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, task: str | None = None, **kwargs):
        r"""
        Load as usual; with `task=name` from a multi-task checkpoint, take that task's labels (`id2label`,
        `problem_type`) and its trained head. See the module docstring for a multi-task checkpoint without `task=`.
        """
        if pretrained_model_name_or_path is None or (task is None and any(key in kwargs for key in LABEL_KWARGS)):
            return super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        config = kwargs.get("config")
        if not isinstance(config, UMedPTConfig):
            source = config if isinstance(config, (str, os.PathLike)) else pretrained_model_name_or_path
            hub_kwargs = {key: kwargs[key] for key in HUB_KWARGS if key in kwargs}
            config = cls.config_class.from_pretrained(source, **hub_kwargs)
        if task is None:
            if "UMedPTForMultiTask" not in (config.architectures or []):
                return super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
            task = cls._only_task_of_kind(config, pretrained_model_name_or_path)
        kwargs["config"] = cls.config_for_task(config, task, pretrained_model_name_or_path)
        head_keys = rf"^heads\.{re.escape(task)}\."
        kwargs["key_mapping"] = {**(kwargs.get("key_mapping") or {}), head_keys: f"{cls.head_name}."}
        loaded = super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # (model, loading info) with output_loading_info
        # the model saves its head under its own name, not back under the multi-task checkpoint's
        conversions = getattr(model, "_weight_conversions", None) or []
        model._weight_conversions = [c for c in conversions if getattr(c, "source_patterns", None) != [head_keys]]
        return loaded

    @classmethod
    def _only_task_of_kind(cls, config: UMedPTConfig, source) -> str:
        candidates = [name for name, spec in config.tasks.items() if spec["type"] in cls.task_types]
        if len(candidates) == 1:
            logger.warning(
                f"{source} is a multi-task UMedPT checkpoint: {cls.__name__} takes the labels and head of its only "
                f"{cls.pipeline_task} task {candidates[0]!r} (pass task=<name> to choose explicitly)."
            )
            return candidates[0]
        found = f"the {cls.pipeline_task} tasks {candidates}" if candidates else f"no {cls.pipeline_task} task"
        raise ValueError(
            f"{source} is a multi-task UMedPT checkpoint with {found}: pass task=<name> to take one task's labels "
            f"and trained head, or num_labels= / id2label= for a fresh head (for a pipeline, load the model so and "
            f"pass it with image_processor={source!r})."
        )

    @classmethod
    def config_for_task(cls, config: UMedPTConfig, task: str, source=None) -> UMedPTConfig:
        """A copy of `config` whose labels (and problem type) are those of `config.tasks[task]`."""
        if task not in config.tasks:
            known = ", ".join(config.tasks) or "none"
            raise ValueError(f"{source or 'The config'} has no task {task!r}; its tasks: {known}.")
        spec = config.tasks[task]
        if spec["type"] not in cls.task_types:
            raise ValueError(
                f"Task {task!r} is a {spec['type']} task; {cls.__name__} serves {' or '.join(cls.task_types)} tasks."
            )
        config = copy.deepcopy(config)
        config.id2label = dict(enumerate(spec["labels"]))
        config.label2id = {label: index for index, label in enumerate(spec["labels"])}
        if spec["type"] in ("classification", "multilabel"):
            config.problem_type = {v: k for k, v in CLASSIFICATION_PROBLEMS.items()}[spec["type"]]
        return config

    def __init__(self, config: UMedPTConfig) -> None:
        super().__init__(config)
        kind = self.task_types[0]
        # only the classifier reads the image vector: the other models are built without the squeezer
        self.umedpt = UMedPTModel(config, add_pooling_layer=kind == "classification")
        if kind == "segmentation":
            self.pixel_decoder = build_pixel_decoder(self.umedpt.channels, config)
        if kind == "detection":
            self.detection_decoder = build_detection_decoder(self.umedpt.channels, config)
        setattr(self, self.head_name, build_head(kind, config.num_labels, config))
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        labels=None,
        output_hidden_states: bool | None = None,
        check_inputs: bool = True,
        **kwargs,
    ):
        r"""
        labels (*optional*):
            The labels of the model's task type (see the class docstring).
        check_inputs (`bool`, *optional*, defaults to `True`):
            Check the values of the pixels and labels (one host read); `False` checks types and shapes only.
        """
        return self._run(self.task_type_for(labels), pixel_values, labels, output_hidden_states, check_inputs)

    def task_type_for(self, labels) -> str:
        """The task type whose loss the labels get: the model's own."""
        return self.task_types[0]

    def _run(self, task_type: str, pixel_values: torch.Tensor, labels, output_hidden_states, check_inputs=True):
        """Check the inputs, encode, and run the decoder and head of `task_type`."""
        encoded, labels = self._checked_encoding(
            self.pipeline_task,
            task_type,
            self.config.num_labels,
            pixel_values,
            labels,
            output_hidden_states,
            check_inputs,
        )
        return task_output(
            task_type,
            getattr(self, self.head_name),
            encoded,
            labels,
            pixel_values.shape[-2:],
            self.config,
            pixel_decoder=getattr(self, "pixel_decoder", None),
            detection_decoder=getattr(self, "detection_decoder", None),
        )


class UMedPTForImageClassification(UMedPTSingleTaskModel):
    """UMedPT encoder + one linear head, for `Trainer` and the image-classification pipeline. Labels come from
    `config.id2label`; `labels` are class indices `(batch,)`, multi-label targets `(batch, num_labels)` in [0, 1], or
    regression targets. The loss follows `config.problem_type` as in transformers (when unset: regression for
    `num_labels=1`, multi-label for float or bool labels, single-label for integer labels): cross-entropy / ln C,
    binary cross-entropy / ln 2, or mean squared error."""

    task_types = ("classification", "multilabel")
    head_name = "classifier"
    pipeline_task = "image-classification"

    def task_type_for(self, labels) -> str:
        """The loss to use: "classification", "multilabel" or "regression"."""
        problem = self.config.problem_type
        if problem is None:
            if self.config.num_labels == 1:
                problem = "regression"
            elif isinstance(labels, torch.Tensor) and (labels.is_floating_point() or labels.dtype == torch.bool):
                problem = "multi_label_classification"
            else:
                problem = "single_label_classification"
        return CLASSIFICATION_PROBLEMS[problem]


class UMedPTForSemanticSegmentation(UMedPTSingleTaskModel):
    """UMedPT encoder (without the squeezer) + the shared pixel decoder + one segmentation head (`config.id2label`
    includes background). `labels`: class indices `(batch, H, W)`, or `config.segmentation_ignore_index` for pixels
    without a label."""

    task_types = ("segmentation",)
    head_name = "segmentation_head"
    pipeline_task = "semantic-segmentation"


class UMedPTForObjectDetection(UMedPTSingleTaskModel):
    """UMedPT encoder (without the squeezer) + the shared FPN/FCOS decoder + one FCOS head (`config.id2label` holds
    the object classes). `labels`: one dict per image with `class_labels` `(N,)` and normalised `(cx, cy, w, h)`
    `boxes` `(N, 4)`."""

    task_types = ("detection",)
    head_name = "detection_head"
    pipeline_task = "object-detection"
