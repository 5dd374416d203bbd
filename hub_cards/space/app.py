"""UMedPT demo (gradio): upload an image, pick a task, see class scores, a labelled mask or boxes, and the embedding.

Runs on a Hugging Face Space and locally, offline: the model is a repo id or a local folder, from (in order) the
`model_path` argument of `build_demo`, the `UMEDPT_MODEL` environment variable, or `model_id.txt` next to this file.
Masks and boxes are drawn with their class names and a legend (hover a legend entry to highlight its class). The demo
opens with clickable examples of each modality, written at start-up from files that installed packages ship
(pydicom's test radiographs and CT, nilearn's MNI152 MRI template, scikit-image's cell and IHC images): nothing is
downloaded, and an example whose package is missing is left out.

It needs `umedpt_hf` for its DICOM and NIfTI readers (`umedpt_hf.io.load_dicom` / `load_nifti`, the package's
one implementation of each), torch, transformers, gradio, numpy and pillow; see requirements.txt. The model code
itself comes with the weights (`trust_remote_code=True`).

    UMEDPT_MODEL=path/to/saved/model python app.py
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry: the demo must run offline

import gradio as gr
import numpy as np
import torch
from PIL import Image
from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoModelForPreTraining

from umedpt_hf.io import load_dicom, load_nifti

MODALITIES = ["auto", "xray", "ct", "mri", "microscopy", "histology", "ultrasound", "mammography", "fundus"]
CT_WINDOWS = ["soft_tissue", "lung", "bone", "brain", "mediastinum", "liver", "wide"]
PALETTE = ["#e6194b", "#3cb44b", "#ffe119", "#0082c8", "#f58231", "#911eb4", "#46f0f0", "#f032e6", "#d2f53c",
           "#fabebe", "#008080", "#e6beff"]  # fmt: skip
NIFTI_SUFFIXES = (".nii", ".nii.gz")
DICOM_SUFFIXES = (".dcm", ".dicom")
EXAMPLES_DIR = Path(tempfile.gettempdir()) / "umedpt-space-examples"
MAX_SIDE = 768  # results are shown at most this large (a full radiograph is ~2000 pixels a side)
MASK_OPACITY = 0.55  # masks are drawn translucent, so that the anatomy stays visible under them
MAX_BOXES = 25  # the best boxes drawn; every box is one annotation layer in the browser

# system fonts only (the default theme fetches web fonts); pass to launch(theme=THEME)
THEME = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def resolve_model_path(model_path: str | None = None) -> str:
    """The model to serve: the argument, $UMEDPT_MODEL, or the repo id in model_id.txt next to this file."""
    if model_path:
        return str(model_path)
    if os.environ.get("UMEDPT_MODEL"):
        return os.environ["UMEDPT_MODEL"]
    model_id_file = Path(__file__).with_name("model_id.txt")
    if model_id_file.is_file() and model_id_file.read_text().strip():
        return model_id_file.read_text().strip()
    raise ValueError("no model given: pass build_demo(model_path), set UMEDPT_MODEL, or write model_id.txt")


# -- reading files ---------------------------------------------------------------------------------------------------
def read_image_file(path: str, slice_index: int = 0) -> tuple[np.ndarray, str | None, str]:
    """An uploaded file -> (2-D or RGB array with its original values, modality hint or None, description)."""
    name = Path(path).name
    if name.lower().endswith(NIFTI_SUFFIXES):
        try:
            volume, _ = load_nifti(path)
        except (ValueError, OSError) as error:
            raise ValueError(f"could not read {name} as NIfTI: {error}") from error
        volume = volume.reshape((*volume.shape[:3], -1))[..., 0] if volume.ndim > 3 else volume
        volume = volume[..., None] if volume.ndim == 2 else volume
        index = int(np.clip(slice_index, 0, volume.shape[2] - 1))
        axial = np.ascontiguousarray(np.rot90(volume[:, :, index]))  # RAS+: anterior up, as radiologists view it
        return axial, None, f"NIfTI {volume.shape}, axial slice {index} of {volume.shape[2]}"
    if name.lower().endswith(DICOM_SUFFIXES) or _looks_like_dicom(path):
        try:
            pixels, meta = load_dicom(path)
        except (ValueError, OSError) as error:
            raise ValueError(f"could not read {name} as DICOM: {error}") from error
        frames = int(meta.get("number_of_frames") or 1)
        index = int(np.clip(slice_index, 0, frames - 1))
        pixels = pixels[index] if frames > 1 else pixels
        modality = meta.get("modality") if meta.get("modality") in MODALITIES else None
        frame_text = f", frame {index} of {frames}" if frames > 1 else ""
        return pixels, modality, f"DICOM {meta.get('dicom_modality')} {pixels.shape[1]}×{pixels.shape[0]}{frame_text}"
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                array = np.array(image)
            else:
                array = np.array(image.convert("L" if image.mode in ("L", "LA", "1", "P") else "RGB"))
    except (OSError, ValueError) as error:  # PIL's UnidentifiedImageError is an OSError
        raise ValueError(f"could not read {name} as an image (PNG, JPEG, TIFF, DICOM, NIfTI): {error}") from error
    return array, None, f"{name}: {array.shape[1]}×{array.shape[0]} {array.dtype}"


def _looks_like_dicom(path: str) -> bool:
    with open(path, "rb") as handle:
        handle.seek(128)
        return handle.read(4) == b"DICM"


# -- examples: real images that installed packages ship, written at start-up ----------------------------------------
def _pydicom_file(name: str) -> Path:
    from pydicom.data import get_testdata_file

    found = get_testdata_file(name, download=False)  # never downloads; None without pydicom-data
    if found is None:
        raise FileNotFoundError(name)
    return Path(found)


def _mni152(folder: Path) -> Path:
    from nilearn.datasets import load_mni152_template

    path = folder / "mni152_t1_2mm.nii.gz"
    load_mni152_template(resolution=2).to_filename(path)
    return path


def _skimage_image(folder: Path, name: str, suffix: str) -> Path:
    import skimage.data

    path = folder / f"{name}{suffix}"
    Image.fromarray(getattr(skimage.data, name)()).save(path)
    return path


# (example label, modality, slice index, maker); the licences: pydicom-data MIT, MNI152 template free with its
# copyright notice (via nilearn), scikit-image's cell CC0 and immunohistochemistry without known restrictions
EXAMPLE_SOURCES = [
    ("X-ray: chest radiograph (DICOM)", "xray", 0, lambda folder: _pydicom_file("RG1_UNCR.dcm")),
    ("CT: head slice in HU (DICOM)", "ct", 0, lambda folder: _pydicom_file("CT_small.dcm")),
    ("MRI: MNI152 T1 template (NIfTI)", "mri", 45, _mni152),
    ("Microscopy: cell, phase image (PNG)", "microscopy", 0, lambda folder: _skimage_image(folder, "cell", ".png")),
    ("Histology: IHC colon glands (JPEG)", "histology", 0,
     lambda folder: _skimage_image(folder, "immunohistochemistry", ".jpg")),
    ("Ultrasound (DICOM)", "ultrasound", 0, lambda folder: _pydicom_file("US1_UNCR.dcm")),
]  # fmt: skip


def build_examples(folder: Path = EXAMPLES_DIR) -> list[tuple[str, str, str, int]]:
    """``(label, file, modality, slice)`` for each example whose source package is installed (nothing downloads)."""
    folder.mkdir(parents=True, exist_ok=True)
    examples = []
    for label, modality, slice_index, make in EXAMPLE_SOURCES:
        try:
            source = make(folder)
        except (ImportError, FileNotFoundError):  # the package that ships this image is not installed
            continue
        path = source if source.parent == folder else Path(shutil.copy(source, folder / source.name))
        examples.append((label, str(path), modality, slice_index))
    return examples


def draw_box(layer: np.ndarray, box: list[float]) -> None:
    """Draw an (x1, y1, x2, y2) box into a mask layer: an opaque outline over a faint fill."""
    height, width = layer.shape
    x1, y1 = max(round(box[0]), 0), max(round(box[1]), 0)
    x2, y2 = min(round(box[2]), width), min(round(box[3]), height)
    if x2 <= x1 or y2 <= y1:
        return
    edge = max(1, round(min(height, width) / 150))
    inner = layer[y1:y2, x1:x2]
    np.maximum(inner, 0.15, out=inner)
    for rows, cols in ((slice(y1, y1 + edge), slice(x1, x2)), (slice(y2 - edge, y2), slice(x1, x2)),
                       (slice(y1, y2), slice(x1, x1 + edge)), (slice(y1, y2), slice(x2 - edge, x2))):  # fmt: skip
        layer[rows, cols] = 1.0


# -- the model -------------------------------------------------------------------------------------------------------
class UMedPTDemo:
    """The model, its processor and the prediction function the interface calls."""

    def __init__(self, model_path: str) -> None:
        config = AutoConfig.from_pretrained(model_path, trust_remote_code=True)
        self.tasks: dict[str, dict] = dict(getattr(config, "tasks", None) or {})
        model_class = AutoModelForPreTraining if self.tasks else AutoModel
        self.model = model_class.from_pretrained(model_path, trust_remote_code=True).eval()
        self.processor = AutoImageProcessor.from_pretrained(model_path, trust_remote_code=True)
        self.model_path = model_path

    def task_choices(self) -> list[str]:
        return [f"{name} ({spec['type']})" for name, spec in self.tasks.items()] or ["embedding only"]

    def choice_for(self, modality: str) -> str:
        """The task to show an example of ``modality`` with: one trained on that modality, else the first."""
        matching = [f"{n} ({s['type']})" for n, s in self.tasks.items() if s.get("modality") == modality]
        return (matching or self.task_choices())[0]

    def color_map(self) -> dict[str, str]:
        """One colour per class name of every task, the same in every result and in the legend."""
        labels = [label for spec in self.tasks.values() for label in spec.get("labels", [])]
        return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(dict.fromkeys(labels))}

    def _task_name(self, choice: str | None) -> str | None:
        if not choice or choice == "embedding only":
            return None
        name = choice.rsplit(" (", 1)[0]
        if name not in self.tasks:
            raise gr.Error(f"unknown task {name!r}; this model has {', '.join(self.tasks)}")
        return name

    def display_image(self, array: np.ndarray, kwargs: dict[str, Any]) -> np.ndarray:
        """The image as the model sees it (same intensity rule), as uint8 RGB, at its size up to MAX_SIDE pixels."""
        shown = self.processor(array, do_resize=False, do_normalize=False, **kwargs)["pixel_values"][0]
        shown = np.clip(shown.permute(1, 2, 0).numpy() * 255, 0, 255).astype(np.uint8)
        shown = np.repeat(shown, 3, axis=-1) if shown.shape[-1] == 1 else shown[..., :3]
        scale = MAX_SIDE / max(shown.shape[:2])
        if scale < 1:
            size = (round(shown.shape[1] * scale), round(shown.shape[0] * scale))
            shown = np.asarray(Image.fromarray(shown).resize(size, Image.Resampling.LANCZOS))
        return shown

    @torch.no_grad()
    def predict(
        self, file: str | None, task_choice: str | None, modality: str, window: str, slice_index: float,
        threshold: float,
    ) -> tuple[dict[str, float], tuple[np.ndarray, list], dict[str, Any], str]:  # fmt: skip
        if not file:
            raise gr.Error("upload an image first (PNG, JPEG, TIFF, DICOM or NIfTI)")
        try:
            array, file_modality, description = read_image_file(file, int(slice_index or 0))
        except (ValueError, ImportError) as error:
            raise gr.Error(str(error)) from error
        task = self._task_name(task_choice)
        spec = self.tasks.get(task, {}) if task else {}
        chosen = None if modality in (None, "", "auto") else modality
        chosen = chosen or file_modality or (spec.get("modality") if spec.get("modality") in MODALITIES else None)
        kwargs: dict[str, Any] = {"return_tensors": "pt", **({"modality": chosen} if chosen else {})}
        kwargs |= {"window": window} if chosen == "ct" else {}
        try:
            pixel_values = self.processor(array, **kwargs)["pixel_values"]
            shown = self.display_image(array, kwargs)
        except (ValueError, TypeError) as error:
            raise gr.Error(f"could not preprocess the image: {error}") from error
        height, width = shown.shape[:2]
        description += f", shown at {width}×{height}" if (height, width) != array.shape[:2] else ""
        embedding = self.model.get_image_features(pixel_values)[0]
        summary = {"dimension": int(embedding.numel()), "l2_norm": round(float(embedding.norm()), 4),
                   "embedding": [round(float(v), 4) for v in embedding]}  # fmt: skip
        info = f"**{task or 'embedding'}** ({spec.get('type', 'encoder')}): {description}; modality {chosen or 'auto'}"
        info += f", window {window}" if chosen == "ct" else ""
        if task is None:
            return {}, (shown, []), summary, info + "; no task head: embedding only."
        outputs = self.model(pixel_values, task=task)
        labels, kind = spec["labels"], spec["type"]
        if kind in ("classification", "multilabel"):
            logits = outputs.logits[0]
            scores = torch.sigmoid(logits) if kind == "multilabel" else torch.softmax(logits, dim=-1)
            return {labels[i]: float(s) for i, s in enumerate(scores)}, (shown, []), summary, info
        if kind == "segmentation":
            label_map = self.processor.post_process_semantic_segmentation(outputs, target_sizes=[(height, width)])[0]
            label_map = label_map.numpy()
            drawn = [c for c in np.unique(label_map) if labels[c].lower() != "background"]
            masks = [((label_map == c) * MASK_OPACITY, labels[c]) for c in drawn]
            fractions = {labels[c]: float((label_map == c).mean()) for c in range(len(labels))}
            return fractions, (shown, masks), summary, info + "; scores are the fraction of pixels of each class."
        if kind == "detection":
            found = self.processor.post_process_object_detection(
                outputs, threshold=float(threshold), target_sizes=[(height, width)]
            )[0]
            layers: dict[str, np.ndarray] = {}  # one layer per class: one legend entry, all its boxes highlighted
            best: dict[str, float] = {}
            ranked = sorted(
                zip(found["scores"].tolist(), found["labels"].tolist(), found["boxes"].tolist()), reverse=True
            )
            for score, label, box in ranked[:MAX_BOXES]:
                layer = layers.setdefault(labels[label], np.zeros((height, width), dtype=np.float32))
                draw_box(layer, box)
                best[labels[label]] = max(best.get(labels[label], 0.0), float(score))
            boxes = [(layer, name) for name, layer in layers.items()]
            note = f"; {len(ranked)} box(es) above {threshold:.2f}" + (
                f", the best {MAX_BOXES} drawn" if len(ranked) > MAX_BOXES else ""
            )
            note += "; scores are each class's best box."
            return best, (shown, boxes), summary, info + note
        raise gr.Error(f"task type {kind!r} is not supported by this demo")


def build_demo(model_path: str | None = None) -> gr.Blocks:
    """The gradio app serving one UMedPT model (a repo id or a local folder)."""
    demo_model = UMedPTDemo(resolve_model_path(model_path))
    with gr.Blocks(title="UMedPT demo") as demo:
        gr.Markdown(
            f"# UMedPT demo\nModel: `{demo_model.model_path}`. Upload a PNG/JPEG/TIFF, a DICOM file, or a NIfTI volume "
            "with a slice index, or click an example below; choose a task. **Research demo, not for clinical use.**"
        )
        with gr.Row():
            with gr.Column():
                file = gr.File(label="image (PNG, JPEG, TIFF, DICOM, NIfTI)", type="filepath")
                choices = demo_model.task_choices()
                task = gr.Dropdown(choices, value=choices[0], label="task")
                with gr.Row():
                    modality = gr.Dropdown(MODALITIES, value="auto", label="modality")
                    window = gr.Dropdown(CT_WINDOWS, value="soft_tissue", label="CT window")
                with gr.Row():
                    slice_index = gr.Number(value=0, precision=0, minimum=0, label="slice (NIfTI / multi-frame)")
                    threshold = gr.Slider(0.0, 1.0, value=0.3, step=0.01, label="detection threshold")
                run = gr.Button("Run", variant="primary")
            with gr.Column():
                result = gr.AnnotatedImage(label="result", show_legend=True, color_map=demo_model.color_map(),
                                           format="png")  # fmt: skip
                scores = gr.Label(label="scores", num_top_classes=10)
                info = gr.Markdown()
        inputs = [file, task, modality, window, slice_index, threshold]
        examples = build_examples()
        if examples:
            rows = [
                [path, demo_model.choice_for(mod), mod, "soft_tissue", index, 0.3] for _, path, mod, index in examples
            ]
            gr.Examples(rows, inputs=inputs, label="Examples: one image per modality (click one, then Run)",
                        example_labels=[label for label, *_ in examples], examples_per_page=len(rows))  # fmt: skip
        embedding = gr.JSON(label="image embedding", max_height=260)
        run.click(demo_model.predict, inputs=inputs, outputs=[scores, result, embedding, info], api_name="predict")
    demo.umedpt = demo_model  # for tests and notebooks: the loaded model and processor
    demo.umedpt_examples = examples
    return demo


if __name__ == "__main__":
    build_demo().launch(theme=THEME)
