"""`export_timm(model_dir, out_dir)`: a UMedPT folder's Swin-V2 encoder in timm's `SwinTransformerV2` layout, with the
`config.json` that `timm.create_model("hf-hub:<repo>", pretrained=True)` (or `"local-dir:<folder>"`) reads.

timm keeps patch merging at the start of stages 1-3, a fused qkv weight with separate q/v biases, and a final norm.
UMedPT's encoder has no final norm (its image vector is the squeezer, which timm's layout has no place for): the
exported `norm` is the identity-initialised LayerNorm (weight 1, bias 0), and UMedPT's pyramid is timm's
`forward_intermediates` / `features_only` output at the native size (`img_size`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors.torch import save_file

from .output_folder import WRITTEN_BY, staged_output
from .sources import folder_weights

MANIFEST = "export_report.json"
TIMM_BLOCK_RENAMES = {
    "layernorm_before": "norm1",
    "layernorm_after": "norm2",
    "attention.self.logit_scale": "attn.logit_scale",
    "attention.self.continuous_position_bias_mlp.0": "attn.cpb_mlp.0",
    "attention.self.continuous_position_bias_mlp.2": "attn.cpb_mlp.2",
    "attention.output.dense": "attn.proj",
    "intermediate.dense": "mlp.fc1",
    "output.dense": "mlp.fc2",
}
BLOCK = re.compile(r"encoder\.layers\.(\d+)\.blocks\.(\d+)\.(.+)\.(weight|bias|logit_scale)")
DOWNSAMPLE = re.compile(r"encoder\.layers\.(\d+)\.downsample\.(reduction|norm)\.(weight|bias)")
QKV = re.compile(r"attention\.self\.(query|key|value)")


def transformers_to_timm(backbone: dict[str, torch.Tensor], label: str) -> dict[str, torch.Tensor]:
    """Map `Swinv2Backbone` tensors to timm's `SwinTransformerV2` keys (final norm not included)."""
    out: dict[str, torch.Tensor] = {}
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    unknown = []
    for key, tensor in backbone.items():
        if key.startswith("embeddings.patch_embeddings.projection."):
            out["patch_embed.proj." + key.rsplit(".", 1)[-1]] = tensor
        elif key.startswith("embeddings.norm."):
            out["patch_embed.norm." + key.rsplit(".", 1)[-1]] = tensor
        elif match := DOWNSAMPLE.fullmatch(key):
            out[f"layers.{int(match.group(1)) + 1}.downsample.{match.group(2)}.{match.group(3)}"] = tensor
        elif match := BLOCK.fullmatch(key):
            stage, block, module, kind = match.groups()
            prefix = f"layers.{stage}.blocks.{block}."
            if module == "attention.self" and kind == "logit_scale":
                out[prefix + "attn.logit_scale"] = tensor
            elif qkv_match := QKV.fullmatch(module):
                qkv.setdefault(prefix, {})[f"{qkv_match.group(1)}.{kind}"] = tensor
            elif module in TIMM_BLOCK_RENAMES:
                out[f"{prefix}{TIMM_BLOCK_RENAMES[module]}.{kind}"] = tensor
            else:
                unknown.append(key)
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(f"{label}: encoder tensors timm's Swin-V2 has no place for: {', '.join(unknown[:5])}")
    for prefix, parts in qkv.items():
        missing = [name for name in ("query.weight", "key.weight", "value.weight") if name not in parts]
        if missing:
            raise ValueError(f"{label}: {prefix} lacks {', '.join(missing)}")
        out[prefix + "attn.qkv.weight"] = torch.cat([parts["query.weight"], parts["key.weight"], parts["value.weight"]])
        if "query.bias" in parts:
            out[prefix + "attn.q_bias"] = parts["query.bias"]
            out[prefix + "attn.v_bias"] = parts["value.bias"]
    return out


