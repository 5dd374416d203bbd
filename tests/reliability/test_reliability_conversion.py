"""Reliability of conversion: damaged and malicious checkpoints, architectures that do not fit, folders the converter
must not touch, bad timm-export and init_from inputs, and the CLI's one-line errors. Planted payloads would write into
the case folder, so the frame's unchanged-files check also proves that nothing ran."""

from __future__ import annotations

import datetime
import io
import os
import sys
import types
import zipfile
from pathlib import Path

import pytest
import torch
from reliability_cases import Case, assert_cli_error, case_id, run_case
from safetensors.torch import load_file, save_file
from torch import nn

from umedpt_hf import UMedPTConfig, UMedPTForMultiTask, UMedPTModel, tiny_config
from umedpt_hf.conversion import convert_checkpoint, export_timm, init_encoder_from

DATA = Path(__file__).resolve().parents[1] / "conversion" / "data"
STANDIN_ZIP = DATA / "mmm_standin_tiny.pt.zip"
TV_TINY = DATA / "tv_swinv2_tiny.safetensors"


def saved(obj, **kwargs) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer, **kwargs)
    return buffer.getvalue()


def export_with(folder: Path, name: str, replace: dict[str, bytes | None]) -> Path:
    """The stand-in export with some members replaced (None: removed) or added."""
    with zipfile.ZipFile(STANDIN_ZIP) as archive:
        members = {member: archive.read(member) for member in archive.namelist()}
    members.update(replace)
    path = folder / name
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in members.items():
            if data is not None:
                archive.writestr(member, data)
    return path


class OpensFile:
    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


class RunsCommand:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def framework_payload(folder: Path) -> bytes:
    """A pickle whose REDUCE calls `mmm.tools.run`, a name the policy stands in for: it must stay inert."""
    target = folder / "pwned_by_framework_name.txt"
    module = types.ModuleType("mmm.tools")

    def run(path):
        Path(path).write_text("ran")

    run.__module__, run.__qualname__ = "mmm.tools", "run"
    module.run = run

    class Payload:
        def __reduce__(self):
            return (run, (str(target),))

    sys.modules["mmm"], sys.modules["mmm.tools"] = types.ModuleType("mmm"), module
    try:
        return saved({"hook": Payload()})
    finally:
        del sys.modules["mmm"], sys.modules["mmm.tools"]


def convert(source_name: str, **kwargs):
    return lambda folder, prepared: convert_checkpoint(folder / source_name, folder / "out", **kwargs)


def write_bytes(name: str, data: bytes):
    def prepare(folder: Path) -> None:
        (folder / name).write_bytes(data)

    return prepare


def tv_variant(name: str, change):
    def prepare(folder: Path) -> None:
        tensors = load_file(str(TV_TINY))
        change(tensors)
        save_file(tensors, str(folder / name))

    return prepare


def squeezer_module(norm: nn.Module, conv: nn.Module | None = None) -> bytes:
    modules = {"norm": norm, "activation": nn.GELU()}
    if conv is not None:
        modules["conv"] = conv
    return saved(nn.ModuleDict(modules))


def init_into_tiny(source: str):
    def action(folder: Path, prepared) -> None:
        model = UMedPTForMultiTask(tiny_config())
        init_encoder_from(model, source if "/" in source and not (folder / source).exists() else folder / source)

    return action


def convnext_folder(folder: Path) -> None:
    from transformers import ConvNextConfig

    config = UMedPTConfig(backbone_config=ConvNextConfig(hidden_sizes=[8, 16, 32, 64], depths=[1, 1, 1, 1]))
    UMedPTModel(config).save_pretrained(folder / "convnext-umedpt")


def listed_in_report(result, folder: Path) -> None:
    listed = {item["name"]: item for item in result.report["not_converted"]}
    assert listed["decoder.pt"]["tensors"] == 2 and "notes.txt" in listed
    assert (folder / "out" / "model.safetensors").is_file()


