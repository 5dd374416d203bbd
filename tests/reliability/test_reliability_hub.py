"""Reliability of publishing: `umedpt push` refuses a bad folder, name or result file before anything is uploaded,
and every CLI error is one line naming the problem (exit code 2).

No Hub runs here: a case whose checks pass would reach for the network (HF_ENDPOINT points at a closed port) and fail
with another message, so each refusal is shown to happen before any upload.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest
import torch
import yaml
from reliability_cases import Case, assert_cli_error, case_id, run_case
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from umedpt_hf.cli.main import describe, is_bad_input
from umedpt_hf.hub import push_to_hub
from umedpt_hf.hub.push import check_before_upload

TASKS = {
    "chest": {"type": "classification", "labels": ["normal", "effusion"], "modality": "xray"},
    "tissue": {"type": "segmentation", "labels": ["background", "grey", "white"], "modality": "mri"},
}
MODEL: dict[str, Path] = {}  # the tiny saved model every case copies (built once per module)
RESULTS = {"task": "chest", "metric": "accuracy", "encoders": {"umedpt": {"0.1": [0.7, 0.8], "1.0": [0.9]}}}


@pytest.fixture(scope="module", autouse=True)
def tiny_model(tmp_path_factory):
    from umedpt_hf import UMedPTForMultiTask, tiny_config
    from umedpt_hf.image_processing_umedpt import UMedPTImageProcessor

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("reliability_hub_model")
    UMedPTForMultiTask(tiny_config(tasks=TASKS)).save_pretrained(folder)
    UMedPTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    MODEL["path"] = folder


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> Path:
    """A real task database with one small task, for `umedpt evaluate` to read before it loads the model."""
    from umedpt_hf.data.build import build_database

    folder = tmp_path_factory.mktemp("reliability_hub_db") / "db"
    build_database(folder, only=["xray_bodypart_cls"], progress=False)
    return folder


@pytest.fixture(autouse=True)
def no_hub(monkeypatch, tmp_path):
    """Nothing may be uploaded: the Hub endpoint is a closed port; the client is online (offline mode is a case)."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_TOKEN", "hf_reliability")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")


# -- preparing a damaged copy of the model ------------------------------------------------------------------------
def model_copy(folder: Path, damage=None) -> Path:
    model = folder / "model"
    shutil.copytree(MODEL["path"], model)
    if damage is not None:
        damage(model)
    return model


def with_model(damage=None):
    return lambda folder: model_copy(folder, damage)


def truncate(model: Path) -> None:
    data = (model / "model.safetensors").read_bytes()
    (model / "model.safetensors").write_bytes(data[: len(data) - 1000])


def append_bytes(model: Path) -> None:
    with (model / "model.safetensors").open("ab") as handle:
        handle.write(b"\0" * 64)


def huge_header(model: Path) -> None:
    data = (model / "model.safetensors").read_bytes()
    (model / "model.safetensors").write_bytes(struct.pack("<Q", 10**12) + data[8:])


def rewrite_weights(change) -> callable:
    def damage(model: Path) -> None:
        weights = load_file(model / "model.safetensors")
        change(weights)
        save_file(weights, model / "model.safetensors", metadata={"format": "pt"})

    return damage


def drop_tensor(weights: dict) -> None:
    del weights[sorted(weights)[3]]


def reshape_tensor(weights: dict) -> None:
    name = next(n for n in sorted(weights) if weights[n].ndim == 2)
    weights[name] = torch.zeros(weights[name].shape[0] + 1, weights[name].shape[1])


def write(name: str, content: str):
    return lambda model: (model / name).write_text(content)


def edit_config(**changes):
    def damage(model: Path) -> None:
        config = json.loads((model / "config.json").read_text())
        (model / "config.json").write_text(json.dumps({**config, **changes}))

    return damage


def remove(name: str):
    return lambda model: (model / name).unlink()


