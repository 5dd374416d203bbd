"""Training state as safetensors and JSON: nothing in a checkpoint is read with pickle.

Tensors (weights, optimizer moments, torch RNG states) go to safetensors; everything else (optimizer hyper-parameters,
the learning-rate schedule, Python's and NumPy's RNG states, the loop's position) to JSON. A file that is not what it
should be raises `CheckpointError` naming it; nothing in it is ever executed.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, of another format or from another run set-up; names the file."""


# ------------------------------------------------------------------------------------------------ files
def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, allow_nan=True))


def read_json(path: Path) -> Any:
    """A JSON file, or CheckpointError naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing from the checkpoint") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is not valid JSON ({error}); the checkpoint is corrupt") from None


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file, or CheckpointError naming it (truncated, corrupt, or not safetensors at all)."""
    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing from the checkpoint") from None
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({error}); the checkpoint is corrupt"
        ) from None


# ------------------------------------------------------------------------------------------------ model
def model_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict as contiguous CPU tensors, each storage once (tied weights are stored once)."""
    seen: dict[tuple[int, int], str] = {}
    tensors = {}
    for name, tensor in model.state_dict().items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset()) if tensor.numel() else (id(tensor), 0)
        if key in seen:
            continue
        seen[key] = name
        tensors[name] = tensor.detach().to("cpu").contiguous()
    return tensors


def load_model_state(model: torch.nn.Module, path: Path) -> None:
    tensors = read_tensors(path)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    tied = {name for name in missing if _shares_storage(expected, name, tensors)}
    if (set(missing) - tied) or unexpected:
        raise CheckpointError(
            f"{path} does not fit this model (missing {sorted(set(missing) - tied)[:3]}, unexpected "
            f"{unexpected[:3]}): resume with the model configuration the run started with"
        )
    for name, tensor in tensors.items():
        if tensor.shape != expected[name].shape:
            raise CheckpointError(
                f"{path}: {name} has shape {tuple(tensor.shape)}, the model {tuple(expected[name].shape)}"
            )
    model.load_state_dict(tensors, strict=False)


def _shares_storage(expected: Mapping[str, torch.Tensor], name: str, saved: Mapping[str, torch.Tensor]) -> bool:
    pointer = expected[name].untyped_storage().data_ptr()
    return any(expected[other].untyped_storage().data_ptr() == pointer for other in saved if other in expected)


# ------------------------------------------------------------------------------------------------ optimizer
def save_optimizer(optimizer: torch.optim.Optimizer, folder: Path) -> list[str]:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value.detach().to("cpu").contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    save_file(tensors, str(folder / "optimizer.safetensors"))
    groups = [{key: _plain(value, "optimizer param_groups") for key, value in g.items()} for g in state["param_groups"]]
    write_json(folder / "optimizer.json", {"param_groups": groups, "scalars": scalars})
    return ["optimizer.safetensors", "optimizer.json"]


def load_optimizer(optimizer: torch.optim.Optimizer, folder: Path) -> None:
    tensors = read_tensors(folder / "optimizer.safetensors")
    meta = read_json(folder / "optimizer.json")
    state: dict[int, dict[str, Any]] = {}
    for key, tensor in tensors.items():
        index, _, name = key.partition(".")
        state.setdefault(int(index), {})[name] = tensor
    for index, values in meta.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(values)
    groups = meta["param_groups"]
    if len(groups) != len(optimizer.param_groups) or any(
        len(saved["params"]) != len(current["params"]) for saved, current in zip(groups, optimizer.param_groups)
    ):
        raise CheckpointError(
            f"{folder / 'optimizer.json'}: the optimizer's parameter groups differ from this run's; resume with the "
            "same model and options"
        )
    for group in groups:
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": state, "param_groups": groups})


# ------------------------------------------------------------------------------------------------ schedule
def save_scheduler(scheduler: Any, folder: Path) -> list[str]:
    write_json(folder / "scheduler.json", _plain(scheduler.state_dict(), "the learning-rate scheduler's state"))
    return ["scheduler.json"]


def load_scheduler(scheduler: Any, folder: Path) -> None:
    scheduler.load_state_dict(read_json(folder / "scheduler.json"))


# ------------------------------------------------------------------------------------------------ RNG states
def save_rng_states(folder: Path, rank: int) -> list[str]:
    """torch (CPU and every CUDA device) as tensors; Python's `random` and NumPy's global generator as JSON."""
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for device, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{device}"] = state
    save_file(tensors, str(folder / f"rng_state_{rank}.safetensors"))
    version, internal, gauss = random.getstate()
    kind, keys, position, has_gauss, cached = np.random.get_state()
    write_json(
        folder / f"rng_state_{rank}.json",
        {
            "python": [version, list(internal), gauss],
            "numpy": [kind, keys.tolist(), int(position), int(has_gauss), float(cached)],
        },
    )
    return [f"rng_state_{rank}.safetensors", f"rng_state_{rank}.json"]


def load_rng_states(folder: Path, rank: int) -> None:
    path = folder / f"rng_state_{rank}.safetensors"
    tensors = read_tensors(path)
    states = read_json(folder / f"rng_state_{rank}.json")
    try:
        version, internal, gauss = states["python"]
        kind, keys, position, has_gauss, cached = states["numpy"]
        python_state = (int(version), tuple(int(v) for v in internal), gauss)
        numpy_state = (str(kind), np.asarray(keys, dtype=np.uint32), int(position), int(has_gauss), float(cached))
        torch_state = tensors["torch_cpu"]
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{folder}: the random-number states of rank {rank} are malformed ({error})") from None
    random.setstate(python_state)
    np.random.set_state(numpy_state)
    torch.set_rng_state(torch_state)
    cuda = sorted(key for key in tensors if key.startswith("torch_cuda_"))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[key] for key in cuda][: torch.cuda.device_count()])


def _plain(value: Any, what: str) -> Any:
    """JSON-ready data (tuples as lists); anything else (tensors, objects) is an error naming `what`."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item, what) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item, what) for item in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value  # JSON keeps floats exactly (NaN / Infinity included)
    if torch.is_tensor(value) and value.numel() == 1:
        return value.item()
    raise CheckpointError(f"{what} holds a {type(value).__name__}, which a JSON checkpoint cannot store")