def timm_config(backbone_config: dict, processor: dict, licence: str | None) -> dict:
    """timm's hub `config.json`: architecture, model_args that rebuild this encoder, and its pretrained_cfg."""
    depths, side = list(backbone_config["depths"]), int(backbone_config["image_size"])
    num_features = int(backbone_config["embed_dim"]) * 2 ** (len(depths) - 1)
    channels = int(backbone_config.get("num_channels", 3))
    normalise = bool(processor.get("do_normalize", True))
    mean = list(processor.get("image_mean") or [0.485, 0.456, 0.406]) if normalise else [0.0] * channels
    std = list(processor.get("image_std") or [0.229, 0.224, 0.225]) if normalise else [1.0] * channels
    stride = int(backbone_config["patch_size"]) * 2 ** (len(depths) - 1)
    return {
        "architecture": "swinv2_tiny_window8_256",  # the registered factory; model_args below override its sizes
        "num_classes": 0,
        "num_features": num_features,
        "global_pool": "avg",
        "model_args": {
            "img_size": side,
            "patch_size": int(backbone_config["patch_size"]),
            "in_chans": channels,
            "embed_dim": int(backbone_config["embed_dim"]),
            "depths": depths,
            "num_heads": list(backbone_config["num_heads"]),
            "window_size": int(backbone_config["window_size"]),
            "mlp_ratio": float(backbone_config.get("mlp_ratio", 4.0)),
            "qkv_bias": bool(backbone_config.get("qkv_bias", True)),
            "pretrained_window_sizes": list(backbone_config.get("pretrained_window_sizes") or [0] * len(depths)),
        },
        "pretrained_cfg": {
            "tag": "umedpt",
            "custom_load": False,
            "input_size": [channels, side, side],
            "fixed_input_size": True,
            "interpolation": "bilinear",
            "crop_pct": 1.0,
            "crop_mode": "center",
            "mean": mean,
            "std": std,
            "num_classes": 0,
            "pool_size": [side // stride, side // stride],
            "first_conv": "patch_embed.proj",
            "classifier": "head.fc",
            **({"license": licence} if licence else {}),
        },
    }


def _read_umedpt_folder(model_dir: Path) -> tuple[dict, dict, dict[str, torch.Tensor], dict]:
    if not model_dir.exists():
        raise FileNotFoundError(f"UMedPT model folder not found: {model_dir}")
    if not model_dir.is_dir():
        raise ValueError(f"--to timm needs a UMedPT model folder; {model_dir} is a file")
    try:
        config = json.loads((model_dir / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{model_dir} has no readable config.json ({error}): not a saved UMedPT model") from None
    if config.get("model_type") != "umedpt":
        raise ValueError(f"{model_dir} is not a UMedPT folder (model_type {config.get('model_type')!r})")
    backbone_config = dict(config.get("backbone_config") or {})
    if backbone_config.get("model_type") != "swinv2":
        raise ValueError(
            f"{model_dir}: its encoder is {backbone_config.get('model_type')!r}; the timm export supports Swin-V2 only"
        )
    tensors = folder_weights(model_dir)
    backbone = {}
    for key, tensor in tensors.items():
        name = key[len("umedpt.") :] if key.startswith("umedpt.") else key
        if name.startswith("backbone."):
            backbone[name[len("backbone.") :]] = tensor
    if not backbone:
        raise ValueError(f"{model_dir} has no encoder tensors (backbone.*)")
    processor_file = model_dir / "preprocessor_config.json"
    processor = json.loads(processor_file.read_text()) if processor_file.is_file() else {}
    return config, backbone_config, backbone, processor


def _folder_licence(model_dir: Path) -> str | None:
    report = model_dir / "conversion_report.json"
    if report.is_file():
        licence = json.loads(report.read_text()).get("licence", {})
        return licence.get("name") or licence.get("id")
    return None


def export_timm(model_dir: str | Path, out_dir: str | Path) -> Path:
    """Write `model.safetensors` (timm keys), `config.json` and a short README.md to `out_dir` (never overwriting)."""
    model_dir = Path(model_dir)
    _, backbone_config, backbone, processor = _read_umedpt_folder(model_dir)
    state = transformers_to_timm(backbone, str(model_dir))
    num_features = int(backbone_config["embed_dim"]) * 2 ** (len(backbone_config["depths"]) - 1)
    reference = next(iter(state.values()))
    state["norm.weight"] = torch.ones(num_features, dtype=reference.dtype)
    state["norm.bias"] = torch.zeros(num_features, dtype=reference.dtype)
    licence = _folder_licence(model_dir)
    config = timm_config(backbone_config, processor, licence)
    with staged_output(out_dir, MANIFEST) as staging:
        save_file({key: tensor.contiguous() for key, tensor in state.items()}, str(staging / "model.safetensors"))
        (staging / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        (staging / "README.md").write_text(_readme(model_dir, config, licence))
        files = [*sorted(p.name for p in staging.iterdir()), MANIFEST]
        manifest = {"written_by": WRITTEN_BY, "source": model_dir.name, "files": files, "tensors": len(state)}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return Path(out_dir)


def _readme(model_dir: Path, config: dict, licence: str | None) -> str:
    side = config["model_args"]["img_size"]
    return (
        f"---\nlibrary_name: timm\nlicense: {'other' if licence else 'unknown'}\n"
        + (f"license_name: {licence}\n" if licence else "")
        + "tags:\n- image-feature-extraction\n- timm\n- umedpt\n---\n\n"
        f"# {model_dir.name} (timm)\n\nThe Swin-V2 encoder of the UMedPT folder `{model_dir.name}`, exported by "
        "`umedpt convert --to timm` in timm's `SwinTransformerV2` layout. The licence of the source weights applies"
        + (f" ({licence})" if licence else "")
        + ".\n\n```python\nimport timm\n\n"
        'model = timm.create_model("hf-hub:<repo>", pretrained=True)  # or "local-dir:<this folder>"\n'
        f"maps = model.forward_intermediates(images, intermediates_only=True)  # UMedPT's pyramid at {side} px\n```\n\n"
        "UMedPT's pyramid equals timm's intermediates at the native size "
        f"{side}×{side}. The final `norm` is identity-initialised (UMedPT applies none) and UMedPT's image vector "
        "(its squeezer) is not part of timm's layout: use the UMedPT folder for it.\n"
    )
