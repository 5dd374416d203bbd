"""Model card: metadata from the config and the evaluation JSON, every section of the body, a parseable card."""

from __future__ import annotations

import json

import pytest
from huggingface_hub import ModelCard
from PIL import Image

from umedpt_hf.hub import load_scarcity_results, plot_scarcity, render_model_card, scarcity_table
from umedpt_hf.hub.results import eval_results_for, model_encoder_name

RESULTS = {
    "task": "chest",
    "metric": "auroc",
    "encoders": {"umedpt-mini": {"0.01": [0.7, 0.8], "0.5": [0.9]}, "imagenet": {"0.01": [0.6, 0.62]}},
}


def test_scarcity_results_table_and_model_index():
    results = load_scarcity_results([RESULTS])
    table = scarcity_table(results)
    assert "| chest | auroc | umedpt-mini | 0.750 ± 0.050 | 0.900 ± 0.000 |" in table  # std over seeds
    assert "| chest | auroc | imagenet | 0.610 ± 0.010 | — |" in table
    assert model_encoder_name(results) == "umedpt-mini"
    evals = eval_results_for(results, "umedpt-mini", {"chest": "multilabel"})
    assert [(e.task_type, e.metric_value) for e in evals] == [
        ("image-classification", 0.75),
        ("image-classification", 0.9),
    ]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"metric": "x", "encoders": {}}, "missing key"),
        ({"task": "t", "metric": "x", "encoders": {"a": {"two": [1]}}}, "not a number"),
        ({"task": "t", "metric": "x", "encoders": {"a": {"1.5": [1]}}}, r"not in \(0, 1\]"),
        ({"task": "t", "metric": "x", "encoders": {"a": {"0.1": [float("nan")]}}}, "finite"),
        ([1, 2], "expected an object"),
    ],
)
def test_bad_evaluation_json_is_refused_clearly(bad, message):
    with pytest.raises(ValueError, match=message):
        load_scarcity_results(bad)


def test_missing_or_corrupt_evaluation_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_scarcity_results(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_scarcity_results(tmp_path / "bad.json")


def test_plot_is_a_png_with_one_panel_per_task(tmp_path):
    second = {**RESULTS, "task": "tissue", "metric": "dice"}
    path = plot_scarcity(load_scarcity_results([RESULTS, second]), tmp_path / "plot.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > image.height > 200


def test_card_has_metadata_and_every_section(tiny_model_dir, tmp_path):
    (tmp_path / "eval.json").write_text(json.dumps(RESULTS))
    card = render_model_card(tiny_model_dir, "someone/umedpt-tiny", eval_json=tmp_path / "eval.json",
                             plot_file="data_scarcity.png", license="cc-by-nc-4.0")  # fmt: skip
    reparsed = ModelCard(str(card))  # what the Hub and ModelCard.load see
    data = reparsed.data
    assert data.license == "cc-by-nc-4.0" and data.library_name == "transformers"
    assert data.pipeline_tag == "image-feature-extraction"
    assert {"medical-imaging", "x-ray", "ct", "mri", "microscopy", "multi-task"} <= set(data.tags)
    assert data.model_name == "umedpt-tiny" and data.eval_results[0].dataset_name == "chest"
    text = reparsed.text
    for section in ("## Intended use", "## Tasks and heads", "## Preprocessing contract", "## Training data",
                    "## Evaluation: data scarcity", "## How to load", "## Requirements", "## How to fine-tune",
                    "## Limitations", "## Citation"):  # fmt: skip
        assert section in text, section
    assert "Not for clinical use" in text
    assert "10.1038/s43588-024-00662-z" in text and "Nature Computational Science" in text
    assert 'AutoImageProcessor.from_pretrained("someone/umedpt-tiny"' in text
    assert "`nuclei` | detection | microscopy | nucleus |" in text
    assert "![Score against the fraction of training data](data_scarcity.png)" in text
    assert "| setting | value |" in text and '`{"height": 64, "width": 64}`' in text
    # what loading needs, and the optional extras by name
    assert "`torch>=2.6`, `transformers>=5`, `numpy` and `Pillow`" in text
    for extra in ("dicom", "nifti", "timm", "demo"):
        assert f'`pip install "umedpt_hf[{extra}]"`' in text, extra


def test_card_lists_training_sources_their_licences_and_held_out_tasks(tiny_model_dir, tmp_path):
    manifest = {  # the shape `umedpt data build` writes
        "database": "umedpt-mini",
        "tasks": [
            {"name": "tissue", "type": "segmentation", "modality": "mri", "splits": {"train": 67, "test": 25},
             "source": "MNI ICBM152 2009a T1 template (nilearn)", "licence": "free use with copyright notice",
             "held_out": False},
            {"name": "unrelated", "type": "classification", "modality": "ct", "source": "x", "licence": "y",
             "held_out": False},
            {"name": "lobes", "type": "classification", "modality": "mri", "source": "Colin27 + AAL (mricron)",
             "licence": "AAL: cite Tzourio-Mazoyer 2002", "held_out": True},
        ],
    }  # fmt: skip
    (tmp_path / "tasks.json").write_text(json.dumps(manifest))
    card = render_model_card(tiny_model_dir, "someone/umedpt-tiny", training_data=tmp_path)
    text = card.text
    assert "| `tissue` | segmentation | mri | MNI ICBM152 2009a T1 template (nilearn) | free use with copyright" in text
    assert "train 67, test 25" in text
    assert "unrelated" not in text  # in the database, not in this model
    held_out = text.index("Held out of pretraining")
    assert text.index("`lobes`") > held_out and "cite Tzourio-Mazoyer" in text
    assert card.data.datasets == ["umedpt-mini"]
    assert "proxy results" in text  # derived from a few volumes: the card says so
    assert "No evaluation results were published" in text and card.data.eval_results is None
    with pytest.raises(FileNotFoundError, match=r"tasks\.json"):
        render_model_card(tiny_model_dir, "someone/umedpt-tiny", training_data=tmp_path / "missing")
