"""Model card of a saved UMedPT model, rendered with ``huggingface_hub.ModelCard.from_template`` from hub_cards/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from umedpt_hf.card_templates import hub_cards_dir
from umedpt_hf.hub.model_folder import ModelFolder
from umedpt_hf.hub.results import (
    eval_results_for,
    load_scarcity_results,
    model_encoder_name,
    scarcity_table,
)

CARD_TAGS = ["medical-imaging", "x-ray", "ct", "mri", "microscopy", "multi-task", "umedpt", "image-feature-extraction"]
PIPELINE_TAGS = {
    "UMedPTForImageClassification": "image-classification",
    "UMedPTForSemanticSegmentation": "image-segmentation",
    "UMedPTForObjectDetection": "object-detection",
}
HEADS = {
    "classification": "linear layer on the pooled image vector, softmax over the classes",
    "multilabel": "linear layer on the pooled image vector, one sigmoid per label",
    "segmentation": "conv head on the shared pixel embedding, logits at the input resolution",
    "detection": "FCOS head on the shared FPN (class logits, l-t-r-b box regression, centerness)",
}
WINDOW_POLICY = (
    "microscopy / histology / fluorescence images are scaled by their dtype (uint8 / 255, uint16 / 65535); "
    "X-ray, mammography, MRI, ultrasound and nuclear images are clipped to their 0.5-99.5 percentiles and scaled to "
    "[0, 1]; CT in Hounsfield units is windowed (presets lung, soft_tissue (default), bone, brain, mediastinum, "
    "liver, wide, or an explicit (centre, width); a list of windows gives one channel each) and scaled to [0, 1]; "
    "8-bit exports are taken as already windowed. Grey images are replicated to the model's channels; the result is "
    "resized (anti-aliased bilinear in float, masks nearest) and normalised with `image_mean` / `image_std`. "
    "Pass `modality=` (and for CT `window=`) per call to override the saved defaults."
)
MODALITY_TAGS = {"xray": "x-ray", "histology": "histopathology", "unspecified": "", "mixed": ""}
SNIPPET_MODALITIES = ("xray", "ct", "mri", "microscopy", "histology", "ultrasound", "mammography", "fundus")
# lower bounds of the remote code's requirements, as in pyproject.toml (tests/hub/test_card.py keeps them equal)
REMOTE_CODE_REQUIREMENTS = {"torch": "2.6", "transformers": "5"}
OPTIONAL_EXTRAS = {
    "dicom": "`pydicom` to read DICOM (`umedpt_hf.io.load_dicom`)",
    "nifti": "`nibabel` to read NIfTI volumes (`umedpt_hf.io.load_nifti`)",
    "timm": "`timm` and `torchvision` for timm backbones and the torchvision conversion",
    "demo": "`gradio` for the demo Space",
}
PROXY_SOURCES = ("nilearn", "mricron", "invesalius", "stardist", "pydicom", "colin", "mni152", "aal")


def _markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _labels_text(labels: list[str], limit: int = 8) -> str:
    shown = ", ".join(labels[:limit])
    return shown + (f", … ({len(labels)} in all)" if len(labels) > limit else "")


def tasks_table(tasks: dict[str, dict]) -> str:
    if not tasks:
        return "This checkpoint has no task heads: it is the encoder alone."
    rows = [
        [f"`{name}`", spec.get("type", "?"), spec.get("modality", "–"), _labels_text(list(spec.get("labels", []))),
         HEADS.get(spec.get("type", ""), "–")]
        for name, spec in tasks.items()
    ]  # fmt: skip
    return _markdown_table(["task", "type", "modality", "classes", "head"], rows)


def preprocessing_table(processor: dict) -> str:
    keys = [
        ("image_processor_type", "processor"),
        ("size", "output size"),
        ("num_channels", "channels"),
        ("modality", "default modality"),
        ("window", "default CT window"),
        ("intensity_scaling", "intensity rule"),
        ("percentiles", "clipping percentiles"),
        ("value_range", "fixed value range"),
        ("do_pad", "keep aspect ratio and pad"),
        ("image_mean", "normalisation mean"),
        ("image_std", "normalisation std"),
    ]
    rows = [
        [label, "chosen per call (auto)" if processor[key] is None else f"`{json.dumps(processor[key])}`"]
        for key, label in keys
        if key in processor
    ]
    table = _markdown_table(["setting", "value"], rows)
    tasks = processor.get("task_preprocessing") or {}
    if not tasks:
        return table
    task_rows = [
        [
            f"`{name}`",
            entry.get("modality") or "auto",
            f"`{json.dumps(entry['window'])}`" if entry.get("window") is not None else "-",
            "x".join(str(entry["size"][side]) for side in ("height", "width")) if entry.get("size") else "default",
            str(entry.get("num_labels", "-")),
        ]
        for name, entry in tasks.items()
    ]
    per_task = _markdown_table(["task", "modality", "CT window", "size", "labels"], task_rows)
    return f"{table}\n\nAs training applied it, task by task (`task_preprocessing`):\n\n{per_task}"


def load_training_data(source: str | Path | dict | list) -> tuple[list[dict], str | None]:
    """Rows {name, type, modality, source, licence, splits, held_out} and the database name, from a task database's
    tasks.json (path, its folder, or parsed: ``{"database", "tasks": [...]}``), a ``{name: row}`` dict or a list."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        path = path / "tasks.json" if path.is_dir() else path
        if not path.is_file():
            raise FileNotFoundError(
                f"training data description not found: {path} (expected a task database tasks.json)"
            )
        try:
            source = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from error
    database = source.get("database") if isinstance(source, dict) else None
    rows: Any = source.get("tasks", source) if isinstance(source, dict) else source
    if isinstance(rows, dict):
        rows = [{"name": name, **row} for name, row in rows.items()]
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ValueError("training data must be a list of task rows (name, type, modality, source, licence)")
    return rows, database


