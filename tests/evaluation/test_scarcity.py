from __future__ import annotations

import itertools

import numpy as np
import pytest

from umedpt_hf.evaluation.report import validate_result
from umedpt_hf.evaluation.scarcity import SplitFeatures, probe_scarcity_curve

FRACTIONS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0)


def separable_features(seed: int = 0, noise: float = 2.0) -> SplitFeatures:
    """Four Gaussian classes in 32-d: separable given enough examples, hard from a handful."""
    centers = np.random.default_rng(42).normal(size=(4, 32))
    rng = np.random.default_rng(seed)

    def split(n):
        y = rng.integers(0, 4, n)
        return (centers[y] + rng.normal(size=(n, 32)) * noise).astype(np.float32), y

    (tx, ty), (vx, vy), (sx, sy) = split(800), split(200), split(400)
    return SplitFeatures(tx, ty, sx, sy, vx, vy)


@pytest.mark.parametrize("method", ["linear", "knn", "finetune"])
def test_protocol_gives_a_rising_curve(method):
    budget = {"epochs": 5, "min_steps": 40}  # the head on features: a short AdamW run
    seeds = 2 if method == "finetune" else 3
    curve = probe_scarcity_curve(
        separable_features(), method=method, fractions=FRACTIONS, seeds=seeds, finetune_kwargs=budget
    )
    assert list(curve) == ["0.01", "0.05", "0.1", "0.25", "0.5", "1.0"]
    assert all(len(scores) == seeds for scores in curve.values())
    means = [np.mean(curve[k]) for k in curve]
    assert means[-1] > means[0] + 0.15  # many more labels help a lot
    assert all(later >= earlier - 0.03 for earlier, later in itertools.pairwise(means))  # rises (up to seed noise)
    assert means[-1] > 0.75
    validate_result({"task": "synthetic", "metric": "macro_f1", "encoders": {method: curve}})


def test_full_fraction_is_identical_across_seeds_for_the_linear_probe():
    curve = probe_scarcity_curve(separable_features(), fractions=(1.0,), seeds=2, scale_validation=False)
    assert curve["1.0"][0] == curve["1.0"][1]


def test_informative_features_beat_noise_features():
    good = separable_features()
    rng = np.random.default_rng(0)
    noise = SplitFeatures(
        rng.normal(size=good.train_x.shape), good.train_y, rng.normal(size=good.test_x.shape), good.test_y
    )
    good_curve = probe_scarcity_curve(good, fractions=(0.1,), seeds=2)
    noise_curve = probe_scarcity_curve(noise, fractions=(1.0,), seeds=1)
    assert np.mean(good_curve["0.1"]) > np.mean(noise_curve["1.0"]) + 0.3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fractions": (0.0, 0.5)}, "fraction"),
        ({"fractions": (1.5,)}, "fraction"),
        ({"method": "svm"}, "unknown evaluation method"),
        ({"task_type": "segmentation"}, "use method 'finetune'"),
        ({"metric": "dice"}, "not defined for classification"),
        ({"seeds": 0}, "seeds"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        probe_scarcity_curve(separable_features(), **kwargs)
