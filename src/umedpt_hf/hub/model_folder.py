"""A saved UMedPT model folder checked for publishing: weights, config with ``auto_map``, remote code, processor."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers.dynamic_module_utils import get_relative_imports

from umedpt_hf.hub.preflight import read_safetensors_header

IMAGE_PROCESSOR_AUTO_MAP = {"AutoImageProcessor": "image_processing_umedpt.UMedPTImageProcessor"}


def _package_dir() -> Path:
    return Path(__file__).resolve().parents[1]


def _safetensors_numel(path: Path) -> int:
    """Number of parameters in a safetensors file, read from its header (no tensor is loaded)."""
    _, header = read_safetensors_header(path)
    return sum(math.prod(info["shape"]) for name, info in header.items() if name != "__metadata__")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None


def _read_json_object(path: Path) -> dict[str, Any]:
    data = _read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a JSON object (found a {type(data).__name__})")
    return data


@dataclass
class ModelFolder:
    """What ``push_to_hub`` uploads from a folder where the model and its processor were saved (``save_pretrained``).

    Use :meth:`open`, which raises a clear error for a folder that is not a saved UMedPT model.
    """

    path: Path
    config: dict[str, Any]
    processor: dict[str, Any]
    weight_files: list[str]
    tasks_json: dict | list | None = None
    code: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def open(cls, path: str | Path) -> ModelFolder:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"model folder not found: {path}")
        if not path.is_dir():
            raise ValueError(f"{path} is a file; pass the folder written by `model.save_pretrained(folder)`")
        config_file = path / "config.json"
        if not config_file.is_file():
            raise ValueError(f"{path} is not a saved model: it has no config.json (write it with `save_pretrained`)")
        config = _read_json_object(config_file)
        if config.get("model_type") != "umedpt":
            raise ValueError(
                f"{path} is not a UMedPT model: config.json has model_type {config.get('model_type')!r}, not 'umedpt'"
            )
        weight_files = sorted(p.name for p in path.glob("*.safetensors"))
        if (path / "model.safetensors.index.json").is_file():
            weight_files.append("model.safetensors.index.json")
        if not any(name.endswith(".safetensors") for name in weight_files):
            found = sorted(p.name for p in path.glob("*.bin")) or "none"
            raise ValueError(
                f"{path} has no safetensors weights (found .bin files: {found}); save with `save_pretrained(folder)` "
                "(safetensors is the default)"
            )
        processor_file = path / "preprocessor_config.json"
        if not processor_file.is_file():
            raise ValueError(
                f"{path} has no preprocessor_config.json; save the image processor next to the weights: "
                "`UMedPTImageProcessor(...).save_pretrained(folder)`"
            )
        processor = _read_json_object(processor_file)
        tasks_file = path / "tasks.json"
        tasks_json = _read_json(tasks_file) if tasks_file.is_file() else None
        folder = cls(path, config, processor, weight_files, tasks_json)
        folder._collect_code()
        return folder

    # -- what the card shows -------------------------------------------------------------------------------------
    @property
    def tasks(self) -> dict[str, dict]:
        return dict(self.config.get("tasks") or {})

    @property
    def architecture(self) -> str:
        return (self.config.get("architectures") or ["UMedPTModel"])[0]

    @property
    def backbone(self) -> dict:
        return dict(self.config.get("backbone_config") or {})

    @property
    def hidden_size(self) -> int:
        backbone = self.backbone
        if backbone.get("hidden_sizes"):
            return int(backbone["hidden_sizes"][-1])
        if backbone.get("hidden_size"):
            return int(backbone["hidden_size"])
        if backbone.get("embed_dim") and backbone.get("depths"):
            return int(backbone["embed_dim"] * 2 ** (len(backbone["depths"]) - 1))
        return 0

    @property
    def num_channels(self) -> int:
        return int(self.config.get("num_channels") or self.backbone.get("num_channels") or 3)

    @property
    def encoder_description(self) -> str:
        backbone = self.backbone
        details = [
            f"{key} {backbone[key]}"
            for key in ("embed_dim", "depths", "window_size", "hidden_sizes")
            if key in backbone
        ]
        return f"{backbone.get('model_type', 'unknown')} backbone" + (f" ({', '.join(details)})" if details else "")

    @property
    def num_parameters(self) -> int:
        return sum(_safetensors_numel(self.path / name) for name in self.weight_files if name.endswith(".safetensors"))

    # -- what goes to the Hub ------------------------------------------------------------------------------------
    def _collect_code(self) -> None:
        """The modules the auto_maps name and everything they import relatively; the folder's own copy first, the
        installed package's otherwise (so a folder saved without the processor code still loads remotely)."""
        modules = {ref.split(".")[0] for ref in self.config_auto_map().values()}
        modules |= {ref.split(".")[0] for ref in self.processor_auto_map().values()}
        pending = sorted(modules)
        while pending:
            name = pending.pop()
            if name in self.code:
                continue
            for candidate in (self.path / f"{name}.py", _package_dir() / f"{name}.py"):
                if candidate.is_file():
                    source = candidate.read_bytes()
                    imports = set(get_relative_imports(str(candidate)))  # the same parser transformers loads with
                    break
            else:
                raise ValueError(
                    f"the remote code of {self.path} needs module {name}.py, found neither there nor in umedpt_hf"
                )
            self.code[name] = source
            pending.extend(sorted(imports - set(self.code)))

    def config_auto_map(self) -> dict[str, str]:
        auto_map = self.config.get("auto_map")
        if not auto_map:
            raise ValueError(
                f"{self.path}/config.json has no auto_map; save the model with UMedPT's `save_pretrained`, which adds "
                "the remote-code entries"
            )
        return dict(auto_map)

    def processor_auto_map(self) -> dict[str, str]:
        return dict(self.processor.get("auto_map") or IMAGE_PROCESSOR_AUTO_MAP)

    def files_to_upload(self) -> dict[str, bytes | Path]:
        """``{path in repo: content}``: weights, config.json, preprocessor_config.json (with auto_map), code."""
        files: dict[str, bytes | Path] = {name: self.path / name for name in self.weight_files}
        files["config.json"] = self.path / "config.json"
        processor = {**self.processor, "auto_map": self.processor_auto_map()}
        files["preprocessor_config.json"] = (json.dumps(processor, indent=2, sort_keys=True) + "\n").encode()
        for name, source in self.code.items():
            files[f"{name}.py"] = source
        if (self.path / "tasks.json").is_file():
            files["tasks.json"] = self.path / "tasks.json"
        return files