def _training_sources(folder: ModelFolder, training_data: Any) -> tuple[list[dict], str | None]:
    """Rows of the training-data table: from ``training_data``, the folder's tasks.json, or the config's tasks."""
    if training_data is None:
        training_data = folder.tasks_json
    if training_data is None:
        return [{"name": name, **spec} for name, spec in folder.tasks.items()], None
    rows, database = load_training_data(training_data)
    if folder.tasks:  # describe what this model was trained on (and what was held out), not the whole database
        rows = [row for row in rows if row.get("name") in folder.tasks or row.get("held_out")]
    return rows, database


def training_data_table(rows: list[dict]) -> str:
    trained = [row for row in rows if not row.get("held_out")]
    held_out = [row for row in rows if row.get("held_out")]
    if not trained:
        return "No training data is recorded with this checkpoint."
    table = _training_rows(trained)
    if held_out:
        table += "\n\nHeld out of pretraining (used only for the out-of-domain evaluation):\n\n" + _training_rows(
            held_out
        )
    return table


def _training_rows(rows: list[dict]) -> str:
    table = []
    for row in rows:
        sizes = row.get("splits") or row.get("split_sizes") or row.get("sizes") or row.get("num_examples") or {}
        size_text = ", ".join(f"{k} {v}" for k, v in sizes.items()) if isinstance(sizes, dict) else str(sizes)
        table.append(
            [f"`{row.get('name') or row.get('task', '?')}`", row.get("type", "–"), row.get("modality", "–"),
             row.get("source", "not recorded"), row.get("licence") or row.get("license") or "not recorded",
             size_text or "–"]
        )  # fmt: skip
    return _markdown_table(["task", "type", "modality", "source", "licence of the source", "examples"], table)


