"""UMedPT demo (gradio): upload an image, pick a task, see probabilities / a mask overlay / boxes, and the embedding.

Runs on a Hugging Face Space and locally, offline: the model is a repo id or a local folder, from (in order) the
`model_path` argument of `build_demo`, the `UMEDPT_MODEL` environment variable, or `model_id.txt` next to this file.
It needs transformers, torch, gradio, pillow, numpy, and pydicom / nibabel for DICOM / NIfTI, not `umedpt_hf`: the
model code comes with the weights (`trust_remote_code=True`).

    UMEDPT_MODEL=path/to/saved/model python app.py
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry: the demo must run offline

import gradio as gr
import numpy as np
import torch
from PIL import Image, ImageDraw
from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoModelForPreTraining

MODALITIES = ["auto", "xray", "ct", "mri", "microscopy", "histology", "ultrasound", "mammography", "fundus"]
CT_WINDOWS = ["soft_tissue", "lung", "bone", "brain", "mediastinum", "liver", "wide"]
DICOM_MODALITIES = {"CT": "ct", "MR": "mri", "CR": "xray", "DX": "xray", "DR": "xray", "RG": "xray", "XA": "xray",
                    "RF": "xray", "MG": "mammography", "US": "ultrasound", "SM": "microscopy"}  # fmt: skip
PALETTE = np.array(
    [[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180],
     [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128], [220, 190, 255]],
    dtype=np.uint8,
)  # fmt: skip
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
DICOM_SUFFIXES = (".dcm", ".dicom")


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
    name = Path(path).name.lower()
    if name.endswith(NIFTI_SUFFIXES):
        return _read_nifti(path, slice_index)
    if name.endswith(DICOM_SUFFIXES) or _looks_like_dicom(path):
        return _read_dicom(path, slice_index)
    if name.endswith(IMAGE_SUFFIXES) or not Path(name).suffix:
        try:
            with Image.open(path) as image:
                image.load()
                if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                    array = np.array(image)
                else:
                    array = np.array(image.convert("L" if image.mode in ("L", "LA", "1", "P") else "RGB"))
        except Exception as error:  # PIL raises many types for corrupt files
            raise ValueError(f"could not read {Path(path).name} as an image: {error}") from error
        return array, None, f"{Path(path).name}: {array.shape[1]}×{array.shape[0]} {array.dtype}"
    raise ValueError(f"unsupported file {Path(path).name}: use PNG, JPEG, TIFF, DICOM (.dcm) or NIfTI (.nii/.nii.gz)")


def _looks_like_dicom(path: str) -> bool:
    with open(path, "rb") as handle:
        handle.seek(128)
        return handle.read(4) == b"DICM"


def _read_dicom(path: str, slice_index: int) -> tuple[np.ndarray, str | None, str]:
    try:
        import pydicom
        from pydicom.pixels import apply_modality_lut
    except ImportError as error:
        raise ValueError("reading DICOM needs pydicom: pip install pydicom") from error
    try:
        dataset = pydicom.dcmread(path)
        pixels = dataset.pixel_array
    except Exception as error:
        raise ValueError(f"could not read {Path(path).name} as DICOM: {error}") from error
    frames = int(getattr(dataset, "NumberOfFrames", 1) or 1)
    if frames > 1:
        pixels = pixels[int(np.clip(slice_index, 0, frames - 1))]
    values = apply_modality_lut(pixels, dataset)  # stored values -> HU for CT
    if getattr(dataset, "PhotometricInterpretation", "") == "MONOCHROME1":
        values = values.max() + values.min() - values
    modality = DICOM_MODALITIES.get(str(getattr(dataset, "Modality", "")))
    array = np.asarray(values, dtype=np.float32) if values.dtype.kind == "f" else np.asarray(values)
    description = f"DICOM {getattr(dataset, 'Modality', '?')} {array.shape[1]}×{array.shape[0]}" + (
        f", frame {int(np.clip(slice_index, 0, frames - 1))} of {frames}" if frames > 1 else ""
    )
    return array, modality, description


def _read_nifti(path: str, slice_index: int) -> tuple[np.ndarray, str | None, str]:
    try:
        import nibabel
    except ImportError as error:
        raise ValueError("reading NIfTI needs nibabel: pip install nibabel") from error
    try:
        volume = np.asanyarray(nibabel.load(path).dataobj)
    except Exception as error:
        raise ValueError(f"could not read {Path(path).name} as NIfTI: {error}") from error
    while volume.ndim > 3:
        volume = volume[..., 0]
    if volume.ndim == 2:
        volume = volume[..., None]
    depth = volume.shape[2]
    index = int(np.clip(slice_index, 0, depth - 1))
    array = np.rot90(np.asarray(volume[:, :, index], dtype=np.float32))  # radiological display: anterior up
    return np.ascontiguousarray(array), None, f"NIfTI {volume.shape}, axial slice {index} of {depth}"


# -- the model ----------------------------------------------------------------------------------------------------
def load_processor(model_path: str) -> Any:
    """The image processor saved with the model: through its auto_map, else umedpt_hf's class when it is installed
    (a folder saved before the processor registered its remote code)."""
    try:
        return AutoImageProcessor.from_pretrained(model_path, trust_remote_code=True)
    except ValueError as error:
        try:
            from umedpt_hf.image_processing_umedpt import UMedPTImageProcessor
        except ImportError:
            raise error from None
        return UMedPTImageProcessor.from_pretrained(model_path)


# -- the model -------------------------------------------------------------------------------------------------------
class UMedPTDemo:
    """The model, its processor and the prediction function the interface calls."""

    def __init__(self, model_path: str) -> None:
        config = AutoConfig.from_pretrained(model_path, trust_remote_code=True)
        self.tasks: dict[str, dict] = dict(getattr(config, "tasks", None) or {})
        model_class = AutoModelForPreTraining if self.tasks else AutoModel
        self.model = model_class.from_pretrained(model_path, trust_remote_code=True).eval()
        self.processor = load_processor(model_path)
        self.model_path = model_path

    def task_choices(self) -> list[str]:
        return [f"{name} ({spec['type']})" for name, spec in self.tasks.items()] or ["embedding only"]

    def _task_name(self, choice: str | None) -> str | None:
        if not choice or choice == "embedding only":
            return None
        name = choice.rsplit(" (", 1)[0]
        if name not in self.tasks:
            raise gr.Error(f"unknown task {name!r}; this model has {', '.join(self.tasks)}")
        return name

    def _preprocess(self, array: np.ndarray, modality: str | None, window: str) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"return_tensors": "pt"}
        if modality:
            kwargs["modality"] = modality
        if modality == "ct":
            kwargs["window"] = window
        return kwargs

    def display_image(self, array: np.ndarray, kwargs: dict[str, Any]) -> np.ndarray:
        """The image as the model sees it (same intensity rule), at its original size, as uint8 RGB."""
        try:
            shown = self.processor(array, do_resize=False, do_normalize=False, **kwargs)["pixel_values"][0]
            shown = shown.permute(1, 2, 0).numpy()
        except Exception:  # a processor without these switches: fall back to a percentile stretch
            low, high = np.percentile(array, (0.5, 99.5))
            shown = np.clip((array.astype(np.float32) - low) / max(high - low, 1e-6), 0, 1)
        shown = np.clip(shown * 255, 0, 255).astype(np.uint8)
        if shown.ndim == 2:
            shown = shown[..., None]
        if shown.shape[-1] == 1:
            shown = np.repeat(shown, 3, axis=-1)
        return shown[..., :3]

    @torch.no_grad()
    def predict(
        self,
        file: str | None,
        task_choice: str | None,
        modality: str,
        window: str,
        slice_index: float,
        threshold: float,
    ) -> tuple[dict[str, float], np.ndarray, dict[str, Any], str]:
        if not file:
            raise gr.Error("upload an image first (PNG, JPEG, TIFF, DICOM or NIfTI)")
        try:
            array, file_modality, description = read_image_file(file, int(slice_index or 0))
        except ValueError as error:
            raise gr.Error(str(error)) from error
        task = self._task_name(task_choice)
        spec = self.tasks.get(task, {}) if task else {}
        chosen = None if modality in (None, "", "auto") else modality
        chosen = chosen or file_modality or (spec.get("modality") if spec.get("modality") in MODALITIES else None)
        kwargs = self._preprocess(array, chosen, window)
        try:
            inputs = self.processor(array, **kwargs)
        except (ValueError, TypeError) as error:
            raise gr.Error(f"could not preprocess the image: {error}") from error
        pixel_values = inputs["pixel_values"]
        shown = self.display_image(array, kwargs)
        height, width = shown.shape[:2]
        embedding = self.model.get_image_features(pixel_values).pooler_output[0]
        summary = {
            "dimension": int(embedding.numel()),
            "l2_norm": round(float(embedding.norm()), 4),
            "embedding": [round(float(v), 4) for v in embedding],
        }
        info = f"**{task or 'embedding'}** ({spec.get('type', 'encoder')}): {description}; modality {chosen or 'auto'}"
        info += f", window {window}" if chosen == "ct" else ""
        if task is None:
            return {}, shown, summary, info + "; no task head: embedding only."
        outputs = self.model(pixel_values, task=task)
        labels = spec["labels"]
        kind = spec["type"]
        if kind in ("classification", "multilabel"):
            logits = outputs.logits[0]
            scores = torch.sigmoid(logits) if kind == "multilabel" else torch.softmax(logits, dim=-1)
            return {labels[i]: float(s) for i, s in enumerate(scores)}, shown, summary, info
        if kind == "segmentation":
            label_map = self.processor.post_process_semantic_segmentation(outputs, target_sizes=[(height, width)])[0]
            label_map = label_map.numpy().astype(np.int64)
            colours = PALETTE[1:][(label_map - 1) % (len(PALETTE) - 1)]
            overlay = np.where((label_map > 0)[..., None], (0.55 * shown + 0.45 * colours).astype(np.uint8), shown)
            fractions = {labels[c]: float((label_map == c).mean()) for c in range(len(labels))}
            return fractions, overlay, summary, info + "; scores are the fraction of pixels of each class."
        if kind == "detection":
            found = self.processor.post_process_object_detection(
                outputs, threshold=float(threshold), target_sizes=[(height, width)]
            )[0]
            drawn = Image.fromarray(shown)
            pen = ImageDraw.Draw(drawn)
            best: dict[str, float] = {}
            for score, label, box in zip(found["scores"].tolist(), found["labels"].tolist(), found["boxes"].tolist()):
                colour = tuple(int(c) for c in PALETTE[1 + label % (len(PALETTE) - 1)])
                pen.rectangle(box, outline=colour, width=max(1, round(min(height, width) / 150)))
                pen.text((box[0] + 2, box[1] + 1), f"{labels[label]} {score:.2f}", fill=colour)
                best[labels[label]] = max(best.get(labels[label], 0.0), float(score))
            note = f"; {len(found['scores'])} box(es) above {threshold:.2f}; scores are each class's best box."
            return best, np.array(drawn), summary, info + note
        raise gr.Error(f"task type {kind!r} is not supported by this demo")


def build_demo(model_path: str | None = None) -> gr.Blocks:
    """The gradio app serving one UMedPT model (a repo id or a local folder)."""
    demo_model = UMedPTDemo(resolve_model_path(model_path))
    with gr.Blocks(title="UMedPT demo") as demo:
        gr.Markdown(
            f"# UMedPT demo\nModel: `{demo_model.model_path}`. Upload a PNG/JPEG/TIFF, a DICOM file, or a NIfTI volume "
            "with a slice index; choose a task. **Research demo, not for clinical use.**"
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
                result_image = gr.Image(label="result", type="numpy", format="png")
                scores = gr.Label(label="scores", num_top_classes=10)
                info = gr.Markdown()
        embedding = gr.JSON(label="image embedding", max_height=260)
        run.click(
            demo_model.predict,
            inputs=[file, task, modality, window, slice_index, threshold],
            outputs=[scores, result_image, embedding, info],
            api_name="predict",
        )
    demo.umedpt = demo_model  # for tests and notebooks: the loaded model and processor
    return demo


if __name__ == "__main__":
    build_demo().launch(theme=THEME)
