from __future__ import annotations

import numpy as np
import pytest

from umedpt_hf.evaluation.few_shot import few_shot_evaluate, few_shot_indices
from umedpt_hf.evaluation.knn import train_knn
from umedpt_hf.evaluation.linear import train_linear_probe


def blobs(n: int, num_classes: int = 3, dim: int = 16, noise: float = 0.5, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(123).normal(size=(num_classes, dim)) * 2
    y = np.arange(n) % num_classes
    return (centers[y] + rng.normal(size=(n, dim)) * noise).astype(np.float32), y


def test_linear_probe_chooses_c_on_validation_and_scores_well():
    (tx, ty), (vx, vy), (sx, sy) = blobs(90, seed=0), blobs(30, seed=1), blobs(60, seed=2)
    probe = train_linear_probe(tx, ty, vx, vy, Cs=(1e-3, 1.0))
    assert probe.params["C"] in (1e-3, 1.0)
    assert probe.validation_score is not None
    scores = probe.score(sx, sy)
    assert scores["accuracy"] > 0.95 and scores["auc"] > 0.95
    assert probe.predict_proba(sx).shape == (60, 3)


def test_linear_probe_keeps_all_class_columns_when_train_lacks_a_class():
    tx, ty = blobs(30, num_classes=3)
    keep = ty < 2
    probe = train_linear_probe(tx[keep], ty[keep], num_classes=3)
    assert probe.predict_proba(tx).shape == (30, 3)
    assert np.all(probe.predict_proba(tx)[:, 2] == 0)


def test_multilabel_probe():
    x, y = blobs(120, num_classes=4)
    multi = np.stack([y == 0, y == 1, (y == 1) | (y == 2)], axis=1).astype(int)
    probe = train_linear_probe(x[:80], multi[:80], x[80:], multi[80:], multilabel=True)
    assert probe.score(x[80:], multi[80:])["macro_f1"] > 0.9


def test_knn_caps_k_and_uses_cosine():
    tx, ty = blobs(6)
    knn = train_knn(tx, ty)
    assert knn.params["k"] == 6
    sx, sy = blobs(30, seed=5)
    assert knn.score(sx, sy)["accuracy"] > 0.9
    assert train_knn(*blobs(60)).params["k"] == 11


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (np.zeros((0, 3)), np.zeros(0), "empty"),
        (np.full((4, 2), np.nan), np.array([0, 1, 0, 1]), "NaN"),
        (np.zeros((4, 2, 2)), np.array([0, 1, 0, 1]), "2-D"),
        (np.zeros((4, 2)), np.array([0, 1, 0]), "labels"),
    ],
)
def test_bad_features_raise(x, y, match):
    with pytest.raises(ValueError, match=match):
        train_linear_probe(x, y)


def test_single_class_training_subset_raises():
    with pytest.raises(ValueError, match="two classes"):
        train_linear_probe(np.ones((3, 2)), np.zeros(3, dtype=int))


def test_few_shot_indices_and_evaluate():
    x, y = blobs(90)
    idx = few_shot_indices(y, 2, seed=0)
    assert np.array_equal(np.bincount(y[idx]), [2, 2, 2])
    with pytest.raises(ValueError, match="shots"):
        few_shot_indices(y, 0)
    sx, sy = blobs(60, seed=9)
    results = few_shot_evaluate(x, y, sx, sy, shots=(1, 5), seeds=2, method="knn")
    assert set(results) == {1, 5} and all(len(v) == 2 for v in results.values())
    assert np.mean(results[5]) > 0.9


def test_feature_norms():
    (tx, ty), (sx, sy) = blobs(60), blobs(30, seed=4)
    for norm in ("l2", "standard"):
        probe = train_linear_probe(tx * 1000.0, ty, feature_norm=norm)  # scale-free either way
        assert probe.params["feature_norm"] == norm
        assert probe.score(sx * 1000.0, sy)["accuracy"] > 0.9
    with pytest.raises(ValueError, match="feature_norm"):
        train_linear_probe(tx, ty, feature_norm="minmax")
