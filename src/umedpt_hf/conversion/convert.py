"""`convert_checkpoint(src, out_dir)`: the authors' export, a torchvision Swin-V2 state_dict or a transformers Swin-V2
folder -> a UMedPT folder that `AutoModel.from_pretrained` loads (with or without umedpt_hf installed)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from .output_folder import WRITTEN_BY, staged_output
from .sources import EncoderSource, read_source
from .torchvision_keys import check_against_model

REPORT_NAME = "conversion_report.json"
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
logger = logging.getLogger(__name__)


@dataclass
class ConversionResult:
    path: Path
    report: dict


def _projection_supported() -> bool:
    from umedpt_hf.configuration_umedpt import UMedPTConfig

    return "squeezer_projection_dim" in getattr(UMedPTConfig, "__dataclass_fields__", {}) or hasattr(
        UMedPTConfig, "squeezer_projection_dim"
    )


def build_model(source: EncoderSource):
    """A UMedPTModel whose config reproduces the source's geometry (and squeezer width)."""
    from transformers import Swinv2Config

    from umedpt_hf.configuration_umedpt import UMedPTConfig
    from umedpt_hf.modeling_umedpt import UMedPTModel

    extra = {}
    if source.squeezer_projection_dim is not None:
        if not _projection_supported():
            raise ValueError(
                f"{source.label}: its squeezer projects to {source.squeezer_projection_dim} channels, but this "
                "version of umedpt_hf has no UMedPTConfig.squeezer_projection_dim; update umedpt_hf"
            )
        extra["squeezer_projection_dim"] = source.squeezer_projection_dim
    config = UMedPTConfig(backbone_config=Swinv2Config(**source.backbone_config), **extra)
    return UMedPTModel(config).eval()


def _source_dtype(source: EncoderSource) -> torch.dtype:
    dtypes = {tensor.dtype for tensor in source.backbone.values() if tensor.is_floating_point()}
    return dtypes.pop() if len(dtypes) == 1 else torch.float32


