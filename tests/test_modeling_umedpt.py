from __future__ import annotations

import textwrap

import pytest
import torch
from transformers import (
    AutoModel,
    AutoModelForPreTraining,
)
from umedpt_test_utils import BACKBONES, make_task_batch, run_python_script

from umedpt_hf import (
    UMedPTConfig,
    UMedPTForMultiTask,
    UMedPTModel,
    tiny_config,
)
from umedpt_hf.detection_umedpt import assign_fcos_targets


@pytest.fixture
def tiny_model(tiny_multitask_config) -> UMedPTForMultiTask:
    torch.manual_seed(0)
    return UMedPTForMultiTask(tiny_multitask_config)


def batch_for(model: UMedPTForMultiTask, task: str, **kwargs) -> dict:
    spec = model.config.tasks[task]
    return make_task_batch(spec["type"], len(spec["labels"]), **kwargs)


def test_every_task_type_runs_forward_and_backward_through_only_its_blocks(tiny_model):
    shared = {"pixel_decoder": tiny_model.pixel_decoder, "detection_decoder": tiny_model.detection_decoder}
    needs = {"chest_xray": set(), "findings": set(), "brain_tissue": {"pixel_decoder"}, "nuclei": {"detection_decoder"}}
    for task in tiny_model.task_names:
        tiny_model.zero_grad(set_to_none=True)
        output = tiny_model(**batch_for(tiny_model, task), task=task)
        assert output.loss.ndim == 0 and torch.isfinite(output.loss)
        output.loss.backward()
        encoder = tiny_model.umedpt
        assert all(p.grad is not None for p in encoder.backbone.embeddings.parameters())
        assert all(p.grad is not None for p in encoder.squeezer.parameters()) == (task in ("chest_xray", "findings"))
        for name, block in shared.items():
            touched = any(p.grad is not None for p in block.parameters())
            assert touched == (name in needs[task]), (task, name)
        other_heads = [h for n, h in tiny_model.heads.items() if n != task]
        assert all(p.grad is None for head in other_heads for p in head.parameters())


def test_output_shapes_follow_transformers_conventions(tiny_model):
    pixel_values = torch.randn(2, 3, 64, 96)
    assert tiny_model(pixel_values, task="chest_xray").logits.shape == (2, 3)
    assert tiny_model(pixel_values, task="findings").logits.shape == (2, 2)
    assert tiny_model(pixel_values, task="brain_tissue").logits.shape == (2, 3, 64, 96)
    detection = tiny_model(pixel_values, task="nuclei")
    locations = detection.logits.shape[1]
    assert detection.logits.shape == (2, locations, 1)
    assert detection.pred_boxes.shape == (2, locations, 4)
    assert detection.centerness_logits.shape == (2, locations)
    assert detection.pred_boxes.min() >= 0 and detection.pred_boxes.max() <= 1
    encoded = tiny_model.umedpt(pixel_values)
    assert encoded.pooler_output.shape == (2, tiny_model.config.hidden_size)
    assert [m.shape[1] for m in encoded.feature_maps] == tiny_model.umedpt.channels
    assert encoded.last_hidden_state is encoded.feature_maps[-1]


def test_detection_and_segmentation_losses_fall_when_fitting_one_batch(tiny_model):
    optimizer = torch.optim.AdamW(tiny_model.parameters(), lr=3e-3)
    for task in ("nuclei", "brain_tissue"):
        batch = batch_for(tiny_model, task, seed=1)
        if task == "brain_tissue":  # a pattern the image shows: the right half is bright and labelled 2
            batch["labels"] = torch.zeros(2, 64, 64, dtype=torch.long)
            batch["labels"][..., 32:] = 2
            batch["pixel_values"][..., 32:] += 2.0
        losses = []
        for _ in range(15):
            optimizer.zero_grad()
            loss = tiny_model(**batch, task=task).loss
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        assert losses[-1] < 0.7 * losses[0], (task, losses[0], losses[-1])


def test_fcos_assignment_gives_every_box_a_location_even_below_the_stride():
    points = torch.tensor([[4.0, 4.0], [12.0, 4.0], [4.0, 12.0], [12.0, 12.0], [8.0, 8.0]])
    strides = torch.tensor([8.0, 8.0, 8.0, 8.0, 16.0])
    tiny_box = torch.tensor([[10.0, 10.0, 13.0, 13.0]])  # 3 px wide: contains no location centre... but (12, 12)
    matched, _ = assign_fcos_targets(points, strides, tiny_box, radius=1.5)
    assert (matched == 0).sum() >= 1
    off_grid = torch.tensor([[0.5, 0.5, 2.0, 2.0]])  # contains no location at all
    matched, _ = assign_fcos_targets(points, strides, off_grid, radius=1.5)
    assert matched.tolist() == [0, -1, -1, -1, -1]
    empty, _ = assign_fcos_targets(points, strides, torch.zeros(0, 4), radius=1.5)
    assert (empty == -1).all()


