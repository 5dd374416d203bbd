"""Images per second that ONE data-loading worker supplies: decoded + augmented + collated, at 224 px, per task type.

    python benchmarks/input_pipeline.py [--images 48] [--repeats 3] [--out benchmarks/results/input_pipeline.json]

Sources are full-size images made from real offline images: the DSB 2018 fluorescence image of stardist (uint8,
with its expert nucleus instance masks) tiled to 1024 px, and the chest radiograph RG1 of pydicom-data (uint16)
resized, each cut into 512 px and 1024 px crops, a seeded crop per row so that every row is a different image (and
into 256 px crops: what the same data cost when stored once at training resolution). Every (task type, size, dtype)
is stored as a real `datasets` split with `Image()` columns (`save_to_disk`, then `load_from_disk`: PNG for uint8
and masks, TIFF for uint16, as `datasets` encodes them), so decoding is real. Labels: classification a class per
row, multilabel a multi-hot vector, segmentation the nucleus masks (3 classes) resized with the image, detection the
boxes of the nucleus instances. The geometry of the labels comes from the nuclei for both dtypes: the cost of the
pipeline does not depend on what the labels mean.

One worker = one process with one torch and one OpenCV thread; the loop is a `DataLoader` with `num_workers=0` over
`make_task_dataloader` (`TaskCollator` with the task's augmentation preset and a `UMedPTImageProcessor` at 224 px),
timed after one warm-up batch; stages are timed separately on the same rows (read = Arrow row access, decode =
image and mask decoding, augment + collate = the collator on decoded rows), and, for comparison in the same run, the
first version's way: PIL decoding inside `datasets` (read + decode) and augmentation at full resolution. The median
over ``--repeats`` passes is reported. The run also times `validate_task_dataset` (every row) on each synthetic
split and on the built umedpt-mini database. Writes JSON and a PNG next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from datasets import Dataset, load_from_disk
from scipy import ndimage

from umedpt_hf.data import TaskCollator, build_database, make_spec, make_task_dataloader, task_features
from umedpt_hf.data.decode import decode_cell
from umedpt_hf.data.loaders import undecoded
from umedpt_hf.data.schema import LABEL_COLUMNS
from umedpt_hf.data.task import TaskDataset
from umedpt_hf.data.validate import validate_task_dataset
from umedpt_hf.image_processing_umedpt import UMedPTImageProcessor

RESULTS = Path(__file__).parent / "results"
TYPES = ("classification", "multilabel", "segmentation", "detection")
SIZES, DTYPES = (256, 512, 1024), ("uint8", "uint16")  # 256: the same sources stored at training resolution
TARGET_PER_WORKER = 110  # images/s one core must supply: ~1500 images/s for a GPU training Swin-V2-T, 14 workers
LABELS = {"classification": ["a", "b", "c"], "multilabel": ["a", "b", "c"], "segmentation": ["bg", "nucleus", "edge"]}
LABELS["detection"] = ["nucleus"]


def real_sources() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{dtype: (image, instance mask)} at 1280 px: the nuclei image tiled 2 x 2 (mirrored), the radiograph resized."""
    from umedpt_hf.data.sources import locate_source
    from umedpt_hf.data.sources.nuclei import load_nuclei
    from umedpt_hf.io import load_dicom

    nuclei = locate_source("stardist")
    radiograph = locate_source("pydicom_data")
    if nuclei is None or radiograph is None:
        sys.exit("needs stardist (pip install --no-deps stardist) and pydicom-data (pip install pydicom-data)")
    image, instances = load_nuclei(str(nuclei["image"]), str(nuclei["instances"]))
    offset = instances.max()
    tiled_image = np.block([[image, image[:, ::-1]], [image[::-1], image[::-1, ::-1]]])
    tiled_masks = np.block(
        [[instances, np.where(instances[:, ::-1] > 0, instances[:, ::-1] + offset, 0)],
         [np.where(instances[::-1] > 0, instances[::-1] + 2 * offset, 0),
          np.where(instances[::-1, ::-1] > 0, instances[::-1, ::-1] + 3 * offset, 0)]]
    )  # fmt: skip
    side = 1280
    masks = cv2.resize(tiled_masks.astype(np.float32), (side, side), interpolation=cv2.INTER_NEAREST).astype(np.int32)
    grey8 = cv2.resize(tiled_image.astype(np.uint8), (side, side), interpolation=cv2.INTER_LINEAR)
    pixels, _ = load_dicom(str(radiograph["RG1_UNCR.dcm"]))
    grey16 = cv2.resize(pixels.astype(np.uint16), (side, side), interpolation=cv2.INTER_AREA)
    return {"uint8": (grey8, masks), "uint16": (grey16, masks)}


