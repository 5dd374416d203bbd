"""push_to_hub: one commit to the loopback Hub; model and processor come back unchanged, with and without umedpt_hf."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import HfApi, ModelCard
from transformers import AutoImageProcessor, AutoModel, AutoModelForPreTraining

from umedpt_hf import UMedPTForMultiTask
from umedpt_hf.cli.main import main as umedpt_main
from umedpt_hf.hub import push_space, push_to_hub
from umedpt_hf.image_processing_umedpt import UMedPTImageProcessor

EVALUATION = [
    {"task": "chest", "metric": "accuracy",
     "encoders": {"umedpt": {"0.01": [0.61, 0.63, 0.62], "1.0": [0.81, 0.83, 0.82]},
                  "imagenet": {"0.01": [0.51, 0.55, 0.5], "1.0": [0.78, 0.8, 0.79]}}},
    {"task": "tissue", "metric": "dice", "encoders": {"umedpt": {"0.01": [0.4, 0.44], "1.0": [0.7, 0.72]}}},
]  # fmt: skip
EXPECTED_FILES = {
    ".gitattributes", "README.md", "config.json", "model.safetensors", "preprocessor_config.json", "data_scarcity.png",
    "evaluation/data_scarcity.json", "configuration_umedpt.py", "modeling_umedpt.py", "image_processing_umedpt.py",
}  # fmt: skip


def _test_image() -> np.ndarray:
    """A real 16-bit radiograph (pydicom test data), cropped: what the processor has to handle in practice."""
    pydicom_data = pytest.importorskip("pydicom.data")
    import pydicom

    path = pydicom_data.get_testdata_file("RG1_UNCR.dcm")
    if path is None:
        pytest.skip("pydicom-data is not installed")
    return pydicom.dcmread(path).pixel_array[::8, ::8].astype(np.uint16)


def _reference_outputs(model_dir, image: np.ndarray, tasks: dict, modality: str = "xray") -> dict[str, torch.Tensor]:
    model = UMedPTForMultiTask.from_pretrained(model_dir).eval()
    processor = UMedPTImageProcessor.from_pretrained(model_dir)
    pixel_values = processor(image, modality=modality, return_tensors="pt")["pixel_values"]
    return _outputs(model, pixel_values, tasks) | {"pixel_values": pixel_values}


@torch.no_grad()
def _outputs(model, pixel_values, tasks: dict) -> dict[str, torch.Tensor]:
    out = {"embedding": model.get_image_features(pixel_values).pooler_output}
    for task, spec in tasks.items():
        result = model(pixel_values, task=task)
        out[f"{task}/logits"] = result.logits
        if spec["type"] == "detection":
            out[f"{task}/boxes"] = result.pred_boxes
    return out


def test_push_makes_one_commit_that_loads_back_identically(loopback_hub, tiny_model_dir, hub_tasks, tmp_path):
    image = _test_image()
    reference = _reference_outputs(tiny_model_dir, image, hub_tasks)
    commit = push_to_hub(tiny_model_dir, "loopback-user/tiny-umedpt", eval_json=EVALUATION)
    api = HfApi()
    assert api.list_repo_commits("loopback-user/tiny-umedpt")[0].commit_id == commit.oid
    assert len(api.list_repo_commits("loopback-user/tiny-umedpt")) == 2  # the repo's initial commit + ONE push
    files = set(api.list_repo_files("loopback-user/tiny-umedpt"))
    assert files >= EXPECTED_FILES
    config = json.loads(Path(api.hf_hub_download("loopback-user/tiny-umedpt", "config.json")).read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_umedpt.UMedPTModel"

    # package importable: AutoModel / AutoModelForPreTraining / AutoImageProcessor with the repo id
    processor = AutoImageProcessor.from_pretrained("loopback-user/tiny-umedpt", trust_remote_code=True)
    pixel_values = processor(image, modality="xray", return_tensors="pt")["pixel_values"]
    assert torch.equal(pixel_values, reference["pixel_values"])
    for trust in (False, True):  # in-process, the registered package classes win either way (transformers 5)
        model = AutoModelForPreTraining.from_pretrained("loopback-user/tiny-umedpt", trust_remote_code=trust).eval()
        outputs = _outputs(model, pixel_values, hub_tasks)
        for key, value in outputs.items():
            assert torch.equal(value, reference[key]), key
    encoder = AutoModel.from_pretrained("loopback-user/tiny-umedpt", trust_remote_code=True).eval()
    assert type(encoder).__name__ == "UMedPTModel"
    with torch.no_grad():
        assert torch.equal(encoder.get_image_features(pixel_values).pooler_output, reference["embedding"])

    card = ModelCard.load("loopback-user/tiny-umedpt")
    assert card.data.library_name == "transformers"
    assert card.data.license == "apache-2.0"
    assert {"medical-imaging", "x-ray", "ct", "mri", "microscopy", "multi-task"} <= set(card.data.tags)
    scores = {(r.dataset_name, r.metric_name): r.metric_value for r in card.data.eval_results}
    assert scores[("chest", "accuracy (1 % of training data, mean of 3 seeds)")] == pytest.approx(0.62)
    assert scores[("tissue", "dice (100 % of training data, mean of 2 seeds)")] == pytest.approx(0.71)
    assert "imagenet" in card.text and "Not for clinical use" in card.text and "data_scarcity.png" in card.text

    # the card's code snippets run as printed, against the pushed repo
    snippets = re.findall(r"```python\n(.*?)```", card.text, flags=re.DOTALL)
    assert len(snippets) == 2
    namespace = {"images": [image]}
    for snippet in snippets:
        exec(compile(snippet, "model card snippet", "exec"), namespace)
    modality = re.search(r'modality="(\w+)"', snippets[0]).group(1)
    expected = _reference_outputs(tiny_model_dir, image, hub_tasks, modality=modality)["embedding"]
    assert torch.equal(namespace["embedding"], expected)
    assert "my_task" in namespace["model"].task_names

    # the remote code alone: a fresh interpreter where umedpt_hf cannot be imported
    np.save(tmp_path / "image.npy", image)
    torch.save(reference, tmp_path / "reference.pt")
    (tmp_path / "tasks.json").write_text(json.dumps(hub_tasks))
    _run_without_package(tmp_path)


REMOTE_CODE_CHECK = textwrap.dedent(
    """
    import importlib.abc, importlib.util, sys
    from pathlib import Path

    # drop every path that provides umedpt_hf (the editable install adds src/ through a .pth file) and block it
    sys.path[:] = [p for p in sys.path if not (Path(p or ".") / "umedpt_hf").exists()]

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "umedpt_hf" or name.startswith("umedpt_hf."):
                raise ImportError("umedpt_hf is blocked in this test")

    sys.meta_path.insert(0, Block())
    try:
        import umedpt_hf  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("umedpt_hf is still importable")

    import json
    import numpy as np, torch
    from transformers import AutoImageProcessor, AutoModel, AutoModelForPreTraining

    folder = Path(sys.argv[1])
    tasks = json.loads((folder / "tasks.json").read_text())
    reference = torch.load(folder / "reference.pt")
    processor = AutoImageProcessor.from_pretrained("loopback-user/tiny-umedpt", trust_remote_code=True)
    pixel_values = processor(np.load(folder / "image.npy"), modality="xray", return_tensors="pt")["pixel_values"]
    assert torch.equal(pixel_values, reference["pixel_values"]), "processor differs"
    model = AutoModelForPreTraining.from_pretrained("loopback-user/tiny-umedpt", trust_remote_code=True).eval()
    assert "umedpt_hf" not in type(model).__module__, type(model).__module__
    with torch.no_grad():
        embedding = model.get_image_features(pixel_values).pooler_output
        assert torch.equal(embedding, reference["embedding"]), "embedding differs"
        for task, spec in tasks.items():
            result = model(pixel_values, task=task)
            assert torch.equal(result.logits, reference[task + "/logits"]), task
            if spec["type"] == "detection":
                assert torch.equal(result.pred_boxes, reference[task + "/boxes"]), task
        encoder = AutoModel.from_pretrained("loopback-user/tiny-umedpt", trust_remote_code=True).eval()
        assert torch.equal(encoder.get_image_features(pixel_values).pooler_output, reference["embedding"])
    print("REMOTE CODE OK", type(model).__module__)
    """
)


def _run_without_package(folder) -> None:
    script = folder / "remote_code_check.py"
    script.write_text(REMOTE_CODE_CHECK)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    result = subprocess.run(
        [sys.executable, "-I", str(script), str(folder)], env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "REMOTE CODE OK transformers_modules" in result.stdout


def test_private_repo_on_a_branch_via_the_cli(loopback_hub, tiny_model_dir, tmp_path, capsys):
    eval_file = tmp_path / "scarcity.json"
    eval_file.write_text(json.dumps(EVALUATION[0]))
    code = umedpt_main(
        ["push", str(tiny_model_dir), "team/private-umedpt", "--private", "--revision", "candidate",
         "--eval-json", str(eval_file), "--space", "team/umedpt-demo"]
    )  # fmt: skip
    assert code == 0
    assert "pushed" in capsys.readouterr().out
    api = HfApi()
    assert api.model_info("team/private-umedpt").private is True
    assert "model.safetensors" in api.list_repo_files("team/private-umedpt", revision="candidate")
    assert "model.safetensors" not in api.list_repo_files("team/private-umedpt")  # main untouched
    with pytest.raises(Exception, match=r"Repository Not Found|401"):
        HfApi(token=False).model_info("team/private-umedpt")
    space = api.space_info("team/umedpt-demo")
    assert space.sdk == "gradio"
    assert {"app.py", "requirements.txt", "README.md", "model_id.txt"} <= set(
        api.list_repo_files(space.id, repo_type="space")
    )

    # a second push replaces the first on that branch in one more commit
    push_to_hub(tiny_model_dir, "team/private-umedpt", revision="candidate", commit_message="again")
    titles = [c.title for c in api.list_repo_commits("team/private-umedpt", revision="candidate")]
    assert titles[0] == "again" and len(titles) == 3


def test_space_card_names_the_model(loopback_hub):
    push_space("loopback-user/demo", "loopback-user/some-model")
    api = HfApi()
    readme = Path(api.hf_hub_download("loopback-user/demo", "README.md", repo_type="space")).read_text()
    assert "sdk: gradio" in readme and "loopback-user/some-model" in readme and "not for clinical use" in readme


@pytest.mark.parametrize(
    ("damage", "error", "message"),
    [
        ("missing", FileNotFoundError, "not found"),
        ("no_config", ValueError, "no config.json"),
        ("other_model", ValueError, "not a UMedPT model"),
        ("no_weights", ValueError, "no safetensors"),
        ("no_processor", ValueError, "preprocessor_config.json"),
    ],
)
def test_a_folder_that_is_not_a_umedpt_model_is_refused(tiny_model_dir, tmp_path, damage, error, message):
    folder = tmp_path / "model"
    if damage != "missing":
        shutil.copytree(tiny_model_dir, folder)
    if damage == "no_config":
        (folder / "config.json").unlink()
    if damage == "other_model":
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, "model_type": "swinv2"}))
    if damage == "no_weights":
        (folder / "model.safetensors").unlink()
    if damage == "no_processor":
        (folder / "preprocessor_config.json").unlink()
    with pytest.raises(error, match=message):
        push_to_hub(folder, "loopback-user/never-created")


def test_cli_reports_a_bad_folder_without_a_traceback(tmp_path, capsys):
    assert umedpt_main(["push", str(tmp_path), "loopback-user/x"]) == 2
    assert "no config.json" in capsys.readouterr().err


def test_hub_refusals_and_unreachable_hubs_are_one_line_errors(loopback_hub, tiny_model_dir, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", "hf_wrong_token")
    with pytest.raises(ValueError, match=r"refused the push to loopback-user/x \(HTTP 401\)"):
        push_to_hub(tiny_model_dir, "loopback-user/x")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    assert umedpt_main(["push", str(tiny_model_dir), "loopback-user/x"]) == 2
    assert "cannot reach the Hub at http://127.0.0.1:9" in capsys.readouterr().err