def test_save_and_load_give_bit_identical_outputs_for_every_task(tiny_model, tmp_path):
    tiny_model.eval().save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert not list(tmp_path.glob("*.bin"))
    loaded = AutoModelForPreTraining.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, UMedPTForMultiTask)
    pixel_values = torch.randn(2, 3, 64, 64)
    for task in tiny_model.task_names:
        expected, actual = tiny_model(pixel_values, task=task), loaded(pixel_values, task=task)
        assert torch.equal(expected.logits, actual.logits), task


def test_automodel_on_a_multitask_checkpoint_gives_the_encoder(tiny_model, tmp_path):
    tiny_model.eval().save_pretrained(tmp_path)
    encoder = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(encoder, UMedPTModel)
    pixel_values = torch.randn(2, 3, 64, 64)
    assert torch.equal(encoder(pixel_values).pooler_output, tiny_model.umedpt(pixel_values).pooler_output)
    features = encoder.get_image_features(pixel_values)
    assert torch.equal(features.pooler_output, tiny_model.get_image_features(pixel_values).pooler_output)
    assert features.last_hidden_state.shape[1] == tiny_model.umedpt.channels[-1]


REMOTE_CODE_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path = [p for p in sys.path if not p.endswith("src")]
    import importlib.util
    assert importlib.util.find_spec("umedpt_hf") is None, "umedpt_hf must not be importable here"
    import torch
    from transformers import AutoModel
    from transformers import AutoModelForObjectDetection, AutoModelForPreTraining
    model = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
    pixel_values = torch.load(sys.argv[2])
    multitask = AutoModelForPreTraining.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
    detector = AutoModelForObjectDetection.from_pretrained(sys.argv[1], task="nuclei", trust_remote_code=True).eval()
    assert torch.equal(detector(pixel_values).logits, multitask(pixel_values, task="nuclei").logits)
    assert detector.config.id2label == {0: "nucleus"}
    torch.save(model(pixel_values).pooler_output, sys.argv[3])
    print(type(model).__module__)
    """
)


def test_remote_code_loading_in_a_process_without_the_package(tiny_model, tmp_path):
    model_dir = tmp_path / "model"
    tiny_model.eval().save_pretrained(model_dir)
    split_modules = {"encoder_umedpt.py", "multitask_umedpt.py", "single_task_umedpt.py", "backbone_umedpt.py"}
    assert {"modeling_umedpt.py", "configuration_umedpt.py", *split_modules} <= {p.name for p in model_dir.iterdir()}
    pixel_values = torch.randn(2, 3, 64, 64)
    torch.save(pixel_values, tmp_path / "in.pt")
    result = run_python_script(
        REMOTE_CODE_SCRIPT, model_dir, tmp_path / "in.pt", tmp_path / "out.pt", folder=tmp_path, without_package=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "transformers_modules" in result.stdout
    remote = torch.load(tmp_path / "out.pt")
    assert torch.equal(remote, tiny_model.umedpt(pixel_values).pooler_output)


def test_grayscale_model_takes_one_channel(four_tasks):
    model = UMedPTForMultiTask(tiny_config(tasks=four_tasks, num_channels=1))
    output = model(torch.randn(2, 1, 64, 64), task="brain_tissue", labels=torch.zeros(2, 64, 64, dtype=torch.long))
    assert torch.isfinite(output.loss)
    with pytest.raises(ValueError, match="1"):
        model(torch.randn(2, 3, 64, 64), task="chest_xray")


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_each_backbone_type_builds_and_runs_every_task(name, four_tasks):
    config = UMedPTConfig(backbone_config=BACKBONES[name].to_dict(), tasks=four_tasks, fpn_channels=16)
    model = UMedPTForMultiTask(config)
    for task in model.task_names:
        output = model(**batch_for(model, task), task=task)
        output.loss.backward()
        assert torch.isfinite(output.loss), (name, task)
    assert model(torch.randn(1, 3, 64, 64), task="brain_tissue").logits.shape[-2:] == (64, 64)


def test_timm_backbone_behind_the_optional_extra(four_tasks):
    try:
        import timm  # noqa: F401
    except Exception as error:  # timm imports torchvision, which has no CPU build for torch 2.13
        pytest.skip(f"timm does not import here ({type(error).__name__}: {error}); install umedpt_hf[timm]")
    from transformers import TimmBackboneConfig

    backbone = TimmBackboneConfig(backbone="resnet18", use_pretrained_backbone=False, out_indices=(1, 2, 3, 4))
    model = UMedPTForMultiTask(UMedPTConfig(backbone_config=backbone, tasks=four_tasks))
    assert model(torch.randn(1, 3, 64, 64), task="chest_xray").logits.shape == (1, 3)


def test_no_batchnorm_anywhere(tiny_model):
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in tiny_model.modules())
