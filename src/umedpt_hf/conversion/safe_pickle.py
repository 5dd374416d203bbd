"""Read a `torch.save` file without executing it: a static scan of its pickle, inert stand-ins for the globals the
scan accounts for, torch's `weights_only=True` unpickler, and a walk of the rebuilt modules' parameters and buffers.

Nothing here imports torchvision or the authors' package, and no pickled callable is ever called.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from dataclasses import dataclass, field
from typing import Any

import torch

from .stand_ins import StandIn, classify_globals, make_stand_in

MAX_MODULE_DEPTH = 64
# hooks that change what a module computes; a converter cannot reproduce them from the weights
FORWARD_HOOK_FIELDS = ("_forward_hooks", "_forward_pre_hooks", "_forward_hooks_with_kwargs")


def scan_globals(data: bytes, label: str) -> list[str]:
    """The globals a `torch.save` file names beyond torch's own safe set, found by disassembling its pickle.

    Raises ValueError (naming `label`) for a file that is not a zip-format `torch.save` file or whose pickle uses an
    opcode the scan cannot follow (such a pickle is refused, never loaded)."""
    if not zipfile.is_zipfile(io.BytesIO(data)):
        if data.startswith(b"PK\x03\x04"):
            raise ValueError(f"{label} is damaged or truncated: its zip directory is missing")
        raise ValueError(
            f"{label} is not a torch.save file in the zip format (torch >= 1.6); legacy or foreign pickles are not read"
        )
    try:
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(io.BytesIO(data)))
    except (pickle.UnpicklingError, EOFError) as error:
        raise ValueError(f"{label}: its pickle cannot be scanned statically ({error}); refused") from None
    except (RuntimeError, ValueError, KeyError) as error:
        raise ValueError(f"{label} is damaged or not a torch.save file: {_one_line(error)}") from None


def refuse_unaccounted(refused: list[str], label: str) -> None:
    """The one error for globals the scan cannot account for (raised before anything is unpickled)."""
    if refused:
        raise ValueError(
            f"{label} names {', '.join(refused)}, which the scan cannot account for (only torch, torchvision and "
            "the UMedPT framework's classes get inert stand-ins); refused without unpickling (nothing was executed)"
        )


def load_without_code(data: bytes, label: str, extra_roots: tuple[str, ...] = ()) -> tuple[Any, list[str]]:
    """Unpickle a `torch.save` file with `weights_only=True`, every foreign global replaced by an inert stand-in.

    Returns the rebuilt object and the globals that were stood in. Raises ValueError naming the global(s) the scan
    cannot account for (nothing is unpickled then), or naming `label` when the file is damaged."""
    found = scan_globals(data, label)
    accepted, refused = classify_globals(found, extra_roots)
    refuse_unaccounted(refused, label)
    stand_ins = [(make_stand_in(name), name) for name in accepted]
    try:
        with torch.serialization.safe_globals(stand_ins):
            loaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(f"{label}: the safe unpickler refused it ({_one_line(error)})") from None
    except (RuntimeError, EOFError, KeyError, ValueError, TypeError, AttributeError) as error:
        raise ValueError(f"{label} is damaged or truncated: {_one_line(error)}") from None
    return loaded, accepted


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text[:300] + ("…" if len(text) > 300 else "")


@dataclass
class ModuleTree:
    """What a pickled module holds: persistent tensors by dotted key, and the class and attributes of each module."""

    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    classes: dict[str, str] = field(default_factory=dict)  # module path ("" = root) -> dotted class name
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)  # module path -> plain attributes
    skipped_buffers: list[str] = field(default_factory=list)  # non-persistent buffers (not part of a state_dict)
    loose_tensors: list[str] = field(default_factory=list)  # tensors held as plain attributes (not converted)
    forward_hooks: list[str] = field(default_factory=list)  # modules with registered forward (pre-)hooks


PLAIN_TYPES = (bool, int, float, str, type(None))


def flatten_modules(root: Any, label: str) -> ModuleTree:
    """Walk a rebuilt `nn.Module` tree (stand-ins) the way `state_dict()` does: `_parameters`, `_buffers` (minus
    `_non_persistent_buffers_set`) and `_modules`, recursively."""
    tree = ModuleTree()
    _walk(root, "", tree, label, depth=0)
    return tree


def _walk(node: Any, prefix: str, tree: ModuleTree, label: str, depth: int) -> None:
    if depth > MAX_MODULE_DEPTH:
        raise ValueError(f"{label}: modules nested deeper than {MAX_MODULE_DEPTH} levels at {prefix!r}; refused")
    if not isinstance(node, StandIn) or "_parameters" not in node.module_state:
        raise ValueError(f"{label}: {prefix or 'the top level'} is not a pickled nn.Module ({type(node).__name__})")
    state = node.module_state
    path = prefix.rstrip(".")
    tree.classes[path] = node.global_name
    tree.attributes[path] = {k: v for k, v in state.items() if not k.startswith("_") and _is_plain(v)}
    if any(state.get(name) for name in FORWARD_HOOK_FIELDS):
        tree.forward_hooks.append(path or "(top level)")
    non_persistent = set(state.get("_non_persistent_buffers_set") or ())
    for kind in ("_parameters", "_buffers"):
        for name, tensor in (state.get(kind) or {}).items():
            if tensor is None:
                continue
            if not isinstance(tensor, torch.Tensor):
                raise ValueError(f"{label}: {prefix}{name} is a {type(tensor).__name__}, not a tensor")
            if kind == "_buffers" and name in non_persistent:
                tree.skipped_buffers.append(prefix + name)
                continue
            tree.tensors[prefix + name] = tensor.detach()
    for name, value in state.items():
        if not name.startswith("_") and isinstance(value, torch.Tensor):
            tree.loose_tensors.append(prefix + name)
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            _walk(child, f"{prefix}{name}.", tree, label, depth + 1)


def _is_plain(value: Any) -> bool:
    if isinstance(value, PLAIN_TYPES):
        return True
    if isinstance(value, (list, tuple)):
        return all(isinstance(item, PLAIN_TYPES) for item in value)
    return False


def as_state_dict(loaded: Any, label: str) -> dict[str, torch.Tensor]:
    """A plain `{name: tensor}` from what `torch.load` returned: a state_dict, one wrapped under "state_dict" / "model"
    (the usual training-checkpoint layouts), or a whole pickled module (walked like `state_dict()`)."""
    if isinstance(loaded, StandIn):
        return flatten_modules(loaded, label).tensors
    if isinstance(loaded, dict):
        if loaded and all(isinstance(value, torch.Tensor) for value in loaded.values()):
            return dict(loaded)
        for key in ("state_dict", "model", "model_state_dict"):
            if key in loaded:
                return as_state_dict(loaded[key], f"{label}[{key!r}]")
    raise ValueError(f"{label} holds a {type(loaded).__name__}, not a state_dict or a module; nothing to convert")
