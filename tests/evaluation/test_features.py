from __future__ import annotations

import numpy as np
import pytest
import torch
from evaluation_test_utils import IMAGE_SIDE, bar_dataset
from transformers import BertConfig, BertModel, ResNetConfig, ResNetModel, Swinv2Config, Swinv2Model

from umedpt_hf.evaluation.encoders import load_encoder, load_encoder_model
from umedpt_hf.evaluation.features import extract_features, image_features
from umedpt_hf.image_processing_umedpt import UMedPTImageProcessor


@pytest.fixture(scope="module")
def processor():
    return UMedPTImageProcessor(size={"height": IMAGE_SIDE, "width": IMAGE_SIDE})


@pytest.fixture(scope="module")
def dataset():
    return bar_dataset(10, seed=0)


def test_umedpt_features_match_get_image_features(tiny_checkpoint, processor, dataset):
    encoder = load_encoder(tiny_checkpoint)
    assert type(encoder.model).__name__ == "UMedPTModel" and encoder.processor is not None
    features = extract_features(encoder.model, dataset, processor=processor, batch_size=4, progress=False)
    assert features.features.shape == (10, encoder.model.config.hidden_size)
    assert features.labels.tolist() == dataset["label"]
    pixel_values = processor(list(dataset["image"]), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        expected = encoder.model.get_image_features(pixel_values).pooler_output.numpy()
    np.testing.assert_allclose(features.features, expected, rtol=1e-4, atol=1e-5)


def test_random_init_has_the_architecture_but_other_weights(tiny_checkpoint):
    trained = load_encoder_model(tiny_checkpoint)
    random = load_encoder_model(tiny_checkpoint, random_init=True, seed=1)
    assert trained.state_dict().keys() == random.state_dict().keys()
    assert any(not torch.equal(trained.state_dict()[k], random.state_dict()[k]) for k in trained.state_dict())


def test_cache_is_reused_and_keyed_by_the_weights(tmp_path, tiny_checkpoint, processor, dataset):
    model = load_encoder_model(tiny_checkpoint)
    first = extract_features(model, dataset, processor=processor, cache_dir=tmp_path, progress=False)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1
    # a hit reads the file: overwrite it with a marker and get the marker back
    np.savez(files[0], features=np.full_like(first.features, 7.0), labels=first.labels)
    again = extract_features(model, dataset, processor=processor, cache_dir=tmp_path, progress=False)
    assert np.all(again.features == 7.0)
    other = load_encoder_model(tiny_checkpoint, random_init=True)
    extract_features(other, dataset, processor=processor, cache_dir=tmp_path, progress=False)
    extract_features(model, dataset.select(range(5)), processor=processor, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.glob("*.npz"))) == 3  # other weights, other data: new entries


def test_dataloader_of_batches(tiny_checkpoint, processor, dataset):
    model = load_encoder_model(tiny_checkpoint)
    pixel_values = processor(list(dataset["image"]), return_tensors="pt")["pixel_values"]
    loader = [{"pixel_values": pixel_values[:6], "labels": torch.tensor(dataset["label"][:6])},
              {"pixel_values": pixel_values[6:], "labels": torch.tensor(dataset["label"][6:])}]  # fmt: skip
    features = extract_features(model, loader, progress=False)
    direct = extract_features(model, dataset, processor=processor, progress=False)
    np.testing.assert_allclose(features.features, direct.features, rtol=1e-4, atol=1e-5)
    assert features.labels.tolist() == dataset["label"]


@pytest.mark.parametrize(
    "model",
    [
        Swinv2Model(Swinv2Config(embed_dim=16, depths=[1, 1], num_heads=[1, 2], window_size=4, image_size=32)),
        ResNetModel(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_channels=3)),
    ],
    ids=["swinv2", "resnet"],
)
def test_any_transformers_image_model_saved_and_loaded(tmp_path, model, processor, dataset):
    model.save_pretrained(tmp_path)
    encoder = load_encoder(tmp_path)
    assert encoder.processor is None  # none saved: the caller passes the UMedPT one
    features = extract_features(encoder.model, dataset, processor=processor, progress=False)  # grey -> 3 channels
    assert features.features.shape[0] == 10 and features.features.ndim == 2
    assert image_features(encoder.model, torch.zeros(2, 1, 32, 32)).shape[0] == 2


def test_bad_checkpoints(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_encoder_model(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        load_encoder_model(tmp_path / "empty")
    BertModel(
        BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)
    ).save_pretrained(tmp_path / "bert")
    with pytest.raises(ValueError, match="neither a UMedPT nor an image backbone"):
        load_encoder_model(tmp_path / "bert")


def test_bad_data(tiny_checkpoint, processor, dataset):
    model = load_encoder_model(tiny_checkpoint)
    with pytest.raises(ValueError, match="empty"):
        extract_features(model, dataset.select([]), processor=processor)
    with pytest.raises(ValueError, match="image processor"):
        extract_features(model, dataset)
    with pytest.raises(ValueError, match="label column"):
        extract_features(model, dataset, processor=processor, label_column="diagnosis")