def make_rows(task_type: str, size: int, dtype: str, count: int, seed: int = 0) -> dict[str, list]:
    image, instances = real_sources_cache()[dtype]
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {"image": [], LABEL_COLUMNS[task_type]: []}
    for index in range(count):
        scale = size / rng.uniform(0.6, 1.0) / image.shape[0]  # crops of 60-100 % of the source, resized to `size`
        extent = round(size / scale)
        y0, x0 = rng.integers(0, image.shape[0] - extent + 1, size=2)
        crop = cv2.resize(image[y0 : y0 + extent, x0 : x0 + extent], (size, size), interpolation=cv2.INTER_AREA)
        labels = cv2.resize(
            instances[y0 : y0 + extent, x0 : x0 + extent].astype(np.float32), (size, size),
            interpolation=cv2.INTER_NEAREST,
        ).astype(np.int32)  # fmt: skip
        rows["image"].append(crop)
        if task_type == "classification":
            rows["label"].append(index % 3)
        elif task_type == "multilabel":
            rows["labels"].append([float((index >> bit) & 1) for bit in range(3)])
        elif task_type == "segmentation":
            interior = ndimage.binary_erosion(labels > 0, iterations=2)
            rows["mask"].append(np.where(interior, 1, np.where(labels > 0, 2, 0)).astype(np.uint8))
        else:
            boxes = [
                [float(found[1].start), float(found[0].start), float(found[1].stop - found[1].start),
                 float(found[0].stop - found[0].start)]
                for found in ndimage.find_objects(labels) if found is not None
            ]  # fmt: skip
            rows["objects"].append({"bbox": boxes, "category": [0] * len(boxes)})
    return rows


_SOURCES: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def real_sources_cache() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if not _SOURCES:
        _SOURCES.update(real_sources())
    return _SOURCES


def make_task(task_type: str, size: int, dtype: str, count: int, folder: Path) -> TaskDataset:
    """A real `datasets` split on disk (save_to_disk + load_from_disk), read back memory-mapped."""
    modality = "microscopy" if dtype == "uint8" else "xray"
    spec = make_spec(task_type, LABELS[task_type], modality)
    data = Dataset.from_dict(
        make_rows(task_type, size, dtype, count), features=task_features(task_type, spec["labels"])
    )
    path = folder / f"{task_type}_{size}_{dtype}"
    data.save_to_disk(str(path))
    return TaskDataset(name=path.name, spec=spec, splits={"train": load_from_disk(str(path))})


def time_pipeline(task: TaskDataset, processor: Any, batch_size: int) -> dict[str, float]:
    """Milliseconds per image of each stage, and images/s of the whole DataLoader loop (one pass, after a warm-up).

    Stages, on the same rows: read (Arrow row access, images undecoded), decode (`decode_cell` of image and mask),
    augment + collate (`TaskCollator` on decoded rows: one resize, augmentation, processor, tensors)."""
    split = undecoded(task.splits["train"])
    collator = TaskCollator(task.spec, processor, augment=True, seed=0)
    batches = [list(range(start, min(start + batch_size, len(split)))) for start in range(0, len(split), batch_size)]
    collator([split[0]])  # warm-up (imports, first allocation)
    started = time.perf_counter()
    rows = [split.__getitems__(indices) for indices in batches]
    read = time.perf_counter() - started
    started = time.perf_counter()
    images = {"image", "mask"}
    decoded = [[{k: decode_cell(v) if k in images else v for k, v in row.items()} for row in batch] for batch in rows]
    decode = time.perf_counter() - started
    started = time.perf_counter()
    for examples in decoded:
        collator(examples)
    collate = time.perf_counter() - started
    # the same rows the way the first version did them: PIL decoding by `datasets`, augmentation at full resolution
    started = time.perf_counter()
    pil_decoded = [task.splits["train"].__getitems__(indices) for indices in batches]
    pil_decode = time.perf_counter() - started
    collator.augmentation.target_size = None
    started = time.perf_counter()
    for examples in decoded:
        collator(examples)
    full_resolution = time.perf_counter() - started
    del pil_decoded
    loader = make_task_dataloader(task, "train", processor, batch_size=batch_size, augment=True, seed=0)
    next(iter(loader))
    started = time.perf_counter()
    count = sum(len(batch["pixel_values"]) for batch in loader)
    loop = time.perf_counter() - started
    per_image = 1000 / len(split)
    return {"read_ms": read * per_image, "decode_ms": decode * per_image, "augment_collate_ms": collate * per_image,
            "loop_images_per_s": count / loop, "pil_read_decode_ms": pil_decode * per_image,
            "full_resolution_augment_collate_ms": full_resolution * per_image}  # fmt: skip