def load_source_into(model, source: EncoderSource) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Load the source's tensors into a UMedPTModel (shapes checked, names named). Returns the loaded tensors and the
    squeezer keys that were initialised because the source has no squeezer."""
    expected = model.state_dict()
    state = {f"backbone.{key}": tensor for key, tensor in source.backbone.items()}
    initialised = []
    if source.squeezer is not None:
        state.update({f"squeezer.{key}": tensor for key, tensor in source.squeezer.items()})
    else:
        initialised = sorted(key for key in expected if key.startswith("squeezer."))
        state.update({key: expected[key].clone() for key in initialised})
    check_against_model(state, expected, source.label, "the UMedPT encoder built for it")
    model.load_state_dict(state, strict=True)
    return state, initialised


def _weights_parity(folder: Path, state: dict[str, torch.Tensor]) -> dict:
    saved = {}
    for file in sorted(folder.glob("*.safetensors")):
        saved.update(load_file(str(file)))
    worst = 0.0
    identical = set(saved) == set(state)
    for key, tensor in state.items():
        if key not in saved or saved[key].shape != tensor.shape:
            identical = False
            continue
        identical &= torch.equal(saved[key], tensor)
        if tensor.numel():
            worst = max(worst, float((saved[key].double() - tensor.double()).abs().max()))
    if not identical:
        raise RuntimeError(f"the weights saved in {folder} differ from the source's (max abs diff {worst})")
    return {"tensors": len(state), "max_abs_diff": worst, "bit_identical": identical}


def _features_parity(source: EncoderSource) -> tuple[dict, list[int]]:
    from . import parity

    if source.geometry is None:
        return {"reference": "transformers"}, []
    step = source.geometry.patch_size * 2 ** (source.geometry.num_stages - 1)
    figures = {
        "reference": "torchvision",
        "measured_on": parity.REFERENCE,
        "tolerance": parity.TOLERANCE,
        "max_abs_diff": {str(size): diff for size, diff in parity.FIXTURE_MAX_ABS_DIFF.items()},
        "size_step": step,
        "native_image_size": source.geometry.native_image_size,
    }
    return figures, source.geometry.parity_sizes


def save_processor(folder: Path, source: EncoderSource, num_channels: int, parity_sizes: list[int], image_size=None):
    from umedpt_hf.image_processing_umedpt import UMedPTImageProcessor

    convention = source.input_convention
    side = int(image_size or convention["image_size"] or source.backbone_config["image_size"])
    normalize = bool(convention["normalize"])
    mean = convention.get("mean", IMAGENET_MEAN) if normalize else [0.0] * num_channels
    std = convention.get("std", IMAGENET_STD) if normalize else [1.0] * num_channels
    processor = UMedPTImageProcessor(
        size={"height": side, "width": side},
        num_channels=num_channels,
        do_normalize=normalize,
        image_mean=mean,
        image_std=std,
        parity_input_sizes=parity_sizes or None,
        source_input_convention=convention["text"],
    )
    processor.save_pretrained(folder)
    return side


def _encoder_description(backbone_config: dict) -> str:
    keys = ("embed_dim", "depths", "num_heads", "window_size", "image_size")
    return "Swin-V2 (" + ", ".join(f"{key} {backbone_config[key]}" for key in keys if key in backbone_config) + ")"


def convert_checkpoint(
    src: str | Path,
    out_dir: str | Path,
    *,
    stand_in_modules: tuple[str, ...] = (),
    image_size: int | None = None,
) -> ConversionResult:
    """Convert a foreign encoder checkpoint into a UMedPT folder (never executing code, never overwriting).

    Args:
        src: the authors' export (`encoder-1.0.4.pt.zip`), a torchvision Swin-V2 state_dict (`.pth`, `.pt`,
            `.safetensors`) or a transformers Swin-V2 folder.
        out_dir: a new or empty folder (or one an earlier conversion wrote).
        stand_in_modules: extra module roots whose classes get inert stand-ins (if the export names its framework
            differently from `mmm`); nothing from them is imported.
        image_size: the processor's side (default: the source's convention, 224 for the authors' export).

    Returns:
        The folder and the conversion report (also written as `conversion_report.json`).
    """
    from umedpt_hf import __version__
    from umedpt_hf.card_templates import hub_cards_dir

    from .card import render_converted_card

    source = read_source(src, stand_in_modules)
    if source.kind == "umedpt_folder":
        raise ValueError(f"{src} is already a UMedPT folder: nothing to convert (to export it: --to timm)")
    template_dir = hub_cards_dir()
    out_dir = Path(out_dir)
    model = build_model(source)
    dtype = _source_dtype(source)
    model.to(dtype)
    state, initialised = load_source_into(model, source)
    features, sizes = _features_parity(source)
    src_path = Path(src)
    with staged_output(out_dir, REPORT_NAME) as staging:
        model.save_pretrained(staging)
        side = save_processor(staging, source, model.config.num_channels, sizes, image_size)
        report = {
            "written_by": WRITTEN_BY,
            "umedpt_hf_version": __version__,
            "source": {
                "file": src_path.name,
                "kind": source.kind,
                "sha256": source.sha256,
                "size_bytes": src_path.stat().st_size if src_path.is_file() else None,
            },
            "licence": source.licence,
            "architecture": {
                **(source.geometry.as_dict() if source.geometry else dict(source.backbone_config)),
                "squeezer_projection_dim": source.squeezer_projection_dim,
            },
            "model": {
                "class": type(model).__name__,
                "encoder": _encoder_description(source.backbone_config),
                "parameters": int(sum(tensor.numel() for tensor in state.values())),
                "hidden_size": int(model.config.hidden_size),
                "dtype": str(dtype).replace("torch.", ""),
            },
            "converted": source.converted,
            "initialised": [{"name": key, "reason": "not in the source: default init"} for key in initialised],
            "dropped": source.dropped,
            "not_converted": source.not_converted,
            "stood_in_globals": source.stood_in,
            "parity": {"weights": _weights_parity(staging, state), "features": features, "input_sizes": sizes},
            "input_convention": {**source.input_convention, "image_size": side},
        }
        card = render_converted_card(report, out_dir.name, template_dir)
        card.save(staging / "README.md")
        written = [str(path.relative_to(staging)) for path in staging.rglob("*") if path.is_file()]
        report["files"] = sorted([*written, REPORT_NAME])
        (staging / REPORT_NAME).write_text(json.dumps(report, indent=2) + "\n")
    _log_summary(report, out_dir)
    return ConversionResult(out_dir, report)


def _log_summary(report: dict, out_dir: Path) -> None:
    for item in report["converted"]:
        logger.info("converted %s: %d tensors into %s", item["block"], item["tensors"], item["into"])
    for item in report["not_converted"]:
        logger.info("not converted: %s (%s)", item["name"], item["reason"])
    logger.info("wrote %s", out_dir)
