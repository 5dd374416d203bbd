"""Normalise split names to train/validation/test and carve missing splits from train."""

from __future__ import annotations

import warnings

from datasets import Dataset, DatasetDict

SPLIT_ALIASES = {
    **dict.fromkeys(("train", "training"), "train"),
    **dict.fromkeys(("validation", "valid", "val", "dev"), "validation"),
    **dict.fromkeys(("test", "testing", "eval"), "test"),
}


def normalise_splits(
    data: DatasetDict, validation_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0
) -> DatasetDict:
    """Rename split aliases; create validation/test from train by a seeded random split if they are missing.

    Random splits are not spatially or patient disjoint: provide your own splits when examples are correlated.
    """
    renamed = {}
    for split, part in data.items():
        canonical = SPLIT_ALIASES.get(split.lower())
        if canonical is None:
            raise ValueError(f"unknown split name {split!r}; expected one of {sorted(SPLIT_ALIASES)}")
        if canonical in renamed:
            raise ValueError(f"splits {split!r} and another alias both map to {canonical!r}")
        renamed[canonical] = part
    if "train" not in renamed:
        raise ValueError(f"no 'train' split (splits: {list(data)})")
    missing = [split for split in ("validation", "test") if split not in renamed]
    if missing and len(renamed["train"]) < 2 * len(missing) + 1:
        raise ValueError(
            f"split 'train' has {len(renamed['train'])} example(s): too few to carve {missing} from it; "
            "provide validation and test splits"
        )
    if missing:
        warnings.warn(
            f"carving {missing} from 'train' at random (seed {seed}); they are not patient-disjoint", stacklevel=3
        )
        train: Dataset = renamed["train"]
        if "test" in missing:
            parts = train.train_test_split(test_size=test_fraction, seed=seed)
            train, renamed["test"] = parts["train"], parts["test"]
        if "validation" in missing:
            parts = train.train_test_split(test_size=validation_fraction, seed=seed + 1)
            train, renamed["validation"] = parts["train"], parts["test"]
        renamed["train"] = train
    return DatasetDict({split: renamed[split] for split in ("train", "validation", "test")})
