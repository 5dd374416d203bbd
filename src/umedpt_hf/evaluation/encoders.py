"""Encoders the data-scarcity protocol compares: a UMedPT checkpoint, the same architecture randomly initialised,
or any transformers image model / backbone checkpoint on disk (or already in the local Hugging Face cache).

Nothing here downloads: checkpoints are opened with `local_files_only=True`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

RANDOM_INIT = "random"


@dataclass
class Encoder:
    """A named image encoder and, when its checkpoint has one, its image processor."""

    name: str
    model: torch.nn.Module
    processor: Any = None
    source: str = ""
    random_init: bool = False


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """transformers loads without its report (which lists the intentionally unused head weights) and progress bar."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def load_config(checkpoint: str | Path):
    """The config of a local checkpoint (directory or Hub name already in the local cache), with clear errors."""
    from transformers import AutoConfig  # "umedpt" is known to AutoConfig: importing umedpt_hf registers it

    path = Path(checkpoint)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{checkpoint} is a file; pass the checkpoint directory (with config.json)")
    if path.is_dir():
        config_file = path / "config.json"
        if not config_file.is_file():
            raise FileNotFoundError(f"{checkpoint} has no config.json: not a transformers checkpoint directory")
        try:
            json.loads(config_file.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{config_file} is not valid JSON ({error}): not a transformers checkpoint") from None
    try:
        return AutoConfig.from_pretrained(str(checkpoint), local_files_only=True)
    except OSError as error:
        raise FileNotFoundError(
            f"no checkpoint at {checkpoint!r}: not a local directory and not in the local Hugging Face cache "
            f"(nothing is downloaded) ({error.__class__.__name__})"
        ) from None
    except (ValueError, KeyError) as error:
        raise ValueError(f"{checkpoint!r} has a config transformers cannot read: {error}") from None


def _check_image_encoder(model: torch.nn.Module, checkpoint: str) -> None:
    if getattr(model, "main_input_name", None) != "pixel_values":
        raise ValueError(
            f"{checkpoint!r} holds a {type(model).__name__} whose input is "
            f"{getattr(model, 'main_input_name', None)!r}, not pixel_values: "
            "it is neither a UMedPT nor an image backbone model"
        )


def _base_encoder(model: torch.nn.Module) -> torch.nn.Module:
    """The encoder inside a UMedPT model with heads (the heads are not part of the image features)."""
    return getattr(model, "umedpt", model) if type(model).__name__ != "UMedPTModel" else model


def load_encoder_model(checkpoint: str | Path, random_init: bool = False, seed: int = 0) -> torch.nn.Module:
    """The image encoder of `checkpoint` as float32 in eval mode; with `random_init`, the same architecture with fresh
    weights (seeded). UMedPT checkpoints of any head class give their `UMedPTModel` encoder."""
    from safetensors import SafetensorError
    from transformers import AutoModel

    config = load_config(checkpoint)
    if config.model_type == "umedpt":
        from ..modeling_umedpt import UMedPTModel

        model_class = UMedPTModel
    else:
        model_class = None
    try:
        with quiet_loading():
            if random_init:
                with torch.random.fork_rng(devices=[]):  # seeded, and the caller's random state is left as it was
                    torch.manual_seed(seed)
                    model = model_class(config) if model_class else AutoModel.from_config(config)
            elif model_class is not None:
                model = model_class.from_pretrained(str(checkpoint), local_files_only=True, dtype=torch.float32)
            else:
                model = AutoModel.from_pretrained(str(checkpoint), local_files_only=True, dtype=torch.float32)
    except ValueError as error:
        raise ValueError(
            f"{checkpoint!r} ({config.model_type}) is neither a UMedPT nor a backbone model transformers can build: "
            f"{str(error).splitlines()[0]}"
        ) from None
    except SafetensorError as error:
        raise ValueError(f"{checkpoint}: the weights file is not a readable safetensors file ({error})") from None
    except OSError as error:
        raise FileNotFoundError(f"{checkpoint}: no weights to load ({str(error).splitlines()[0]})") from None
    model = _base_encoder(model)
    _check_image_encoder(model, str(checkpoint))
    return model.float().eval()


def load_processor(checkpoint: str | Path) -> Any:
    """The image processor saved with a checkpoint, or None when it has none."""
    path = Path(checkpoint)
    if path.is_dir() and not (path / "preprocessor_config.json").is_file():
        return None
    from transformers import AutoImageProcessor

    from ..image_processing_umedpt import UMedPTImageProcessor

    config_file = path / "preprocessor_config.json"
    if config_file.is_file() and "UMedPTImageProcessor" in config_file.read_text():
        return UMedPTImageProcessor.from_pretrained(str(checkpoint), local_files_only=True)
    try:
        return AutoImageProcessor.from_pretrained(str(checkpoint), local_files_only=True)
    except (OSError, ValueError):
        return None


def load_encoder(checkpoint: str | Path, name: str | None = None, random_init: bool = False, seed: int = 0) -> Encoder:
    """An `Encoder` (model + processor if saved) from a checkpoint; `name` defaults to the directory name."""
    model = load_encoder_model(checkpoint, random_init=random_init, seed=seed)
    default = "random-init" if random_init else (Path(str(checkpoint)).name or str(checkpoint))
    return Encoder(name or default, model, load_processor(checkpoint), str(checkpoint), random_init)