def time_validation(task: TaskDataset) -> float:
    started = time.perf_counter()
    validate_task_dataset(task.splits["train"], task.spec, task.name)
    return time.perf_counter() - started


def validation_of_database(folder: Path) -> dict[str, Any]:
    """Seconds to validate every row of every split of the built umedpt-mini database."""
    from umedpt_hf.data import load_task_database

    build_database(folder, progress=False, echo=lambda message: None)
    tasks = load_task_database(folder)  # itself validates every row; timed again below
    out, rows = {}, 0
    started = time.perf_counter()
    for name, task in tasks.items():
        task_started = time.perf_counter()
        validate_task_dataset(task.splits, task.spec, name)
        out[name] = {"rows": sum(task.split_sizes().values()), "seconds": round(time.perf_counter() - task_started, 4)}
        rows += out[name]["rows"]
    return {"tasks": out, "rows": rows, "seconds": round(time.perf_counter() - started, 3)}


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = [(size, dtype) for size in SIZES for dtype in DTYPES]
    figure, axis = plt.subplots(figsize=(9, 4.2))
    width = 0.8 / len(variants)
    for k, (size, dtype) in enumerate(variants):
        found = {(r["type"], r["size"], r["dtype"]): r["loop_images_per_s"] for r in results}
        values = [found[(task_type, size, dtype)] for task_type in TYPES]
        axis.bar(np.arange(len(TYPES)) + (k - (len(variants) - 1) / 2) * width, values, width, label=f"{size}² {dtype}")
    axis.axhline(TARGET_PER_WORKER, color="k", linestyle="--", linewidth=1, label=f"target {TARGET_PER_WORKER}/s")
    axis.set_xticks(np.arange(len(TYPES)), TYPES)
    axis.set_ylabel("images / s per worker (224 px out)")
    axis.set_title("Input pipeline: decode + augment + collate, one worker (1 thread)")
    axis.legend(fontsize=8, ncol=3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48, help="rows per (type, size, dtype) split")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--size", type=int, default=224, help="side of the processor output")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "input_pipeline.json")
    parser.add_argument("--no-database", action="store_true", help="skip timing the validation of umedpt-mini")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    results = []
    with tempfile.TemporaryDirectory(prefix="input_pipeline_") as temporary:
        folder = Path(temporary)
        for task_type in TYPES:
            for size in SIZES:
                for dtype in DTYPES:
                    task = make_task(task_type, size, dtype, args.images, folder)
                    processor = UMedPTImageProcessor(size={"height": args.size, "width": args.size})
                    runs = [time_pipeline(task, processor, args.batch_size) for _ in range(args.repeats)]
                    row = {"type": task_type, "size": size, "dtype": dtype, "images": args.images}
                    for key in runs[0]:
                        row[key] = round(statistics.median(run[key] for run in runs), 3)
                    row["validation_s"] = round(time_validation(task), 4)
                    print(json.dumps(row), flush=True)
                    results.append(row)
        database = None if args.no_database else validation_of_database(folder / "umedpt-mini")
    report = {
        "benchmark": "input_pipeline",
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "python": platform.python_version(), "torch": torch.__version__, "opencv": cv2.__version__,
                    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "settings": {"output_size": args.size, "batch_size": args.batch_size, "images": args.images,
                     "repeats": args.repeats, "threads_per_worker": 1, "augment": True},
        "target_images_per_s_per_worker": TARGET_PER_WORKER,
        "results": results,
        "validation_of_umedpt_mini": database,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    plot(results, args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
