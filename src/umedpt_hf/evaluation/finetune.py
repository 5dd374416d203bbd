"""Fine-tuning on a labelled image dataset: a new linear head on an encoder, the encoder frozen or trained too.

Short and CPU-friendly: AdamW, a few epochs (at least `min_steps` optimizer steps, so a 1 % subset still trains), no
augmentation. `EncoderClassifier` puts a head on any image encoder (UMedPT, random-init, any transformers backbone),
so every encoder in a comparison gets the same head; `train_classifier` also trains any model whose forward takes
`pixel_values, labels` and returns `.loss` and `.logits`, such as `UMedPTForImageClassification`.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers.modeling_outputs import ImageClassifierOutput

from .encoders import quiet_loading
from .features import extract_features, image_features, image_vector, iterate_batches
from .metrics import segmentation_metrics
from .probe import FittedProbe, check_features
from .progress import progress as progress_bar

FINETUNE_TASK_TYPES = ("classification", "multilabel")


class EncoderClassifier(nn.Module):
    """An image encoder with a dropout + linear head on its image vector."""

    def __init__(self, encoder: nn.Module, hidden_size: int, num_labels: int, multilabel: bool = False, dropout=0.1):
        super().__init__()
        if num_labels < 1:
            raise ValueError(f"num_labels must be >= 1, got {num_labels}")
        self.encoder = encoder
        self.multilabel = multilabel
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)
        nn.init.zeros_(self.classifier.weight)  # a new head starts at chance, whatever the feature scale
        nn.init.zeros_(self.classifier.bias)

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None) -> ImageClassifierOutput:
        logits = self.classifier(self.dropout(image_vector(self.encoder, pixel_values)))
        return ImageClassifierOutput(loss=classifier_loss(logits, labels, self.multilabel), logits=logits)


def classifier_loss(logits: torch.Tensor, labels: torch.Tensor | None, multilabel: bool) -> torch.Tensor | None:
    if labels is None:
        return None
    if multilabel:
        return nn.functional.binary_cross_entropy_with_logits(logits, labels.float())
    return nn.functional.cross_entropy(logits, labels.long())


def _labels_tensor(labels: np.ndarray | torch.Tensor, multilabel: bool) -> torch.Tensor:
    labels = torch.as_tensor(np.asarray(labels))
    return labels.float() if multilabel else labels.long()


def train_classifier(
    model: nn.Module,
    train_data: Any,
    *,
    processor: Any = None,
    multilabel: bool = False,
    epochs: int = 10,
    min_steps: int = 30,
    batch_size: int = 16,
    lr: float = 1e-3,
    encoder_lr: float | None = 1e-4,
    weight_decay: float = 1e-4,
    seed: int = 0,
    modality: str | None = None,
    progress: bool = True,
) -> nn.Module:
    """Train `model` (forward(pixel_values, labels) -> .loss) on a labelled `datasets.Dataset` (shuffled here each
    epoch) or on a DataLoader / iterable of {"pixel_values", "labels"} batches (shuffled by the loader).

    Parameters named `encoder.*` / `umedpt.*` get `encoder_lr` (None freezes them), the rest `lr`.
    """
    if epochs < 1 or batch_size < 1:
        raise ValueError("epochs and batch_size must be >= 1")
    torch.manual_seed(seed)
    head, encoder = [], []
    for name, param in model.named_parameters():
        is_encoder = name.startswith(("encoder.", "umedpt."))
        if is_encoder and encoder_lr is None:
            param.requires_grad_(False)
        elif param.requires_grad:
            (encoder if is_encoder else head).append(param)
    groups = [{"params": head, "lr": lr}] + ([{"params": encoder, "lr": encoder_lr}] if encoder else [])
    optimizer = torch.optim.AdamW(groups, weight_decay=weight_decay)
    is_dataset = hasattr(train_data, "column_names")
    size = len(train_data) if hasattr(train_data, "__len__") else None
    if size == 0:
        raise ValueError("the training split is empty")
    # a Dataset counts examples, a DataLoader / batch iterable counts batches
    steps_per_epoch = math.ceil(size / batch_size) if is_dataset else size
    epochs = max(epochs, math.ceil(min_steps / steps_per_epoch)) if steps_per_epoch else epochs
    rng = np.random.default_rng(seed)
    model.train()
    bar = progress_bar(range(epochs), desc="fine-tune", enabled=progress, unit="epochs")
    for _ in bar:
        data = train_data.select(rng.permutation(size)) if is_dataset else train_data
        for pixel_values, labels in iterate_batches(data, processor, batch_size, modality=modality, raw_labels=True):
            if labels is None:
                raise ValueError("fine-tuning needs labels ('label' / 'labels' column, or loader batches with labels)")
            if not isinstance(labels, (torch.Tensor, list)):
                labels = _labels_tensor(labels, multilabel)
            loss = model(pixel_values=pixel_values, labels=labels).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    return model.eval()


@torch.no_grad()
def predict_proba(
    model: nn.Module, data: Any, *, processor: Any = None, multilabel: bool = False, batch_size: int = 32, modality=None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Class probabilities (softmax, or sigmoid for multi-label) and the labels of `data`."""
    model.eval()
    probabilities, labels = [], []
    for pixel_values, batch_labels in iterate_batches(data, processor, batch_size, modality=modality):
        logits = model(pixel_values=pixel_values).logits.float()
        probabilities.append((logits.sigmoid() if multilabel else logits.softmax(-1)).numpy())
        if batch_labels is not None:
            labels.append(np.asarray(batch_labels))
    return np.concatenate(probabilities), (np.concatenate(labels) if labels else None)