def render_model_card(
    model_dir: str | Path,
    repo_id: str,
    *,
    eval_json: str | Path | dict | list | None = None,
    plot_file: str | None = None,
    license: str = "apache-2.0",
    training_data: str | Path | dict | list | None = None,
    encoder_name: str | None = None,
    base_model: str | None = None,
) -> ModelCard:
    """Render the model card of a saved UMedPT model folder.

    Args:
        model_dir: folder written by ``save_pretrained`` (config.json, safetensors, preprocessor_config.json).
        repo_id: the Hub repo the card is for (used in the code snippets and ``model-index``).
        eval_json: data-scarcity results (path or parsed JSON; see ``umedpt_hf.hub.results``): table and model-index.
        plot_file: path *inside the repo* of the data-scarcity plot, shown in the card.
        license: licence of the weights (front matter); the licences of the training sources are listed in the body.
        training_data: the task database's tasks.json (path, folder or parsed) or rows {name, type, modality,
            source, licence, splits, held_out}; default: the folder's tasks.json, else the config's tasks.
        encoder_name: which encoder of the evaluation JSON is this model (default: the one named like "umedpt").
        base_model: repo id of the checkpoint this one was fine-tuned from, if any.
    """
    from umedpt_hf import __version__

    folder = ModelFolder.open(model_dir)
    modalities = {spec.get("modality") for spec in folder.tasks.values() if spec.get("modality")}
    results = load_scarcity_results(eval_json) if eval_json is not None else []
    task_types = {name: spec.get("type", "") for name, spec in folder.tasks.items()}
    encoder = model_encoder_name(results, encoder_name) if results else None
    model_name = repo_id.split("/")[-1]
    sources, database = _training_sources(folder, training_data)
    datasets = [database] if database else sorted({str(row["name"]) for row in sources if row.get("name")}) or None

    card_data = ModelCardData(
        license=license,
        library_name="transformers",
        pipeline_tag=PIPELINE_TAGS.get(folder.architecture, "image-feature-extraction"),
        tags=list(dict.fromkeys(CARD_TAGS + [t for t in (MODALITY_TAGS.get(m, m) for m in sorted(modalities)) if t])),
        datasets=datasets,
        metrics=sorted({result.metric for result in results}) or None,
        base_model=base_model,
        model_name=model_name,
        eval_results=eval_results_for(results, encoder, task_types) if encoder else None,
    )
    if results:
        scarcity_intro = (
            "Frozen-feature / fine-tuning results when only a fraction of each task's training data is used "
            "(mean ± standard deviation over seeds, number of seeds in brackets); the `model-index` above holds "
            f"the scores of `{encoder or 'the model'}`."
        )
        table = scarcity_table(results)
    else:
        scarcity_intro = (
            "No evaluation results were published with this checkpoint; run `umedpt evaluate` to make them."
        )
        table = ""
    proxy = any(any(tag in str(row.get("source", "")).lower() for tag in PROXY_SOURCES) for row in sources)
    processor = folder.processor
    # the snippet's example: a task whose modality the processor knows, with that modality
    known = [name for name, spec in folder.tasks.items() if spec.get("modality") in SNIPPET_MODALITIES]
    example_task = known[0] if known else next(iter(folder.tasks), None)
    example_modality = processor.get("modality") or (folder.tasks[example_task]["modality"] if known else "xray")
    size = processor.get("size", {})
    return ModelCard.from_template(
        card_data,
        template_path=str(hub_cards_dir() / "modelcard_template.md"),
        model_name=model_name,
        repo_id=repo_id,
        package_version=__version__,
        architecture=folder.architecture,
        encoder=folder.encoder_description,
        parameters=f"{folder.num_parameters / 1e6:.2f} M",
        hidden_size=folder.hidden_size,
        input_description=(
            f"{processor.get('num_channels', folder.num_channels)} channel(s), "
            f"{size.get('height', '?')} × {size.get('width', '?')} pixels"
        ),
        tasks_table=tasks_table(folder.tasks),
        preprocessing_table=preprocessing_table(processor),
        window_policy=WINDOW_POLICY,
        training_data_table=training_data_table(sources),
        training_data_note=(
            "Each source keeps its own licence and terms of use; the weights are derived from them, so check that "
            "your use complies with every source listed. Data was built locally and is not redistributed here."
        ),
        scarcity_intro=scarcity_intro,
        scarcity_table=table,
        plot_file=plot_file,
        example_modality=example_modality,
        example_task=example_task,
        proxy_data=proxy,
        torch_min=REMOTE_CODE_REQUIREMENTS["torch"],
        transformers_min=REMOTE_CODE_REQUIREMENTS["transformers"],
        optional_extras="; ".join(f'{text} (`pip install "umedpt_hf[{k}]"`)' for k, text in OPTIONAL_EXTRAS.items()),
    )
