"""Where converted weights come from: the source file's SHA-256, its licence terms, and its input convention."""

from __future__ import annotations

import hashlib
from pathlib import Path

LICENCES = {
    "umedpt_export": {
        "id": "other",
        "name": "umedpt-authors-noncommercial",
        "text": (
            "The weights are the UMedPT authors' published encoder, distributed by them under their own licence for "
            "non-commercial research use, which does not permit redistribution without their consent. That licence "
            "(not the Apache-2.0 licence of the umedpt_hf code) governs this folder and anything derived from it. "
            "Read the licence that came with your download before using or sharing these weights; publish a "
            "converted copy only if it allows you to."
        ),
    },
    "torchvision_state_dict": {
        "id": "other",
        "name": "torchvision-weights-imagenet-terms",
        "text": (
            "The weights come from a torchvision Swin-V2 checkpoint. torchvision's code is BSD-3-Clause, but its "
            "documentation notes that pretrained weights may carry the terms of the data they were trained on: for "
            "ImageNet-1k weights these are the ImageNet terms of access (non-commercial research and educational "
            "use). If the checkpoint is your own, your terms apply. The Apache-2.0 licence of the umedpt_hf code "
            "does not cover these weights."
        ),
    },
    "transformers_swinv2": {
        "id": "other",
        "name": "source-checkpoint-terms",
        "text": (
            "The weights come from a transformers Swin-V2 checkpoint; the licence of that checkpoint applies to them "
            "(see its model card). The Apache-2.0 licence of the umedpt_hf code does not cover these weights."
        ),
    },
}

# what the source's own pipeline fed its encoder: the converted processor reproduces it
INPUT_CONVENTIONS = {
    "umedpt_export": {
        "image_size": 224,
        "normalize": False,
        "text": "RGB scaled to [0, 1], no mean/std normalisation, 224 px (the authors' framework)",
    },
    "torchvision_state_dict": {
        "image_size": 256,
        "normalize": True,
        "text": "RGB scaled to [0, 1] then ImageNet mean/std, 256 px (torchvision's swin_v2_t recipe)",
    },
    "transformers_swinv2": {
        "image_size": None,  # the source's own config.image_size
        "normalize": True,
        "text": "RGB scaled to [0, 1] then ImageNet mean/std (transformers' Swin-V2 image processors)",
    },
}


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def transformers_card_licence(folder: Path) -> str | None:
    """The `license` in a transformers checkpoint's README front matter, if it has one."""
    readme = folder / "README.md"
    if not readme.is_file():
        return None
    from huggingface_hub import ModelCard

    try:
        return ModelCard.load(readme).data.to_dict().get("license")
    except Exception:  # a README without valid front matter: no licence recorded
        return None