def shard(model: Path) -> None:
    index = {"metadata": {}, "weight_map": {"x": "model-00001-of-00002.safetensors"}}
    (model / "model.safetensors.index.json").write_text(json.dumps(index))


def only_bin(model: Path) -> None:
    (model / "model.safetensors").rename(model / "pytorch_model.bin")


def push(folder: Path, model: Path, repo_id: str = "me/umedpt", **kwargs):
    return push_to_hub(model, repo_id, **kwargs)


def check(folder: Path, model: Path, repo_id: str = "me/umedpt", space_id: str | None = None):
    return check_before_upload(model, repo_id, space_id)


def write_results(content: str):
    def prepare(folder: Path) -> Path:
        model = model_copy(folder)
        (folder / "results.json").write_text(content)
        return model

    return prepare


def push_results(folder: Path, model: Path):
    return push_to_hub(model, "me/umedpt", eval_json=folder / "results.json")


def push_offline(folder: Path, model: Path):
    from huggingface_hub import constants

    constants.HF_HUB_OFFLINE = True
    try:
        return push_to_hub(model, "me/umedpt")
    finally:
        constants.HF_HUB_OFFLINE = False


def read_only(folder: Path) -> Path:
    model = model_copy(folder)
    for path in [model, *model.iterdir()]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    return model


def loads_fine(result, folder: Path) -> None:
    assert result.architecture == "UMedPTForMultiTask" and "model.safetensors" in result.weight_files