def cli(argv: list[str], phrase: str):
    def action(folder: Path, prepared) -> str:
        return assert_cli_error([part.replace("{folder}", str(folder)) for part in argv], phrase)

    return action


def nothing_written(line: str, folder: Path) -> None:
    assert line.startswith("umedpt convert: error:")
    assert not (folder / "out").exists() or not any((folder / "out").iterdir())


def replaced(member: str, data):
    """Prepare the stand-in export `e.pt.zip` with `member` set to `data(folder)` (None removes it)."""
    return lambda folder: export_with(folder, "e.pt.zip", {member: data(folder) if callable(data) else data})


def with_tensor(key: str, tensor: torch.Tensor):
    """Prepare `variant.safetensors`: the tiny torchvision state_dict with one tensor set."""
    return tv_variant("variant.safetensors", lambda tensors: tensors.update({key: tensor}))


STANDIN_ENCODER = zipfile.ZipFile(STANDIN_ZIP).read("encoder.pt")
TV_STATE = load_file(str(TV_TINY))


CASES = [
    Case("truncated export zip", prepare=write_bytes("encoder-1.0.4.pt.zip", STANDIN_ZIP.read_bytes()[:1_000_000]),
         action=convert("encoder-1.0.4.pt.zip"), error=ValueError, phrase=r"not a readable zip \(truncated"),
    Case("export without an encoder", prepare=replaced("encoder.pt", None), action=convert("e.pt.zip"),
         error=ValueError, phrase=r"no encoder\.pt member \(found: squeezer\)"),
    Case("planted open() payload", prepare=replaced("squeezer.pt", lambda f: saved([OpensFile(f / "pwned.txt")])),
         action=convert("e.pt.zip"), error=ValueError, phrase=r"(io|builtins)\.open.*nothing was executed"),
    Case("planted os.system payload", prepare=replaced("encoder.pt", lambda f: saved([RunsCommand(f"touch {f}/x")])),
         action=convert("e.pt.zip"), error=ValueError, phrase=r"(posix|os|nt)\.system"),
    Case("payload under the framework's module name stays inert", prepare=replaced("squeezer.pt", framework_payload),
         action=convert("e.pt.zip"), error=ValueError, phrase=r"squeezer\.pt: the top level is not a pickled"),
    Case("pickle the static scan cannot follow", prepare=write_bytes("p4.pth", saved(TV_STATE, pickle_protocol=4)),
         action=convert("p4.pth"), error=ValueError, phrase="cannot be scanned statically"),
    Case("truncated member inside a valid zip", prepare=replaced("encoder.pt", STANDIN_ENCODER[:50_000]),
         action=convert("e.pt.zip"), error=ValueError, phrase=r"encoder\.pt is damaged or truncated"),
    Case("legacy torch.save format", action=convert("old.pth"), error=ValueError, phrase="zip format",
         prepare=write_bytes("old.pth", saved({"a": torch.ones(1)}, _use_new_zipfile_serialization=False))),
    Case("unknown global in a training checkpoint", action=convert("ckpt.pth"), error=ValueError,
         prepare=write_bytes("ckpt.pth", saved({"state_dict": TV_STATE, "at": datetime.datetime(2024, 1, 1)})),
         phrase=r"datetime\.datetime.*cannot account"),
    Case("unknown architecture (a ResNet state_dict)", action=convert("resnet.safetensors"), error=ValueError,
         prepare=lambda f: save_file({"conv1.weight": torch.zeros(8, 3, 7, 7)}, str(f / "resnet.safetensors")),
         phrase=r"unknown architecture.*conv1\.weight"),
    Case("Swin-V1 weights", prepare=with_tensor("features.1.0.attn.relative_position_bias_table", torch.zeros(225, 1)),
         action=convert("variant.safetensors"), error=ValueError, phrase="Swin-V1"),
    Case("a stage with the wrong width", prepare=with_tensor("features.3.0.norm1.weight", torch.zeros(48)),
         action=convert("variant.safetensors"), error=ValueError, phrase="stage 2 has 48 channels"),
    Case("qkv with the wrong number of rows", prepare=with_tensor("features.1.0.attn.qkv.weight", torch.zeros(40, 16)),
         action=convert("variant.safetensors"), error=ValueError, phrase=r"qkv\.weight has shape \(40, 16\)"),
    Case("squeezer GroupNorm with 4 groups", prepare=replaced("squeezer.pt", squeezer_module(nn.GroupNorm(4, 128))),
         action=convert("e.pt.zip"), error=ValueError, phrase="4 groups is not a LayerNorm"),
    Case("squeezer projection from the wrong width", action=convert("e.pt.zip"), error=ValueError,
         prepare=replaced("squeezer.pt", squeezer_module(nn.GroupNorm(1, 32), nn.Conv2d(64, 32, 1))),
         phrase="1×1 conv from the encoder's 128"),
    Case("damaged safetensors", prepare=write_bytes("w.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{broken"),
         action=convert("w.safetensors"), error=ValueError, phrase="not a readable safetensors"),
    Case("unknown checkpoint type", prepare=write_bytes("model.onnx", b"onnx"), action=convert("model.onnx"),
         error=ValueError, phrase="unknown checkpoint type"),
    Case("non-empty out folder the converter did not write", error=ValueError, phrase=r"not empty.*thesis\.docx",
         prepare=lambda f: ((f / "out").mkdir(), (f / "out" / "thesis.docx").write_bytes(b"mine")),
         action=lambda f, _: convert_checkpoint(TV_TINY, f / "out")),
    Case("out is a file", prepare=lambda f: (f / "target").write_text("x"), error=ValueError, phrase="is a file",
         action=lambda f, _: convert_checkpoint(TV_TINY, f / "target")),
    Case("unknown members are listed, not dropped", action=convert("e.pt.zip"), check=listed_in_report,
         prepare=lambda f: export_with(f, "e.pt.zip", {"decoder.pt": saved(nn.Linear(4, 2)), "notes.txt": b"hi"})),
    Case("init_from with mismatched shapes names the tensors", error=ValueError,
         prepare=write_bytes("tv.safetensors", TV_TINY.read_bytes()), action=init_into_tiny("tv.safetensors"),
         phrase=r"patch_embeddings\.projection\.weight \(16, 3, 4, 4\) vs \(32, 3, 4, 4\)"),
    Case("init_from a folder without config.json", prepare=lambda f: (f / "empty").mkdir(),
         action=init_into_tiny("empty"), error=ValueError, phrase="without config.json"),
    Case("init_from an unreachable Hub id", action=init_into_tiny("someone/not-downloadable"), error=ValueError,
         phrase="could not be fetched"),
    Case("timm export of a ConvNeXt encoder", error=ValueError, phrase="Swin-V2 only", prepare=convnext_folder,
         action=lambda f, _: export_timm(f / "convnext-umedpt", f / "out")),
    Case("timm export of a missing folder", error=FileNotFoundError, phrase="not found",
         action=lambda f, _: export_timm(f / "nowhere", f / "out")),
    Case("CLI: missing checkpoint", check=nothing_written,
         action=cli(["convert", "{folder}/encoder.pt.zip", "--out", "{folder}/out"], "checkpoint not found")),
    Case("CLI: planted payload", check=nothing_written,
         prepare=replaced("squeezer.pt", lambda f: saved([OpensFile(f / "pwned.txt")])),
         action=cli(["convert", "{folder}/e.pt.zip", "--out", "{folder}/out"], r"open.*nothing was executed")),
    Case("CLI: a dangerous stand-in module", check=nothing_written,
         action=cli(["convert", str(STANDIN_ZIP), "--out", "{folder}/out", "--stand-in-module", "os"], "refused")),
    Case("CLI: --to timm on a file", check=nothing_written,
         action=cli(["convert", str(TV_TINY), "--to", "timm", "--out", "{folder}/out"], "is a file")),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_conversion(case, tmp_path):
    run_case(case, tmp_path)
