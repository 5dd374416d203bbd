"""The Space demo in a real browser (Debian's chromium, headless, driven by Playwright): every task type answers."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip


def test_demo_answers_every_task_type_in_headless_chromium(
    tiny_model_dir, space_app, hub_tasks, demo_inputs, monkeypatch, tmp_path
):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    files = demo_inputs
    runs = [("chest", files["dicom"], None), ("findings", files["jpeg"], None), ("tissue", files["nifti"], 60),
            ("nuclei", files["png"], None)]  # fmt: skip
    ARTIFACTS.mkdir(exist_ok=True)
    demo = space_app.build_demo(str(tiny_model_dir))
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, theme=space_app.THEME)
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            for task, file, slice_index in runs:
                kind = hub_tasks[task]["type"]
                page.goto(demo.local_url)
                page.wait_for_selector("input[type=file]", state="attached")
                page.set_input_files("input[type=file]", file)
                page.get_by_label("task").click()
                page.get_by_role("option", name=f"{task} ({kind})").click()
                if slice_index is not None:
                    page.get_by_label("slice (NIfTI / multi-frame)").fill(str(slice_index))
                if kind == "detection":
                    threshold = page.get_by_label("number input for detection threshold")
                    threshold.fill("0")
                    threshold.press("Enter")
                page.get_by_role("button", name="Run").click()
                answer = page.get_by_text(re.compile(rf"{task} \({kind}\): "))
                answer.wait_for(timeout=60_000)
                text = answer.inner_text()
                for label in hub_tasks[task]["labels"]:
                    assert page.get_by_text(label, exact=True).count() >= 1, (task, label)
                if kind == "detection":
                    assert "box(es) above 0.00" in text
                if slice_index is not None:
                    assert f"slice {slice_index}" in text
                assert page.get_by_text('"dimension"').count() == 1
                page.screenshot(path=str(ARTIFACTS / f"space_demo_{kind}.png"), full_page=True)
            browser.close()
    finally:
        demo.close()
    assert all((ARTIFACTS / f"space_demo_{hub_tasks[t]['type']}.png").stat().st_size > 10_000 for t, _, _ in runs)