PUSH_CASES = [
    Case("truncated model.safetensors", prepare=with_model(truncate), action=push, error=ValueError,
         phrase=r"model\.safetensors is truncated: its header promises \d+ bytes, the file has \d+"),
    Case("model.safetensors longer than its header", prepare=with_model(append_bytes), action=push, error=ValueError,
         phrase=r"model\.safetensors is longer than its header says"),
    Case("model.safetensors is garbage", prepare=with_model(write("model.safetensors", "not weights" * 9)),
         action=push, error=ValueError, phrase=r"model\.safetensors is not a safetensors file"),
    Case("model.safetensors shorter than 8 bytes", prepare=with_model(write("model.safetensors", "abc")), action=push,
         error=ValueError, phrase=r"model\.safetensors is not a safetensors file: 3 bytes"),
    Case("safetensors header length beyond the file", prepare=with_model(huge_header), action=push, error=ValueError,
         phrase=r"header length \(10+\) exceeds the file size"),
    Case("a parameter missing from the weights", prepare=with_model(rewrite_weights(drop_tensor)), action=push,
         error=ValueError, phrase=r"weights do not match config\.json \(1 missing"),
    Case("a parameter of another shape", prepare=with_model(rewrite_weights(reshape_tensor)), action=push,
         error=ValueError, phrase=r"does not load with UMedPTForMultiTask\.from_pretrained|other shape"),
    Case("garbage config.json", prepare=with_model(write("config.json", "{garbage")), action=push, error=ValueError,
         phrase=r"config\.json is not valid JSON"),
    Case("config.json is a list", prepare=with_model(write("config.json", "[1, 2]")), action=push, error=ValueError,
         phrase=r"config\.json is not a JSON object \(found a list\)"),
    Case("config.json of another model", prepare=with_model(edit_config(model_type="swinv2")), action=push,
         error=ValueError, phrase=r"not a UMedPT model: config\.json has model_type 'swinv2'"),
    Case("config.json whose tasks are not a mapping", prepare=with_model(edit_config(tasks="chest")), action=push,
         error=ValueError, phrase=r"does not load with UMedPTForMultiTask\.from_pretrained"),
    Case("no config.json", prepare=with_model(remove("config.json")), action=push, error=ValueError,
         phrase=r"has no config\.json"),
    Case("garbage preprocessor_config.json", prepare=with_model(write("preprocessor_config.json", "size: 3")),
         action=push, error=ValueError, phrase=r"preprocessor_config\.json is not valid JSON"),
    Case("no preprocessor_config.json", prepare=with_model(remove("preprocessor_config.json")), action=push,
         error=ValueError, phrase=r"has no preprocessor_config\.json"),
    Case("only pytorch_model.bin", prepare=with_model(only_bin), action=push, error=ValueError,
         phrase=r"no safetensors weights \(found \.bin files: \['pytorch_model\.bin'\]\)"),
    Case("index naming a missing shard", prepare=with_model(shard), action=push, error=ValueError,
         phrase=r"names shards that are not in the folder: model-00001-of-00002\.safetensors"),
    Case("model path is a file", prepare=lambda folder: Path(shutil.copy(MODEL["path"] / "config.json", folder)),
         action=push, error=ValueError, phrase=r"config\.json is a file; pass the folder"),
    Case("model folder does not exist", prepare=lambda folder: folder / "nowhere", action=push,
         error=FileNotFoundError, phrase=r"model folder not found: .*nowhere"),
    Case("invalid model repo id", prepare=with_model(), action=lambda f, m: push(f, m, "bad name/umedpt"),
         error=ValueError, phrase=r"model repo id 'bad name/umedpt' is not valid on the Hub"),
    Case("model repo id without namespace", prepare=with_model(), action=lambda f, m: push(f, m, "umedpt"),
         error=ValueError, phrase=r"model repo id must be 'namespace/name', got 'umedpt'"),
    Case("invalid Space id, refused before the model is pushed", prepare=with_model(),
         action=lambda f, m: push(f, m, space_id="me/demo--space"), error=ValueError,
         phrase=r"Space id 'me/demo--space' is not valid"),
    Case("evaluation JSON of the wrong shape", prepare=write_results(json.dumps({"task": "chest", "scores": [1]})),
         action=push_results, error=ValueError, phrase=r"results\.json\[0\]: missing key\(s\) \['metric', 'encod"),
    Case("evaluation JSON with a NaN score", prepare=write_results(json.dumps(
         {**RESULTS, "encoders": {"umedpt": {"0.1": [float("nan")]}}})), action=push_results, error=ValueError,
         phrase=r"must be a non-empty list of finite numbers"),
    Case("evaluation JSON that is an empty list", prepare=write_results("[]"), action=push_results, error=ValueError,
         phrase=r"results\.json holds no results"),
    Case("evaluation JSON that is not JSON", prepare=write_results("task: chest"), action=push_results,
         error=ValueError, phrase=r"results\.json is not valid JSON"),
    Case("plot file missing", prepare=with_model(), action=lambda f, m: push(f, m, plot=f / "plot.png"),
         error=FileNotFoundError, phrase=r"plot not found: .*plot\.png"),
    Case("offline mode is refused after the checks, before an upload", prepare=with_model(), action=push_offline,
         error=ValueError, phrase=r"HF_HUB_OFFLINE is set: unset it to push"),
    Case("unreachable Hub after the checks pass", prepare=with_model(), action=push, error=ValueError,
         phrase=r"cannot reach the Hub at http://127\.0\.0\.1:9"),
    Case("a read-only model folder is fine to push from", prepare=read_only, action=check, check=loads_fine),
]  # fmt: skip


@pytest.mark.parametrize("case", PUSH_CASES, ids=case_id)
def test_push_refuses_before_uploading(case, tmp_path):
    try:
        run_case(case, tmp_path)
    finally:  # let pytest remove a read-only copy
        for path in tmp_path.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)


