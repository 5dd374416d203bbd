"""Task models: decoders built only when needed, single-task models made from a multi-task checkpoint, transformers'
conventions (return_dict, hidden states, regression), the squeezer projection and gradient checkpointing of the
decoders."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    AutoModelForImageClassification,
    AutoModelForObjectDetection,
    AutoModelForSemanticSegmentation,
    UperNetConfig,
    UperNetForSemanticSegmentation,
)
from umedpt_test_utils import make_task_batch

from umedpt_hf import (
    UMedPTBackbone,
    UMedPTForImageClassification,
    UMedPTForMultiTask,
    UMedPTForObjectDetection,
    UMedPTForSemanticSegmentation,
    tiny_config,
)

PIXELS = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


@pytest.fixture
def multitask_folder(tmp_path, four_tasks):
    torch.manual_seed(0)
    folder = tmp_path / "multitask"
    UMedPTForMultiTask(tiny_config(tasks=four_tasks)).save_pretrained(folder)
    return folder


def test_decoder_blocks_are_recomputed_under_gradient_checkpointing(four_tasks):
    model = UMedPTForMultiTask(tiny_config(tasks=four_tasks)).train()
    calls = {"pixel": 0, "tower": 0}
    model.pixel_decoder.stem[0].register_forward_hook(lambda *_: calls.__setitem__("pixel", calls["pixel"] + 1))
    tower_conv = model.detection_decoder.class_tower[0][0]
    tower_conv.register_forward_hook(lambda *_: calls.__setitem__("tower", calls["tower"] + 1))

    def run(task: str) -> dict[str, torch.Tensor]:
        model.zero_grad(set_to_none=True)
        spec = model.config.tasks[task]
        model(**make_task_batch(spec["type"], len(spec["labels"])), task=task).loss.backward()
        return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}

    plain = {task: run(task) for task in ("brain_tissue", "nuclei")}
    once = dict(calls)
    model.activation_checkpointing_enable()
    checkpointed = {task: run(task) for task in ("brain_tissue", "nuclei")}
    assert calls["pixel"] - once["pixel"] == 2 * once["pixel"]  # forward, then again during backward
    assert calls["tower"] - once["tower"] == 2 * once["tower"]  # each FPN level, twice
    for task, gradients in plain.items():
        assert set(gradients) == set(checkpointed[task])
        for name, gradient in gradients.items():
            torch.testing.assert_close(checkpointed[task][name], gradient, atol=1e-6, rtol=1e-5)


def test_a_classification_only_model_builds_no_decoders_until_a_task_needs_one(tmp_path):
    tasks = {"chest": {"type": "classification", "labels": ["normal", "effusion"]}}
    model = UMedPTForMultiTask(tiny_config(tasks=tasks))
    assert model.pixel_decoder is None and model.detection_decoder is None
    assert not [key for key in model.state_dict() if "decoder" in key]
    model.add_task("organ", {"type": "segmentation", "labels": ["bg", "liver"]})
    assert model.pixel_decoder is not None and model.detection_decoder is None
    model(PIXELS, task="organ", labels=torch.ones(2, 64, 64, dtype=torch.long)).loss.backward()
    assert all(p.grad is not None for p in model.pixel_decoder.parameters())
    model.add_task("cells", {"type": "detection", "labels": ["cell"]})
    model.eval().save_pretrained(tmp_path)
    loaded = UMedPTForMultiTask.from_pretrained(tmp_path).eval()
    for task in ("organ", "cells"):
        assert torch.equal(loaded(PIXELS, task=task).logits, model(PIXELS, task=task).logits)


@pytest.mark.parametrize("model_class", [UMedPTForSemanticSegmentation, UMedPTForObjectDetection])
def test_segmentation_and_detection_models_compute_no_squeezer_and_every_weight_learns(model_class, four_tasks):
    model = model_class(tiny_config(num_labels=2)).train()
    assert model.umedpt.squeezer is None and not [key for key in model.state_dict() if "squeezer" in key]
    kind = "segmentation" if model_class is UMedPTForSemanticSegmentation else "detection"
    model(**make_task_batch(kind, 2)).loss.backward()
    assert [name for name, p in model.named_parameters() if p.grad is None] == []


def test_single_task_models_take_a_pretrained_tasks_labels_and_trained_head(multitask_folder, tmp_path):
    multitask = UMedPTForMultiTask.from_pretrained(multitask_folder).eval()
    classifier = AutoModelForImageClassification.from_pretrained(multitask_folder, task="chest_xray").eval()
    assert classifier.config.id2label == {0: "normal", 1: "effusion", 2: "nodule"}
    assert classifier.config.problem_type == "single_label_classification"
    assert torch.equal(classifier(PIXELS).logits, multitask(PIXELS, task="chest_xray").logits)
    findings = AutoModelForImageClassification.from_pretrained(multitask_folder, task="findings")
    assert findings.config.problem_type == "multi_label_classification"
    segmenter = AutoModelForSemanticSegmentation.from_pretrained(multitask_folder, task="brain_tissue").eval()
    assert segmenter.config.id2label == {0: "background", 1: "grey", 2: "white"}
    assert torch.equal(segmenter(PIXELS).logits, multitask(PIXELS, task="brain_tissue").logits)
    detector = AutoModelForObjectDetection.from_pretrained(multitask_folder, task="nuclei").eval()
    assert detector.config.id2label == {0: "nucleus"}
    assert torch.equal(detector(PIXELS).pred_boxes, multitask(PIXELS, task="nuclei").pred_boxes)
    # saved and loaded again, it stays the same model (the head is saved under its own name)
    segmenter.save_pretrained(tmp_path)
    reloaded = AutoModelForSemanticSegmentation.from_pretrained(tmp_path).eval()
    assert reloaded.config.id2label == segmenter.config.id2label
    assert torch.equal(reloaded(PIXELS).logits, segmenter(PIXELS).logits)


def test_a_multitask_checkpoint_without_task_takes_its_only_task_of_the_kind_or_says_which_to_choose(
    multitask_folder,
):
    segmenter = UMedPTForSemanticSegmentation.from_pretrained(multitask_folder)  # the only segmentation task
    assert segmenter.config.id2label == {0: "background", 1: "grey", 2: "white"}
    with pytest.raises(ValueError, match=r"'chest_xray', 'findings'.*task=<name>.*num_labels="):
        UMedPTForImageClassification.from_pretrained(multitask_folder)
    with pytest.raises(ValueError, match=r"'nuclei' is a detection task"):
        UMedPTForImageClassification.from_pretrained(multitask_folder, task="nuclei")
    with pytest.raises(ValueError, match=r"no task 'liver'; its tasks: .*chest_xray"):
        UMedPTForSemanticSegmentation.from_pretrained(multitask_folder, task="liver")
    fresh = UMedPTForImageClassification.from_pretrained(multitask_folder, num_labels=4)  # a fresh head, as asked
    assert fresh.config.num_labels == 4


def test_num_labels_one_is_regression_and_problem_types_choose_the_loss():
    model = UMedPTForImageClassification(tiny_config(num_labels=1)).eval()
    targets = torch.tensor([0.5, -1.5])
    output = model(PIXELS, labels=targets)
    assert torch.equal(output.loss, torch.nn.functional.mse_loss(output.logits.squeeze(-1), targets))
    model = UMedPTForImageClassification(tiny_config(num_labels=3)).eval()
    assert model(PIXELS, labels=torch.tensor([0, 2])).loss > 0  # integer labels: single-label
    multi = model(PIXELS, labels=torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]]))  # float labels: multi-label
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        multi.logits, torch.tensor([[1.0, 0, 1], [0, 0, 1]])
    )
    torch.testing.assert_close(multi.loss, expected / torch.log(torch.tensor(2.0)))
    model.config.problem_type = "regression"
    assert torch.isfinite(model(PIXELS, labels=torch.randn(2, 3)).loss)


def test_return_dict_and_hidden_states_follow_the_call_and_the_config(four_tasks):
    model = UMedPTForMultiTask(tiny_config(tasks=four_tasks)).eval()
    assert isinstance(model(PIXELS, task="chest_xray", return_dict=False), tuple)
    outputs = model(PIXELS, task="nuclei", output_hidden_states=True)
    assert len(outputs.hidden_states) == 5  # embeddings + 4 Swin-V2 stages
    model.config.return_dict, model.config.output_hidden_states = False, True
    as_tuple = model(PIXELS, task="brain_tissue")
    assert isinstance(as_tuple, tuple) and len(as_tuple[-1]) == 5


def test_backbone_stages_and_a_upernet_on_it(tmp_path, four_tasks):
    config = tiny_config(tasks=four_tasks, out_features=["stage2", "stage4"])
    backbone = UMedPTBackbone(config).eval()
    assert backbone.out_indices == [2, 4] and backbone.num_features == [32, 32, 64, 128, 256]
    maps = backbone(PIXELS).feature_maps
    assert [m.shape[1] for m in maps] == backbone.channels == [64, 256]
    with pytest.raises(ValueError, match=r"not \['stem'\]"):
        UMedPTBackbone(tiny_config(out_features=["stem", "stage1"]))
    upernet = UperNetConfig(
        backbone_config=tiny_config(out_features=["stage1", "stage2", "stage3", "stage4"]),
        hidden_size=16,
        use_auxiliary_head=False,
        num_labels=2,
    )
    outputs = UperNetForSemanticSegmentation(upernet).eval()(PIXELS, output_hidden_states=True)
    assert outputs.logits.shape == (2, 2, 64, 64) and len(outputs.hidden_states) == 5


def test_squeezer_projection_sets_the_image_vector_size(tmp_path):
    tasks = {"chest": {"type": "classification", "labels": ["normal", "effusion"]}}
    model = UMedPTForMultiTask(tiny_config(tasks=tasks, squeezer_projection_dim=24)).eval()
    assert model.config.hidden_size == 24
    state = model.state_dict()
    assert state["umedpt.squeezer.projection.weight"].shape == (24, 256)
    assert state["umedpt.squeezer.norm.weight"].shape == (24,) and "umedpt.squeezer.norm.bias" in state
    assert model.get_image_features(PIXELS).pooler_output.shape == (2, 24)
    model.save_pretrained(tmp_path)
    loaded = UMedPTForMultiTask.from_pretrained(tmp_path).eval()
    assert torch.equal(loaded(PIXELS, task="chest").logits, model(PIXELS, task="chest").logits)


def test_one_host_read_per_forward_whatever_the_task_type(four_tasks, monkeypatch):
    """Reading a tensor's value on the host (`.item()`, `.tolist()`, `bool()`, `int()`, `float()`) waits for an
    accelerator: the model's own code does it once per forward (the fused input check), with or without labels, and
    not at all with `check_inputs=False`."""
    import sys

    reads = []
    for method in ("item", "tolist", "__bool__", "__int__", "__float__", "__index__"):
        original = getattr(torch.Tensor, method)

        def counted(self, *args, _original=original, _method=method, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if "umedpt_hf" in caller:
                reads.append((_method, caller))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, method, counted)
    model = UMedPTForMultiTask(tiny_config(tasks=four_tasks))
    for task, spec in four_tasks.items():
        batch = make_task_batch(spec["type"], len(spec["labels"]))
        for labels, check_inputs, expected in (
            (batch["labels"], True, 1),
            (None, True, 1),
            (batch["labels"], False, 0),
        ):
            reads.clear()
            output = model(batch["pixel_values"], task=task, labels=labels, check_inputs=check_inputs)
            if labels is not None:
                output.loss.backward()
            assert len(reads) == expected, (task, check_inputs, reads)
