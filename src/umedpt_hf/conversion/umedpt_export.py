"""The authors' export (`encoder-1.0.4.pt.zip`): a zip with one whole pickled `nn.Module` per block (`encoder.pt`,
`squeezer.pt`, maybe decoders and task heads), read without executing anything.

Every member is scanned before any is unpickled; one the scan cannot account for refuses the whole file. The encoder
is torchvision's Swin-V2 under `model.wrapped_model.`; its pyramid is the output of stages 1-4 without the final norm.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .safe_pickle import ModuleTree, flatten_modules, load_without_code, refuse_unaccounted, scan_globals
from .stand_ins import classify_globals
from .swin_geometry import find_swin_prefix

ENCODER, SQUEEZER = "encoder", "squeezer"


@dataclass
class ExportContents:
    """The blocks of an export: module trees by block name, and what else the zip holds."""

    blocks: dict[str, ModuleTree] = field(default_factory=dict)
    other_members: list[str] = field(default_factory=list)  # members that are not `<block>.pt`
    stood_in: list[str] = field(default_factory=list)


def zip_kind(path: Path) -> str | None:
    """ "torch" for a `torch.save` archive, "export" for any other zip (the authors' layout), "damaged" for a file
    that starts like a zip but cannot be opened, None for a file that is not a zip."""
    with path.open("rb") as handle:
        if handle.read(4) != b"PK\x03\x04":
            return None
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return "damaged"
    return "torch" if any(name.endswith("/data.pkl") and name.count("/") == 1 for name in names) else "export"


def _block_name(member: str) -> str:
    return Path(member).name[: -len(".pt")]


def read_export(path: Path, extra_roots: tuple[str, ...] = ()) -> ExportContents:
    """Scan every member, then unpickle each block with stand-ins. Raises ValueError naming the file and member."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise ValueError(f"{path} is not a readable zip (truncated or damaged): {error}") from None
    contents = ExportContents()
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        block_members = {}
        for info in members:
            if info.filename.endswith(".pt"):
                name = _block_name(info.filename)
                if name in block_members:
                    raise ValueError(
                        f"{path} has two members for block {name!r}: {block_members[name]}, {info.filename}"
                    )
                block_members[name] = info.filename
            else:
                contents.other_members.append(info.filename)
        if ENCODER not in block_members:
            found = ", ".join(sorted(block_members)) or "no .pt members"
            raise ValueError(f"{path} has no encoder.pt member (found: {found}); it is not a UMedPT encoder export")
        data = {}
        for name, member in sorted(block_members.items()):
            label = f"{path.name}:{member}"
            try:
                data[name] = archive.read(member)
            except (zipfile.BadZipFile, EOFError, OSError) as error:
                raise ValueError(f"{label} cannot be read (truncated or damaged zip): {error}") from None
            # every member is checked before any is unpickled
            refuse_unaccounted(classify_globals(scan_globals(data[name], label), extra_roots)[1], label)
    for name, blob in data.items():
        label = f"{path.name}:{block_members[name]}"
        loaded, stood_in = load_without_code(blob, label, extra_roots)
        contents.blocks[name] = flatten_modules(loaded, label)
        contents.stood_in = sorted(set(contents.stood_in) | set(stood_in))
    return contents


def encoder_tensors(tree: ModuleTree, label: str) -> tuple[str, dict[str, torch.Tensor], dict[str, str], float]:
    """The key prefix of the torchvision Swin-V2 inside the encoder block, its state_dict, what else the block holds
    (key -> reason), and the LayerNorm eps its modules use. Refuses tensors outside the Swin model (e.g. a
    `remapper`) and forward hooks: they change the pyramid, and this converter does not guess what they do."""
    prefix = find_swin_prefix(tree.tensors, label)
    outside = sorted(key for key in tree.tensors if not key.startswith(prefix))
    if outside:
        shown = ", ".join(outside[:5]) + (f" and {len(outside) - 5} more" if len(outside) > 5 else "")
        raise ValueError(
            f"{label}: tensors outside the Swin model ({shown}) would change the pyramid; not converted exactly, "
            "so the file is refused"
        )
    if tree.forward_hooks:
        raise ValueError(f"{label}: forward hooks on {', '.join(tree.forward_hooks)} cannot be converted")
    eps_values = {
        float(attributes["eps"])
        for path, attributes in tree.attributes.items()
        if path.startswith(prefix.rstrip(".")) and tree.classes[path].endswith(".LayerNorm") and "eps" in attributes
    }
    if len(eps_values) > 1:
        raise ValueError(f"{label}: its LayerNorms use several eps values {sorted(eps_values)}; Swinv2 has one")
    notes = {name: "tensor held as a plain attribute, not a parameter or buffer" for name in tree.loose_tensors}
    notes.update({name: "non-persistent buffer (not part of the state_dict)" for name in tree.skipped_buffers})
    swin = {key[len(prefix) :]: tensor for key, tensor in tree.tensors.items()}
    return prefix, swin, notes, eps_values.pop() if eps_values else 1e-5


def block_summary(tree: ModuleTree) -> dict:
    """Tensors, parameters and top-level modules of a block (for the report of blocks not converted)."""
    tops = sorted({key.split(".")[0] for key in tree.tensors})
    return {
        "class": tree.classes.get(""),
        "tensors": len(tree.tensors),
        "parameters": int(sum(tensor.numel() for tensor in tree.tensors.values())),
        "top_level_modules": tops,
    }