# -- the CLI contract: one line naming the problem (and the file), exit code 2 ----------------------------------
CLI_CASES = [
    ("ValueError: truncated weights", truncate, ["push", "{model}", "me/umedpt"], r"model\.safetensors is truncated"),
    ("JSONDecodeError: garbage config", write("config.json", "{garbage"), ["push", "{model}", "me/umedpt"],
     r"config\.json is not valid JSON"),
    ("FileNotFoundError: no model folder", None, ["push", "{folder}/nowhere", "me/umedpt"], r"model folder not found"),
    ("HFValidationError: invalid Space id", None, ["push", "{model}", "me/umedpt", "--space", "me/--"],
     r"Space id 'me/--' is not valid"),
    ("SafetensorError: evaluate on truncated weights", truncate,
     ["evaluate", "--model", "{model}", "--data", "{database}", "--tasks", "xray_bodypart_cls"],
     r"(safetensors|truncated|incomplete).*model"),
    ("garbage config.json to evaluate is not a missing checkpoint", write("config.json", "{garbage"),
     ["evaluate", "--model", "{model}", "--data", "{database}", "--tasks", "xray_bodypart_cls"],
     r"config\.json (is not valid JSON|cannot be read)"),
    ("OSError: data build into a path below a file", None, ["data", "build", "--out", "{model}/config.json/db"],
     r"config\.json"),
    ("PermissionError: data build where nobody may write", None,
     ["data", "build", "--out", "/sys/kernel/umedpt-db", "--only", "xray_bodypart_cls"],
     r"(Permission denied|Operation not permitted|Read-only file system).*/sys/kernel/umedpt-db"),
    ("usage error: a missing argument", None, ["push", "{model}"], r"required: repo_id \(see umedpt push --help\)"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "damage", "argv", "phrase"), CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_errors_are_one_line_with_exit_code_2(name, damage, argv, phrase, tmp_path, database):
    model = model_copy(tmp_path, damage)
    line = assert_cli_error([a.format(model=model, folder=tmp_path, database=database) for a in argv], phrase)
    assert "Traceback" not in line


def _permission_error(folder: Path) -> None:
    """A real PermissionError: an unreadable file, or (as root, who reads everything) writing into sysfs."""
    locked = folder / "locked.json"
    locked.write_text("{}")
    locked.chmod(0)
    try:
        locked.read_text()
        Path("/sys/kernel/umedpt-reliability").mkdir()
    finally:
        locked.chmod(0o644)


def _real_errors(folder: Path) -> dict[str, BaseException]:
    """Errors the libraries raise on real bad files, for the classes no `umedpt` command reaches with real input."""
    (folder / "config.yaml").write_text("training:\n  steps: [unclosed\n")
    (folder / "bad.safetensors").write_bytes(b"\x08" + b"\0" * 7 + b"{garbage")
    (folder / "bad.dcm").write_bytes(b"not dicom")
    (folder / "bad.nii").write_bytes(b"not nifti" * 50)
    with (folder / "config.yaml").open() as handle:
        attempts = {
            "yaml": lambda: yaml.safe_load(handle),
            "safetensors": lambda: safe_open(str(folder / "bad.safetensors"), "pt"),
            "dicom": lambda: pytest.importorskip("pydicom").dcmread(folder / "bad.dcm"),
            "nifti": lambda: pytest.importorskip("nibabel").load(folder / "bad.nii"),
            "permission": lambda: _permission_error(folder),
            "key": lambda: json.loads("{}")["weight_map"],
        }
        found = {}
        for name, attempt in attempts.items():
            try:
                attempt()
            except Exception as error:  # what each library raises is the point of the check
                found[name] = error
    return found


def test_every_bad_input_error_class_is_reported_in_one_line(tmp_path):
    errors = _real_errors(tmp_path)
    assert {"yaml", "safetensors", "dicom", "nifti", "key", "permission"} <= set(errors)
    assert isinstance(errors["safetensors"], SafetensorError) and isinstance(errors["permission"], PermissionError)
    for name, error in errors.items():
        assert is_bad_input(error), name
        line = describe(error)
        assert "\n" not in line and line.strip(), name
    assert f"invalid YAML in {tmp_path / 'config.yaml'}, line 3" in describe(errors["yaml"])
    assert describe(errors["key"]) == "missing key 'weight_map' (KeyError)"
    assert describe(errors["permission"]).startswith(("Permission denied: ", "Operation not permitted: "))
    assert not is_bad_input(ZeroDivisionError("a bug")) and not is_bad_input(AttributeError("a bug"))
