"""A converted folder loads with `trust_remote_code=True` in a process where umedpt_hf is not importable, and gives
the same pyramid and image vector as with the package."""

from __future__ import annotations

import textwrap

import torch
from transformers import AutoModel
from umedpt_test_utils import run_python_script

REMOTE_CODE_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path = [p for p in sys.path if not p.endswith("src")]
    import importlib.util
    assert importlib.util.find_spec("umedpt_hf") is None, "umedpt_hf must not be importable here"
    import torch
    from transformers import AutoImageProcessor, AutoModel
    model = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
    processor = AutoImageProcessor.from_pretrained(sys.argv[1], trust_remote_code=True)
    assert processor.do_normalize is False and processor.size["height"] == 224
    pixel_values = torch.load(sys.argv[2])
    with torch.no_grad():
        output = model(pixel_values)
    torch.save({"pooled": output.pooler_output, "maps": list(output.feature_maps)}, sys.argv[3])
    print(type(model).__module__)
    """
)


def test_converted_folder_loads_without_the_package(converted_standin, tmp_path, tv_io):
    pixel_values = tv_io["input_224"]
    torch.save(pixel_values, tmp_path / "in.pt")
    result = run_python_script(
        REMOTE_CODE_SCRIPT,
        converted_standin,
        tmp_path / "in.pt",
        tmp_path / "out.pt",
        folder=tmp_path,
        without_package=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "transformers_modules" in result.stdout
    remote = torch.load(tmp_path / "out.pt")
    local = AutoModel.from_pretrained(converted_standin).eval()
    with torch.no_grad():
        output = local(pixel_values)
    assert torch.equal(remote["pooled"], output.pooler_output)
    for stage, (produced, expected) in enumerate(zip(remote["maps"], output.feature_maps), start=1):
        assert torch.equal(produced, expected)
        assert float((produced - tv_io[f"stage{stage}_224"]).abs().max()) <= 1e-5
