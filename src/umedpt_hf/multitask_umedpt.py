"""`UMedPTForMultiTask`: the encoder, the shared decoders the tasks need, and one head per task."""

from __future__ import annotations

import torch
from torch import nn
from transformers.utils.generic import can_return_tuple

from .configuration_umedpt import UMedPTConfig
from .detection_umedpt import build_detection_decoder
from .encoder_umedpt import UMedPTModel, UMedPTPreTrainedModel
from .heads_umedpt import build_task_head, task_output
from .outputs_umedpt import UMedPTModelOutput
from .pixel_decoder_umedpt import build_pixel_decoder


class UMedPTForMultiTask(UMedPTPreTrainedModel):
    """UMedPT for multi-task (pre)training: the encoder, the shared pixel decoder (built when a segmentation task needs
    it), the shared detection decoder (built when a detection task needs it) and one head per task.
    `forward(pixel_values, task=name, labels=None)` runs only the blocks that task needs."""

    def __init__(self, config: UMedPTConfig) -> None:
        super().__init__(config)
        self.umedpt = UMedPTModel(config)
        self.pixel_decoder: nn.Module | None = None
        self.detection_decoder: nn.Module | None = None
        self.heads = nn.ModuleDict()
        for name, spec in config.tasks.items():
            self._build_task(name, spec)
        self.post_init()

    def _build_task(self, name: str, spec: dict) -> list[nn.Module]:
        """Build the head of a task and any shared decoder it needs that is not there yet; return the new modules."""
        built = []
        if spec["type"] == "segmentation" and self.pixel_decoder is None:
            self.pixel_decoder = build_pixel_decoder(self.umedpt.channels, self.config)
            built.append(self.pixel_decoder)
        if spec["type"] == "detection" and self.detection_decoder is None:
            self.detection_decoder = build_detection_decoder(self.umedpt.channels, self.config)
            built.append(self.detection_decoder)
        self.heads[name] = build_task_head(spec, self.config)
        return [*built, self.heads[name]]

    @property
    def task_names(self) -> list[str]:
        return list(self.config.tasks)

    def add_task(self, name: str, spec: dict) -> None:
        """Add a task with a freshly initialised head (and the shared decoder it needs, if the model has none yet),
        e.g. a new downstream task on a pretrained model."""
        self.config.add_task(name, spec)
        reference = next(self.parameters())
        for module in self._build_task(name, self.config.tasks[name]):
            module.to(device=reference.device, dtype=reference.dtype)
            module.apply(self._init_weights)

    @can_return_tuple
    def get_image_features(self, pixel_values: torch.Tensor, **kwargs) -> UMedPTModelOutput:
        """The encoder's output; `.pooler_output` is the image vector (see `UMedPTModel.get_image_features`)."""
        return self.umedpt(pixel_values, return_dict=True, **kwargs)

    def _task_spec(self, task: str | None) -> tuple[str, dict]:
        if task is None and len(self.config.tasks) == 1:
            task = next(iter(self.config.tasks))
        if task not in self.config.tasks:
            known = ", ".join(self.config.tasks) or "none"
            raise ValueError(f"Unknown task {task!r}; this model has the tasks: {known}.")
        return task, self.config.tasks[task]

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        task: str | None = None,
        labels=None,
        output_hidden_states: bool | None = None,
        check_inputs: bool = True,
        **kwargs,
    ):
        r"""
        task (`str`, *optional*):
            The task to run (a key of `config.tasks`); may be left out when the model has one task.
        labels (*optional*):
            Per task type: class indices `(batch,)`; multi-label targets `(batch, num_labels)` in [0, 1]; a mask
            `(batch, H, W)` of class indices (or `segmentation_ignore_index`); a list of dicts with `class_labels`
            `(N,)` and normalised `(cx, cy, w, h)` `boxes` `(N, 4)`.
        check_inputs (`bool`, *optional*, defaults to `True`):
            Check the values of the pixels and labels (NaN, classes beyond the labels, boxes outside the image): one
            host read per forward. With `False` only types, shapes and dtypes are checked (for data checked before).
        """
        task, spec = self._task_spec(task)
        encoded, labels = self._checked_encoding(
            task, spec["type"], len(spec["labels"]), pixel_values, labels, output_hidden_states, check_inputs
        )
        return self.decode(task, encoded, pixel_values.shape[-2:], labels)

    def decode(self, task: str, encoded: UMedPTModelOutput, image_size: tuple[int, int], labels=None):
        """Run one task's shared decoder and head on encoder outputs (e.g. the slice of a joint batch that belongs to
        the task) and compute its loss when `labels` (already checked, see `forward`) are given."""
        spec = self.config.tasks[task]
        return task_output(
            spec["type"],
            self.heads[task],
            encoded,
            labels,
            tuple(int(side) for side in image_size),
            self.config,
            self.pixel_decoder,
            self.detection_decoder,
        )
