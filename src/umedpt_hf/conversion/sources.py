"""What a conversion reads: the authors' export, a torchvision Swin-V2 state_dict, a transformers Swin-V2 folder, or
(for `init_from`) a UMedPT folder, turned into one `EncoderSource` in transformers' `Swinv2Backbone` keys."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from .provenance import INPUT_CONVENTIONS, LICENCES, sha256_of, transformers_card_licence
from .safe_pickle import as_state_dict, load_without_code
from .squeezer import convert_squeezer
from .swin_geometry import SwinV2Geometry, find_swin_prefix, infer_geometry
from .torchvision_keys import BUFFER_REASON, torchvision_to_transformers
from .umedpt_export import ENCODER, SQUEEZER, block_summary, encoder_tensors, read_export, zip_kind

STATE_DICT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")
TRANSFORMERS_BUFFERS = (".relative_coords_table", ".relative_position_index", ".attn_mask")
TRANSFORMERS_UNUSED = {"layernorm": "final LayerNorm (Swinv2Backbone does not apply it)", "classifier": "task head"}


@dataclass
class EncoderSource:
    """An encoder ready to load into UMedPT: backbone tensors in `Swinv2Backbone` keys, its config, and provenance."""

    kind: str  # umedpt_export | torchvision_state_dict | transformers_swinv2 | umedpt_folder
    label: str
    backbone: dict[str, torch.Tensor]
    backbone_config: dict
    geometry: SwinV2Geometry | None = None
    squeezer: dict[str, torch.Tensor] | None = None
    squeezer_projection_dim: int | None = None
    sha256: str | None = None
    converted: list[dict] = field(default_factory=list)  # {block, tensors, parameters, into}
    dropped: dict[str, str] = field(default_factory=dict)  # source key -> reason
    not_converted: list[dict] = field(default_factory=list)  # {name, reason, ...}
    stood_in: list[str] = field(default_factory=list)
    licence: dict = field(default_factory=dict)
    input_convention: dict = field(default_factory=dict)


def read_source(src: str | Path, stand_in_modules: tuple[str, ...] = ()) -> EncoderSource:
    """Detect what `src` is and read it without executing code. Raises FileNotFoundError / ValueError naming it."""
    path = Path(src)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.is_dir():
        return _read_folder(path)
    kind = zip_kind(path)
    if kind == "export" or (kind == "damaged" and path.suffix == ".zip"):
        return read_umedpt_export(path, stand_in_modules)  # a damaged export gets the export's error messages
    if kind is not None or path.suffix in STATE_DICT_SUFFIXES:
        return read_torchvision_state_dict(path, stand_in_modules)
    raise ValueError(
        f"{path}: unknown checkpoint type; expected the authors' export (.zip), a torchvision state_dict "
        f"({', '.join(STATE_DICT_SUFFIXES)}) or a transformers Swin-V2 folder"
    )


def _load_tensors(path: Path, stand_in_modules: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as error:
            raise ValueError(f"{path} is not a readable safetensors file: {error}") from None
    loaded, _ = load_without_code(path.read_bytes(), str(path), stand_in_modules)
    return as_state_dict(loaded, str(path))


def _from_torchvision(
    tensors: dict[str, torch.Tensor], label: str, key_prefix: str = "", eps: float = 1e-5
) -> EncoderSource:
    """Map a torchvision Swin-V2 state_dict; the report names source keys with `key_prefix` (their full names)."""
    geometry = infer_geometry(tensors, label, layer_norm_eps=eps)
    mapped = torchvision_to_transformers(tensors, geometry, label)
    source = EncoderSource(
        kind="torchvision_state_dict",
        label=label,
        backbone=mapped.tensors,
        backbone_config=geometry.swinv2_config_kwargs(),
        geometry=geometry,
        dropped={key_prefix + key: reason for key, reason in mapped.dropped.items()},
    )
    source.not_converted += [
        {"name": key_prefix + key, "reason": reason} for key, reason in mapped.not_converted.items()
    ]
    return source


def read_torchvision_state_dict(path: Path, stand_in_modules: tuple[str, ...] = ()) -> EncoderSource:
    tensors = _load_tensors(path, stand_in_modules)
    prefix = find_swin_prefix(tensors, str(path))
    outside = {key: "outside the Swin model" for key in tensors if not key.startswith(prefix)}
    swin = {key[len(prefix) :]: value for key, value in tensors.items() if key.startswith(prefix)}
    source = _from_torchvision(swin, str(path), key_prefix=prefix)
    source.not_converted += [{"name": key, "reason": reason} for key, reason in outside.items()]
    source.converted.append(_converted_entry("encoder", source.backbone, "backbone (Swinv2Backbone)"))
    source.sha256 = sha256_of(path)
    source.licence = dict(LICENCES["torchvision_state_dict"])
    source.input_convention = dict(INPUT_CONVENTIONS["torchvision_state_dict"])
    return source


def read_umedpt_export(path: Path, stand_in_modules: tuple[str, ...] = ()) -> EncoderSource:
    contents = read_export(path, stand_in_modules)
    label = f"{path.name}:encoder.pt"
    prefix, swin, notes, eps = encoder_tensors(contents.blocks[ENCODER], label)
    source = _from_torchvision(swin, label, key_prefix=f"encoder.{prefix}", eps=eps)
    source.kind = "umedpt_export"
    source.converted.append(_converted_entry("encoder", source.backbone, "backbone (Swinv2Backbone)"))
    source.not_converted += [{"name": f"encoder.{key}", "reason": reason} for key, reason in notes.items()]
    if SQUEEZER in contents.blocks:
        channels = source.geometry.channels[-1]
        squeezer, projection = convert_squeezer(contents.blocks[SQUEEZER], channels, f"{path.name}:squeezer.pt")
        source.squeezer, source.squeezer_projection_dim = squeezer, projection
        source.converted.append(_converted_entry("squeezer", squeezer, "squeezer (UMedPTSqueezer)"))
    for name, tree in contents.blocks.items():
        if name not in (ENCODER, SQUEEZER):
            source.not_converted.append(
                {
                    "name": f"{name}.pt",
                    "reason": "block whose layout this converter does not map",
                    **block_summary(tree),
                }
            )
    source.not_converted += [
        {"name": member, "reason": "zip member that is not a block"} for member in contents.other_members
    ]
    source.stood_in = contents.stood_in
    source.sha256 = sha256_of(path)
    source.licence = dict(LICENCES["umedpt_export"])
    source.input_convention = dict(INPUT_CONVENTIONS["umedpt_export"])
    return source


def folder_weights(folder: Path) -> dict[str, torch.Tensor]:
    files = sorted(folder.glob("*.safetensors"))
    if files:
        tensors = {}
        for file in files:
            tensors.update(_load_tensors(file))
        return tensors
    bins = sorted(folder.glob("pytorch_model*.bin"))
    if bins:
        tensors = {}
        for file in bins:
            tensors.update(_load_tensors(file))
        return tensors
    raise ValueError(f"{folder} has no weights (*.safetensors or pytorch_model.bin)")


def _read_folder(folder: Path) -> EncoderSource:
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise ValueError(f"{folder} is a folder without config.json: not a transformers or UMedPT checkpoint")
    try:
        config = json.loads(config_file.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{config_file} is not valid JSON: {error}") from None
    model_type = config.get("model_type")
    if model_type == "umedpt":
        return read_umedpt_folder(folder, config)
    if model_type != "swinv2":
        raise ValueError(f"unknown architecture in {folder}: config.json has model_type {model_type!r}, not swinv2")
    return read_transformers_folder(folder, config)


def read_transformers_folder(folder: Path, config: dict) -> EncoderSource:
    from transformers import Swinv2Config

    tensors = folder_weights(folder)
    backbone, not_converted, dropped = {}, [], {}
    prefix = next((p for p in ("swinv2.", "backbone.") if any(k.startswith(p + "embeddings.") for k in tensors)), "")
    for key, tensor in tensors.items():
        name = key[len(prefix) :] if key.startswith(prefix) else key
        if name.endswith(TRANSFORMERS_BUFFERS):  # saved by older transformers versions; recomputed now
            dropped[key] = BUFFER_REASON
        elif name.startswith(("embeddings.", "encoder.")):
            backbone[name] = tensor
        else:
            reason = TRANSFORMERS_UNUSED.get(name.split(".")[0], "not part of the Swin-V2 encoder")
            not_converted.append({"name": key, "reason": reason})
    if not backbone:
        raise ValueError(f"unknown architecture in {folder}: no Swin-V2 embeddings/encoder tensors")
    kwargs = Swinv2Config(**{k: v for k, v in config.items() if k not in ("architectures", "auto_map")}).to_dict()
    keep = ("image_size", "patch_size", "num_channels", "embed_dim", "depths", "num_heads", "window_size",
            "pretrained_window_sizes", "mlp_ratio", "qkv_bias", "layer_norm_eps", "hidden_act")  # fmt: skip
    backbone_config = {key: kwargs[key] for key in keep}
    backbone_config["out_features"] = [f"stage{i + 1}" for i in range(len(kwargs["depths"]))]
    licence = dict(LICENCES["transformers_swinv2"])
    if (card_licence := transformers_card_licence(folder)) is not None:
        licence["id"] = card_licence
    convention = dict(INPUT_CONVENTIONS["transformers_swinv2"], image_size=int(backbone_config["image_size"]))
    source = EncoderSource("transformers_swinv2", str(folder), backbone, backbone_config, licence=licence)
    source.input_convention = _folder_convention(folder, convention)
    source.not_converted, source.dropped = not_converted, dropped
    source.converted.append(_converted_entry("encoder", backbone, "backbone (Swinv2Backbone)"))
    return source


def _folder_convention(folder: Path, default: dict) -> dict:
    processor_file = folder / "preprocessor_config.json"
    if not processor_file.is_file():
        return default
    processor = json.loads(processor_file.read_text())
    convention = dict(default, normalize=bool(processor.get("do_normalize", default["normalize"])))
    if convention["normalize"] and processor.get("image_mean"):
        convention.update(mean=list(processor["image_mean"]), std=list(processor["image_std"]))
    return convention


def read_umedpt_folder(folder: Path, config: dict) -> EncoderSource:
    """A UMedPT folder (for `init_from`): its backbone and squeezer tensors, whatever model class saved it."""
    tensors = folder_weights(folder)
    backbone, squeezer = {}, {}
    for key, tensor in tensors.items():
        name = key[len("umedpt.") :] if key.startswith("umedpt.") else key
        if name.startswith("backbone."):
            backbone[name[len("backbone.") :]] = tensor
        elif name.startswith("squeezer."):
            squeezer[name[len("squeezer.") :]] = tensor
    if not backbone:
        raise ValueError(f"{folder} has no encoder tensors (backbone.*): not a UMedPT model folder")
    projection = squeezer.get("projection.weight")
    return EncoderSource(
        kind="umedpt_folder",
        label=str(folder),
        backbone=backbone,
        backbone_config=dict(config.get("backbone_config") or {}),
        squeezer=squeezer or None,
        squeezer_projection_dim=int(projection.shape[0]) if projection is not None else None,
    )


def _converted_entry(block: str, tensors: dict[str, torch.Tensor], into: str) -> dict:
    return {
        "block": block,
        "tensors": len(tensors),
        "parameters": int(sum(tensor.numel() for tensor in tensors.values())),
        "into": into,
    }