class _FixedProbabilities:
    """Adapter so that fine-tuned predictions are scored like a probe's (`FittedProbe.score`)."""

    def __init__(self, probabilities: np.ndarray, num_classes: int):
        self.probabilities = probabilities
        self.classes_ = np.arange(num_classes)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.probabilities


def finetune_and_score(
    encoder: nn.Module,
    train_data: Any,
    test_data: Any,
    *,
    num_labels: int,
    processor: Any = None,
    multilabel: bool = False,
    train_encoder: bool = False,
    metric: str = "macro_f1",
    seed: int = 0,
    modality: str | None = None,
    progress: bool = False,
    **train_kwargs: Any,
) -> float:
    """Fine-tune a fresh head (and, with `train_encoder`, a copy of the encoder) on `train_data`; `metric` on test.

    A frozen encoder is run once per example: the head then trains on its features (`train_head`; same result as
    running the encoder every step, far faster).
    """
    torch.manual_seed(seed)
    if not train_encoder:
        train = extract_features(encoder, train_data, processor=processor, modality=modality, progress=False)
        test = extract_features(encoder, test_data, processor=processor, modality=modality, progress=False)
        head = train_head(train.features, train.labels, num_labels=num_labels, multilabel=multilabel, seed=seed,
                          **train_kwargs)  # fmt: skip
        probabilities, labels = head.predict_proba(test.features), test.labels
    else:
        hidden = image_features_size(encoder, train_data, processor, modality)
        model = EncoderClassifier(copy.deepcopy(encoder), hidden, num_labels, multilabel)
        train_classifier(model, train_data, processor=processor, multilabel=multilabel, seed=seed, modality=modality,
                         progress=progress, **train_kwargs)  # fmt: skip
        probabilities, labels = predict_proba(model, test_data, processor=processor, multilabel=multilabel,
                                              modality=modality)  # fmt: skip
    if labels is None:
        raise ValueError("the test split has no image-level labels to score")
    probe = FittedProbe(_FixedProbabilities(probabilities, num_labels), num_labels, multilabel)
    return float(probe.score(probabilities, labels, only=metric)[metric])


class _FeatureBatches:
    """Shuffled (features, labels) batches of cached features, one pass per iteration."""

    def __init__(self, features: np.ndarray, labels: np.ndarray, batch_size: int, seed: int):
        self.features, self.labels, self.batch_size = features, labels, batch_size
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        """Batches per pass."""
        return math.ceil(len(self.features) / self.batch_size)

    def __iter__(self):
        order = self.rng.permutation(len(self.features))
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            yield {"pixel_values": torch.from_numpy(self.features[idx]), "labels": torch.from_numpy(self.labels[idx])}


def image_features_size(encoder: nn.Module, data: Any, processor: Any, modality: str | None) -> int:
    """Size of the encoder's image vector, measured on the first batch."""
    first = data.select(range(1)) if hasattr(data, "column_names") else data
    pixel_values, _ = next(iter(iterate_batches(first, processor, 1, modality=modality)))
    was_training = encoder.training
    vector = image_features(encoder.eval(), pixel_values)
    encoder.train(was_training)
    return int(vector.shape[1])


