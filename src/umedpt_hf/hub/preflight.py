"""Checks that run before anything is uploaded: repo ids, complete safetensors files, a folder that loads."""

from __future__ import annotations

import contextlib
import json
import struct
import warnings
from collections.abc import Iterator
from pathlib import Path

from huggingface_hub.utils import validate_repo_id
from safetensors import SafetensorError, safe_open
from transformers.utils import logging as hf_logging

# what loading a broken folder raises, besides ValueError (safetensors, torch and transformers do not agree on a class)
_LOAD_ERRORS = (ValueError, TypeError, KeyError, AttributeError, OSError, RuntimeError, SafetensorError)


def check_repo_id(repo_id: str, what: str = "model repo id") -> str:
    """``repo_id`` if it is a valid ``namespace/name`` on the Hub; a ValueError naming ``what`` otherwise."""
    if not isinstance(repo_id, str) or repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ValueError(f"{what} must be 'namespace/name', got {repo_id!r}")
    try:
        validate_repo_id(repo_id)
    except ValueError as error:  # HFValidationError
        raise ValueError(f"{what} {repo_id!r} is not valid on the Hub: {error}") from None
    return repo_id


def read_safetensors_header(path: Path) -> tuple[int, dict]:
    """``(header length, header)`` of a safetensors file, read without loading a tensor; ValueError if it has none."""
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise ValueError(f"{path} is not a safetensors file: {len(prefix)} bytes, shorter than its 8-byte header")
        (length,) = struct.unpack("<Q", prefix)
        if length > path.stat().st_size:
            raise ValueError(f"{path} is not a safetensors file: its header length ({length}) exceeds the file size")
        try:
            header = json.loads(handle.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{path} is not a safetensors file: its header is not JSON ({error})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path} is not a safetensors file: its header is not a JSON object")
    return length, header


def promised_size(path: Path) -> int:
    """The file size a safetensors header promises (8 + header length + end of the last tensor's data)."""
    length, header = read_safetensors_header(path)
    try:
        ends = [int(info["data_offsets"][1]) for name, info in header.items() if name != "__metadata__"]
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise ValueError(f"{path} is not a safetensors file: a tensor entry has no data_offsets ({error})") from None
    return 8 + length + max(ends, default=0)


def check_safetensors(path: Path) -> None:
    """A complete, readable safetensors file: its size is the one its header promises and safetensors opens it."""
    expected, actual = promised_size(path), path.stat().st_size
    if actual != expected:
        state = "truncated" if actual < expected else "longer than its header says"
        raise ValueError(f"{path} is {state}: its header promises {expected} bytes, the file has {actual}")
    try:
        with safe_open(str(path), framework="pt") as weights:
            list(weights.keys())
    except SafetensorError as error:
        raise ValueError(f"{path} cannot be read as safetensors: {error}") from None


def check_weight_files(folder: Path, weight_files: list[str]) -> None:
    """Every safetensors file of the folder, and every shard a ``model.safetensors.index.json`` names, is complete."""
    names = [name for name in weight_files if name.endswith(".safetensors")]
    if "model.safetensors.index.json" in weight_files:
        index_file = folder / "model.safetensors.index.json"
        try:
            shards = set(json.loads(index_file.read_text())["weight_map"].values())
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"{index_file} is not a safetensors index (JSON with a weight_map): {error}") from None
        missing = sorted(shard for shard in shards if not (folder / shard).is_file())
        if missing:
            raise ValueError(f"{index_file} names shards that are not in the folder: {', '.join(missing)}")
    for name in names:
        check_safetensors(folder / name)


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No load report, progress bar or warning from a load whose result is checked here."""
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def check_loads(folder: Path, architecture: str) -> None:
    """The folder loads with ``from_pretrained`` (config and weights), every parameter found with its shape."""
    import umedpt_hf

    model_class = getattr(umedpt_hf, architecture, None) or umedpt_hf.UMedPTModel
    try:
        with _quiet_transformers():
            _, info = model_class.from_pretrained(folder, output_loading_info=True)
    except _LOAD_ERRORS as error:
        summary = " ".join(str(error).split())[:300]
        raise ValueError(f"{folder} does not load with {model_class.__name__}.from_pretrained: {summary}") from None
    missing = sorted(info.get("missing_keys") or [])
    mismatched = info.get("mismatched_keys") or []
    if missing or mismatched:
        named = ", ".join([*missing[:3], *[str(m[0]) if isinstance(m, tuple) else str(m) for m in mismatched[:3]]])
        raise ValueError(
            f"{folder}: the weights do not match config.json ({len(missing)} missing, {len(mismatched)} of another "
            f"shape, e.g. {named})"
        )
