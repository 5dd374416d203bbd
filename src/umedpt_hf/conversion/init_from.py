"""`init_encoder_from(model, source)`: start (pre)training from existing encoder weights.

`source` is a transformers Swin-V2 checkpoint (a Hub id such as `microsoft/swinv2-tiny-patch4-window8-256`, the
ImageNet-1k Swin-V2-T, or a local folder), a torchvision Swin-V2 state_dict, the authors' export, or a UMedPT folder.
Everything is read without executing code; tensors whose shapes do not fit the model are named in the error.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from .sources import read_source
from .torchvision_keys import check_against_model

HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")
HUB_FILES = ["config.json", "*.safetensors", "*.safetensors.index.json", "preprocessor_config.json", "README.md"]
GEOMETRY_KEYS = ("window_size", "image_size", "patch_size", "pretrained_window_sizes", "layer_norm_eps")
logger = logging.getLogger(__name__)


@dataclass
class InitReport:
    """What `init_encoder_from` loaded."""

    source: str
    kind: str
    loaded: list[str] = field(default_factory=list)  # model keys (relative to the encoder) that were overwritten
    squeezer_loaded: bool = False
    warnings: list[str] = field(default_factory=list)


def _download(repo_id: str) -> Path:
    """A local snapshot of a Hub checkpoint (config and weights only), or a one-line error when it cannot be had."""
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(repo_id, allow_patterns=HUB_FILES))
        if not any(folder.glob("*.safetensors")):
            folder = Path(snapshot_download(repo_id, allow_patterns=[*HUB_FILES, "pytorch_model.bin"]))
    except Exception as error:  # network, auth, offline mode, unknown repo: all end here with the id named
        summary = " ".join(str(error).split())[:200]
        raise ValueError(
            f"init_from {repo_id!r}: not a local path, and the Hub checkpoint could not be fetched ({summary})"
        ) from None
    return folder


def resolve_init_source(source: str | Path) -> Path:
    """A local path for `source`: the path itself, or a Hub snapshot for a `namespace/name` id."""
    path = Path(source).expanduser()
    if path.exists():
        return path
    if isinstance(source, str) and HUB_ID.fullmatch(source):
        return _download(source)
    raise FileNotFoundError(f"init_from: {source} does not exist (and is not a Hub id like namespace/name)")


def _encoder_of(model):
    from umedpt_hf.modeling_umedpt import UMedPTModel

    if isinstance(model, UMedPTModel):
        return model
    encoder = getattr(model, "umedpt", None)
    if isinstance(encoder, UMedPTModel):
        return encoder
    raise TypeError(f"init_from needs a UMedPT model (UMedPTModel or a model with .umedpt), got {type(model).__name__}")


def _geometry_warnings(source_config: dict, model_config, label: str) -> list[str]:
    warnings = []
    for key in GEOMETRY_KEYS:
        theirs, ours = source_config.get(key), getattr(model_config, key, None)
        if theirs is not None and ours is not None and theirs != ours:
            warnings.append(f"{label}: {key} is {theirs} there and {ours} in the model (weights load; features differ)")
    return warnings


def init_encoder_from(
    model, source: str | Path, *, load_squeezer: bool = True, stand_in_modules: tuple[str, ...] = ()
) -> InitReport:
    """Load an existing encoder's weights into `model`'s UMedPT encoder (in place) before training.

    The backbone must match tensor for tensor (names and shapes; the message lists the ones that do not). The
    squeezer is loaded too when the source has one (a UMedPT folder or the authors' export) and `load_squeezer`.
    Raises FileNotFoundError / ValueError naming the source."""
    encoder = _encoder_of(model)
    source_text = str(source)
    checkpoint = read_source(resolve_init_source(source), stand_in_modules)
    label = f"init_from {source_text}"
    expected = encoder.state_dict()
    state = {f"backbone.{key}": tensor for key, tensor in checkpoint.backbone.items()}
    check_against_model(
        state, {k: v for k, v in expected.items() if k.startswith("backbone.")}, label, "the model's encoder"
    )
    squeezer_loaded = False
    if load_squeezer and checkpoint.squeezer is not None:
        squeezer = {f"squeezer.{key}": tensor for key, tensor in checkpoint.squeezer.items()}
        expected_squeezer = {k: v for k, v in expected.items() if k.startswith("squeezer.")}
        check_against_model(squeezer, expected_squeezer, label, "the model's squeezer")
        state.update(squeezer)
        squeezer_loaded = True
    result = encoder.load_state_dict(state, strict=False)
    if result.unexpected_keys:  # cannot happen after the checks above; kept as a guard against silent loss
        raise ValueError(f"{label}: tensors the encoder does not have: {result.unexpected_keys[:5]}")
    report = InitReport(source_text, checkpoint.kind, sorted(state), squeezer_loaded)
    report.warnings = _geometry_warnings(checkpoint.backbone_config, encoder.config.backbone_config, label)
    for warning in report.warnings:
        logger.warning(warning)
    logger.info(
        "init_from %s (%s): loaded %d encoder tensors%s",
        source_text,
        checkpoint.kind,
        len(state),
        " including the squeezer" if squeezer_loaded else "",
    )
    return report
