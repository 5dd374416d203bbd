"""Evaluation of image encoders on labelled tasks: frozen features, linear probe, kNN, few-shot, fine-tuning,
metrics, and the data-scarcity protocol (`run_data_scarcity`, `umedpt evaluate`)."""

from __future__ import annotations

from .chance import chance_level
from .encoders import Encoder, load_encoder, load_encoder_model
from .features import FeatureSet, adapt_channels_to_encoder, extract_features, image_features
from .few_shot import few_shot_evaluate, few_shot_indices
from .finetune import EncoderClassifier, finetune_and_score, predict_proba, train_classifier
from .knn import train_knn
from .linear import train_linear_probe
from .metrics import (
    classification_metrics,
    default_metric,
    detection_metrics,
    multilabel_metrics,
    segmentation_metrics,
    to_numpy,
)
from .probe import FittedProbe
from .report import check_target, markdown_table, plot_results, print_table, read_json, validate_result, write_json
from .sampling import multilabel_subset, random_subset, stratified_subset
from .scarcity import DEFAULT_FRACTIONS, SplitFeatures, probe_scarcity_curve, run_data_scarcity

__all__ = [
    "DEFAULT_FRACTIONS",
    "Encoder",
    "EncoderClassifier",
    "FeatureSet",
    "FittedProbe",
    "SplitFeatures",
    "adapt_channels_to_encoder",
    "chance_level",
    "check_target",
    "classification_metrics",
    "default_metric",
    "detection_metrics",
    "extract_features",
    "few_shot_evaluate",
    "few_shot_indices",
    "finetune_and_score",
    "image_features",
    "load_encoder",
    "load_encoder_model",
    "markdown_table",
    "multilabel_metrics",
    "multilabel_subset",
    "plot_results",
    "predict_proba",
    "print_table",
    "probe_scarcity_curve",
    "random_subset",
    "read_json",
    "run_data_scarcity",
    "segmentation_metrics",
    "stratified_subset",
    "to_numpy",
    "train_classifier",
    "train_knn",
    "train_linear_probe",
    "validate_result",
    "write_json",
]
