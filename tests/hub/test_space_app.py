"""The Space demo answers gradio_client calls for every task type, from a repo id on the loopback Hub or a folder; masks
and boxes come back as labelled annotations (the legend), and the demo opens with an example of each modality."""

from __future__ import annotations

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from umedpt_hf.hub import push_to_hub


def _is_grey(path: str) -> bool:
    array = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return bool((array[..., 0] == array[..., 1]).all() and (array[..., 1] == array[..., 2]).all())


@pytest.fixture
def served_demo(loopback_hub, tiny_model_dir, space_app):
    """The demo serving the tiny model by repo id (downloaded from the loopback Hub), launched in-process."""
    push_to_hub(tiny_model_dir, "loopback-user/demo-model")
    demo = space_app.build_demo("loopback-user/demo-model")
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    yield demo
    demo.close()


def test_every_task_type_answers_through_gradio_client(served_demo, hub_tasks, demo_inputs):
    files = demo_inputs
    client = Client(served_demo.local_url, verbose=False)
    hidden = served_demo.umedpt.model.config.hidden_size

    def call(file, task, modality="auto", slice_index=0, threshold=0.0):
        choice = f"{task} ({hub_tasks[task]['type']})"
        return client.predict(handle_file(file), choice, modality, "soft_tissue", slice_index, threshold,
                              api_name="/predict")  # fmt: skip

    scores, result, embedding, info = call(files["png"], "chest", modality="xray")
    assert {c["label"] for c in scores["confidences"]} == {"normal", "effusion", "nodule"}
    assert sum(c["confidence"] for c in scores["confidences"]) == pytest.approx(1, abs=1e-4)
    assert Image.open(result["image"]).size == Image.open(files["png"]).size  # shown at the original size
    assert result["annotations"] == []  # classification: nothing drawn
    assert embedding["dimension"] == hidden == len(embedding["embedding"])

    scores, _, _, info = call(files["jpeg"], "findings", modality="histology")
    assert {c["label"] for c in scores["confidences"]} == {"opacity", "device"}
    assert all(0 < c["confidence"] < 1 for c in scores["confidences"])
    assert "**findings** (multilabel)" in info

    scores, result, _, info = call(files["nifti"], "tissue", slice_index=60)
    assert {c["label"] for c in scores["confidences"]} == {"background", "grey", "white"}
    assert sum(c["confidence"] for c in scores["confidences"]) == pytest.approx(1, abs=1e-4)  # pixel fractions
    assert "slice 60" in info and _is_grey(result["image"])  # the slice itself; the classes are separate layers
    drawn = {a["label"] for a in result["annotations"]}
    assert drawn and drawn <= {"grey", "white"}  # class names, background not drawn
    shown = {c["label"] for c in scores["confidences"] if c["confidence"] > 0} - {"background"}
    assert drawn == shown
    for annotation in result["annotations"]:  # one mask per class, the size of the image
        assert Image.open(annotation["image"]).size == Image.open(result["image"]).size

    _, grey, _, _ = call(files["dicom"], "chest")
    assert _is_grey(grey["image"]) and Image.open(grey["image"]).size == (128, 128)
    scores, boxes, _, info = call(files["dicom"], "nuclei", threshold=0.0)
    assert "DICOM CT" in info and "window soft_tissue" in info and "box(es)" in info
    assert [c["label"] for c in scores["confidences"]] == ["nucleus"]
    assert [a["label"] for a in boxes["annotations"]] == ["nucleus"]  # one layer (and legend entry) per class


def test_the_demo_opens_with_an_example_of_each_modality(tiny_model_dir, space_app, monkeypatch, tmp_path):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    examples = space_app.build_examples(tmp_path / "examples")
    modalities = {modality for _, _, modality, _ in examples}
    assert {"xray", "ct", "mri", "microscopy", "histology"} <= modalities
    for _, path, modality, slice_index in examples:  # every example is a real image the demo reads
        array, hint, _ = space_app.read_image_file(path, slice_index)
        assert array.ndim in (2, 3) and min(array.shape[:2]) >= 64 and float(array.std()) > 0, path
        assert hint in (None, modality) or modality == "xray"
    demo = space_app.build_demo(str(tiny_model_dir))
    assert demo.umedpt.choice_for("mri").startswith("tissue") and demo.umedpt.choice_for("ct").startswith("chest")
    assert set(demo.umedpt.color_map()) == {"normal", "effusion", "nodule", "opacity", "device", "background", "grey",
                                            "white", "nucleus"}  # fmt: skip


def test_demo_from_a_local_folder_and_a_bad_upload(tiny_model_dir, space_app, monkeypatch, tmp_path):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    monkeypatch.setenv("UMEDPT_MODEL", str(tiny_model_dir))
    demo = space_app.build_demo()  # model from $UMEDPT_MODEL
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        broken = tmp_path / "broken.dcm"
        broken.write_bytes(b"\0" * 128 + b"DICM" + b"garbage")
        with pytest.raises(Exception, match=r"could not read broken\.dcm as DICOM"):
            client.predict(handle_file(str(broken)), "chest (classification)", "auto", "soft_tissue", 0, 0.3,
                           api_name="/predict")  # fmt: skip
        image = tmp_path / "ramp.png"
        Image.fromarray(np.tile(np.arange(64, dtype=np.uint8) * 4, (64, 1))).save(image)
        scores, _, embedding, _ = client.predict(handle_file(str(image)), "chest (classification)", "xray",
                                                 "soft_tissue", 0, 0.3, api_name="/predict")  # fmt: skip
        assert scores["label"] in {"normal", "effusion", "nodule"} and embedding["dimension"] > 0
    finally:
        demo.close()
