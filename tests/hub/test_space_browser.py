"""The Space demo in a real browser (Debian's chromium, headless, driven by Playwright): it opens with clickable
examples of each modality, every task type answers, and masks and boxes carry a legend of their class names.
Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip


def _run_and_wait(page, task: str, kind: str) -> str:
    page.get_by_role("button", name="Run").click()
    answer = page.get_by_text(re.compile(rf"{task} \({kind}\): "))
    answer.wait_for(timeout=60_000)
    return answer.inner_text()


def _legend(page) -> list[str]:
    return [text.strip() for text in page.locator(".legend-item").all_inner_texts()]


def test_examples_legend_and_every_task_type_in_headless_chromium(
    tiny_model_dir, space_app, hub_tasks, demo_inputs, monkeypatch, tmp_path
):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    ARTIFACTS.mkdir(exist_ok=True)
    demo = space_app.build_demo(str(tiny_model_dir))
    examples = {modality: label for label, _, modality, _ in demo.umedpt_examples}
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, theme=space_app.THEME)
    shots = []

    def shot(name: str) -> None:
        shots.append(ARTIFACTS / f"space_demo_{name}.png")
        page.screenshot(path=str(shots[-1]), full_page=True)

    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(demo.local_url)
            # the demo opens with one clickable example per modality
            for label in examples.values():
                page.get_by_role("button", name=label).wait_for(timeout=30_000)
            assert {"xray", "ct", "mri", "microscopy", "histology"} <= set(examples)
            shot("examples")

            # multilabel, from an uploaded file (before an example replaces the upload field)
            page.set_input_files("input[type=file]", demo_inputs["jpeg"])
            page.get_by_label("task").click()
            page.get_by_role("option", name="findings (multilabel)").click()
            _run_and_wait(page, "findings", "multilabel")
            for label in hub_tasks["findings"]["labels"]:
                assert page.get_by_text(label, exact=True).count() >= 1, label
            assert page.get_by_text('"dimension"').count() == 1
            shot("multilabel")

            # segmentation: the MRI example fills the inputs (task, slice); the mask layers are named in a legend
            page.get_by_role("button", name=examples["mri"]).click()
            page.wait_for_function("document.querySelector('input[aria-label=\"task\"]').value.startsWith('tissue')")
            assert page.get_by_label("slice (NIfTI / multi-frame)").input_value() == "45"
            text = _run_and_wait(page, "tissue", "segmentation")
            assert "NIfTI" in text and "slice 45" in text
            legend = _legend(page)
            assert legend and set(legend) <= {"grey", "white"}, legend  # class names; background is not drawn
            page.locator(".legend-item").first.hover()  # hovering a legend entry highlights that class
            shot("segmentation_legend")

            # detection: the microscopy example; every box is labelled with its class
            page.get_by_role("button", name=examples["microscopy"]).click()
            page.wait_for_function("document.querySelector('input[aria-label=\"task\"]').value.startsWith('nuclei')")
            threshold = page.get_by_label("number input for detection threshold")
            threshold.fill("0")
            threshold.press("Enter")
            text = _run_and_wait(page, "nuclei", "detection")
            assert "box(es) above 0.00" in text and _legend(page) == ["nucleus"]
            shot("detection_legend")

            # classification: the X-ray DICOM example; class scores and no overlay
            page.get_by_role("button", name=examples["xray"]).click()
            page.wait_for_function("document.querySelector('input[aria-label=\"task\"]').value.startsWith('chest')")
            text = _run_and_wait(page, "chest", "classification")
            assert "DICOM CR" in text and _legend(page) == []
            for label in hub_tasks["chest"]["labels"]:
                assert page.get_by_text(label, exact=True).count() >= 1, label
            shot("classification")

            browser.close()
    finally:
        demo.close()
    assert all(path.stat().st_size > 10_000 for path in shots)