class _HeadEstimator:
    """A trained linear head on features, with the scikit-learn `predict_proba` / `classes_` interface."""

    def __init__(self, head: EncoderClassifier, num_labels: int, multilabel: bool):
        self.head, self.multilabel, self.classes_ = head, multilabel, np.arange(num_labels)

    @torch.no_grad()
    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        logits = self.head.eval()(torch.as_tensor(np.asarray(x, dtype=np.float32))).logits
        return (logits.sigmoid() if self.multilabel else logits.softmax(-1)).numpy().astype(np.float64)


def train_head(
    train_x: np.ndarray,
    train_y: np.ndarray,
    *,
    num_labels: int,
    multilabel: bool = False,
    seed: int = 0,
    epochs: int = 20,
    min_steps: int = 100,
    batch_size: int = 64,
    lr: float = 1e-2,
    weight_decay: float = 1e-4,
    progress: bool = False,
) -> FittedProbe:
    """Fine-tuning with a frozen encoder: a new dropout + linear head trained with AdamW on its cached features,
    standardised with the training statistics (so one learning rate suits encoders of any feature scale)."""
    train_x, train_y = check_features(train_x, train_y, "train", multilabel)
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    torch.manual_seed(seed)
    head = EncoderClassifier(_Standardise(mean, std), train_x.shape[1], num_labels, multilabel)
    batches = _FeatureBatches(train_x, train_y, batch_size, seed)
    train_classifier(head, batches, multilabel=multilabel, seed=seed, progress=progress, encoder_lr=None,
                     epochs=epochs, min_steps=min_steps, lr=lr, weight_decay=weight_decay)  # fmt: skip
    return FittedProbe(_HeadEstimator(head, num_labels, multilabel), num_labels, multilabel, {"lr": lr})


class _Standardise(nn.Module):
    """An 'encoder' of cached features: their z-score with fixed training statistics."""

    def __init__(self, mean: np.ndarray, std: np.ndarray):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))

    def get_image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return (pixel_values - self.mean) / self.std


def segmentation_model(encoder: Any, labels: list[str]) -> nn.Module:
    """A `UMedPTForSemanticSegmentation` for an `Encoder`: from its UMedPT checkpoint (encoder and shared pixel
    decoder pretrained, new head), or freshly initialised for the random-init encoder."""
    from ..modeling_umedpt import UMedPTForSemanticSegmentation

    config = getattr(encoder.model, "config", None)
    if getattr(config, "model_type", None) != "umedpt":
        raise ValueError(
            f"segmentation fine-tuning needs a UMedPT encoder (its pixel decoder); {encoder.name!r} is "
            f"{getattr(config, 'model_type', type(encoder.model).__name__)!r}"
        )
    id2label = dict(enumerate(labels))
    if getattr(encoder, "random_init", False) or not encoder.source:
        config = copy.deepcopy(config)
        config.id2label, config.label2id = id2label, {name: i for i, name in id2label.items()}
        model = UMedPTForSemanticSegmentation(config)
        model.umedpt.load_state_dict(encoder.model.state_dict())
        return model
    with quiet_loading():
        return UMedPTForSemanticSegmentation.from_pretrained(
            encoder.source, id2label=id2label, label2id={n: i for i, n in id2label.items()}, dtype=torch.float32,
            local_files_only=True,
        )  # fmt: skip


@torch.no_grad()
def segmentation_scores(model: nn.Module, loader: Any, num_classes: int, ignore_index: int = 255) -> dict[str, float]:
    """Dice and IoU of `model` over every pixel of a loader's {"pixel_values", "labels" (B, H, W)} batches."""
    model.eval()
    predictions, targets = [], []
    for batch in loader:
        logits = model(pixel_values=batch["pixel_values"]).logits
        predictions.append(logits.argmax(1).numpy())
        targets.append(batch["labels"].numpy())
    return segmentation_metrics(np.concatenate(predictions), np.concatenate(targets), num_classes, ignore_index)


def finetune_segmentation_and_score(
    encoder: Any,
    train_loader: Any,
    test_loader: Any,
    *,
    labels: list[str],
    train_encoder: bool = False,
    metric: str = "dice",
    seed: int = 0,
    progress: bool = False,
    **train_kwargs: Any,
) -> float:
    """Train the pixel decoder and a new segmentation head (and with `train_encoder` the encoder) of a
    `UMedPTForSemanticSegmentation` built from `encoder`; `metric` ("dice" or "iou") on the test loader."""
    torch.manual_seed(seed)
    model = segmentation_model(encoder, labels)
    kwargs = {"encoder_lr": 1e-4 if train_encoder else None, **train_kwargs}
    train_classifier(model, train_loader, seed=seed, progress=progress, **kwargs)
    return float(segmentation_scores(model, test_loader, len(labels))[metric])
