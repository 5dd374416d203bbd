"""Reading `torch.save` files without executing them: the scan, the stand-ins, the module walk."""

from __future__ import annotations

import functools
import io
import os
import pickle

import pytest
import torch
from conversion_helpers import CreatesFile, saved
from torch import nn

from umedpt_hf.conversion.safe_pickle import as_state_dict, flatten_modules, load_without_code, scan_globals
from umedpt_hf.conversion.stand_ins import StandIn, check_stand_in_roots, classify_globals, make_stand_in


class RunsCommand:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_payload_is_live_with_plain_unpickling_and_inert_here(tmp_path):
    blob = saved({"weight": torch.ones(2), "payload": CreatesFile(str(tmp_path / "created_by_plain_load"))})
    torch.load(io.BytesIO(blob), weights_only=False)  # what the authors' loader does: it runs the payload
    assert (tmp_path / "created_by_plain_load").exists()

    target = tmp_path / "must_not_exist"
    blob = saved({"weight": torch.ones(2), "payload": CreatesFile(str(target))})
    with pytest.raises(ValueError, match=r"(io|builtins)\.open.*nothing was executed"):
        load_without_code(blob, "payload.pt")
    assert not target.exists()


def test_os_system_is_refused_by_name(tmp_path):
    target = tmp_path / "touched"
    blob = saved([RunsCommand(f"touch {target}")])
    with pytest.raises(ValueError, match=r"(posix|os|nt)\.system"):
        load_without_code(blob, "payload.pt")
    assert not target.exists()


def test_classify_globals_accepts_framework_classes_and_refuses_the_rest():
    accepted, refused = classify_globals(
        {
            "torchvision.models.swin_transformer.SwinTransformer",
            "mmm.blocks.Encoder",
            "functools.partial",
            "builtins.getattr",
            "builtins.eval",
            "subprocess.Popen",
            "mycompany.Model",
        }
    )
    assert accepted == ["builtins.getattr", "functools.partial", "mmm.blocks.Encoder",
                        "torchvision.models.swin_transformer.SwinTransformer"]  # fmt: skip
    assert refused == ["builtins.eval", "mycompany.Model", "subprocess.Popen"]
    assert classify_globals({"mycompany.Model"}, ("mycompany",)) == (["mycompany.Model"], [])


def test_user_stand_in_roots_cannot_name_dangerous_modules():
    assert check_stand_in_roots(["mycompany.models"]) == ("mycompany.models",)
    for root in ("os", "builtins", "subprocess.run", "torch"):
        with pytest.raises(ValueError, match="refused"):
            check_stand_in_roots([root])


def test_stand_ins_only_record():
    getattr_stand_in = make_stand_in("builtins.getattr")
    result = getattr_stand_in("anything", "__class__")
    assert isinstance(result, StandIn) and result.args == ("anything", "__class__")
    result.__setstate__({"a": 1})
    assert result.module_state == {"a": 1}
    assert "builtins.getattr" in repr(result)


def test_whole_pickled_module_walks_like_its_state_dict():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.GroupNorm(1, 4), nn.GELU(), nn.Linear(4, 2))
    model[1].register_buffer("scratch", torch.arange(3.0), persistent=False)
    model[1].register_buffer("kept", torch.arange(2.0))
    loaded, stood_in = load_without_code(saved(model), "model.pt")
    assert "torch.nn.modules.conv.Conv2d" in stood_in and isinstance(loaded, StandIn)
    tree = flatten_modules(loaded, "model.pt")
    expected = model.state_dict()
    assert tree.tensors.keys() == expected.keys()
    assert all(torch.equal(tree.tensors[key], expected[key]) for key in expected)
    assert tree.skipped_buffers == ["1.scratch"]
    assert tree.classes["1"] == "torch.nn.modules.normalization.GroupNorm"
    assert tree.attributes["1"]["num_groups"] == 1
    assert as_state_dict(loaded, "model.pt").keys() == expected.keys()


def test_forward_hooks_are_recorded_and_foreign_hooks_refused():
    model = nn.Sequential(nn.Linear(2, 2))
    model[0].register_forward_hook(functools.partial(max))  # picklable, and stood in like the authors' hook
    tree = flatten_modules(load_without_code(saved(model), "hooked.pt")[0], "hooked.pt")
    assert tree.forward_hooks == ["0"]
    model[0].register_forward_hook(print)  # a builtin outside the policy
    with pytest.raises(ValueError, match=r"builtins\.print"):
        load_without_code(saved(model), "hooked.pt")


def test_state_dict_layouts():
    state = {"a": torch.ones(1)}
    assert as_state_dict(state, "x").keys() == {"a"}
    assert as_state_dict({"state_dict": state, "epoch": 3}, "x").keys() == {"a"}
    with pytest.raises(ValueError, match="not a state_dict"):
        as_state_dict([1, 2], "x")


def test_legacy_and_foreign_pickles_are_refused():
    legacy = io.BytesIO()
    torch.save({"a": torch.ones(1)}, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(ValueError, match="zip format"):
        scan_globals(legacy.getvalue(), "legacy.pt")
    with pytest.raises(ValueError, match="zip format"):
        scan_globals(pickle.dumps({"a": 1}), "plain.pkl")


def test_a_framework_module_with_a_pydantic_config_enum_and_path_reads_without_its_package(tmp_path):
    """The authors' blocks carry a pydantic config (Enums, paths) next to their weights: all stood in, nothing built."""
    import enum
    import pathlib
    import sys
    import types

    import pydantic

    package, blocks = types.ModuleType("mmm"), types.ModuleType("mmm.blocks")

    class Pooling(enum.Enum):
        AVERAGE = "average"

    class Config(pydantic.BaseModel):
        pooling: Pooling = Pooling.AVERAGE
        cache: pathlib.PurePosixPath = pathlib.PurePosixPath("/data/cache")

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = Config()
            self.proj = nn.Linear(3, 2)

    for cls in (Pooling, Config, Encoder):
        cls.__module__, cls.__qualname__ = "mmm.blocks", cls.__name__
        setattr(blocks, cls.__name__, cls)
    sys.modules["mmm"], sys.modules["mmm.blocks"] = package, blocks
    try:
        model = Encoder()
        blob = saved(model)
    finally:
        del sys.modules["mmm"], sys.modules["mmm.blocks"]
    loaded, stood_in = load_without_code(blob, "encoder.pt")
    assert {"mmm.blocks.Encoder", "mmm.blocks.Config", "mmm.blocks.Pooling"} <= set(stood_in), stood_in
    assert "pathlib.PurePosixPath" in stood_in
    tensors = flatten_modules(loaded, "encoder.pt").tensors
    assert tensors.keys() == {"proj.weight", "proj.bias"}
    assert torch.equal(tensors["proj.weight"], model.proj.weight.detach())
    assert isinstance(loaded.module_state["config"], StandIn)
