"""Feature parity of converted Swin-V2 encoders with torchvision's, per input size and stage (max |Δ|).

    python benchmarks/conversion_parity.py [--out FILE] [--device cpu|cuda]

1. The reference fixture (tests/conversion/data: a small Swin-V2 whose inputs and pyramids torchvision 0.28's own code
   produced) converted with `umedpt_hf.conversion`, at 192, 224 and 256 px; and, for contrast, the same tensors in a
   transformers model built for `image_size=224` (transformers' default), which fixes other windows.
2. Where torchvision imports (a GPU machine): torchvision's full-size swin_v2_t with random (perturbed) weights,
   converted, at square sides 128-320, a non-multiple of 32 and a non-square input.
Writes JSON (default benchmarks/results/conversion_parity.json).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file

from umedpt_hf.conversion.convert import build_model, load_source_into
from umedpt_hf.conversion.sources import read_source

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "conversion" / "data"
FULL_SIZE_INPUTS = [(128, 128), (160, 160), (192, 192), (224, 224), (256, 256), (288, 288), (320, 320), (200, 200),
                    (224, 288)]  # fmt: skip


def stage_diffs(produced, expected) -> list[float]:
    return [float((a.double() - b.double()).abs().max()) for a, b in zip(produced, expected)]


def fixture_parity() -> dict:
    io = load_file(str(FIXTURE / "tv_swinv2_tiny_io.safetensors"))
    results = {}
    for image_size in (256, 224):
        source = read_source(FIXTURE / "tv_swinv2_tiny.safetensors")
        source.backbone_config = {**source.backbone_config, "image_size": image_size}
        model = build_model(source)
        load_source_into(model, source)
        rows = {}
        for side in (256, 224, 192):
            with torch.no_grad():
                maps = model(io[f"input_{side}"]).feature_maps
            rows[str(side)] = stage_diffs(maps, [io[f"stage{stage}_{side}"] for stage in range(1, 5)])
        results[f"config_image_size_{image_size}"] = rows
    return results


def torchvision_pyramid(model, pixel_values):
    maps, hidden = [], pixel_values
    for index, block in enumerate(model.features):
        hidden = block(hidden)
        if index % 2 == 1:
            maps.append(hidden.permute(0, 3, 1, 2))
    return maps


def full_size_parity(device: str) -> dict:
    try:
        import torchvision
    except Exception as error:  # not installed, or a build that does not match torch
        return {"skipped": f"torchvision does not import ({type(error).__name__}: {error})"[:300]}
    from transformers import AutoModel

    from umedpt_hf.conversion import convert_checkpoint

    torch.manual_seed(0)
    reference = torchvision.models.swin_v2_t(weights=None).eval()
    with torch.no_grad():
        for parameter in reference.parameters():
            parameter.add_(0.02 * torch.randn_like(parameter))
    with tempfile.TemporaryDirectory() as scratch:
        torch.save(reference.state_dict(), Path(scratch) / "swin_v2_t.pth")
        folder = convert_checkpoint(Path(scratch) / "swin_v2_t.pth", Path(scratch) / "converted").path
        model = AutoModel.from_pretrained(folder).eval().to(device)
    reference = reference.to(device)
    rows = {}
    for height, width in FULL_SIZE_INPUTS:
        pixel_values = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(height * width))
        pixel_values = pixel_values.to(device)
        with torch.no_grad():
            rows[f"{height}x{width}"] = stage_diffs(model(pixel_values).feature_maps,
                                                    torchvision_pyramid(reference, pixel_values))  # fmt: skip
    return {"torchvision": torchvision.__version__, "max_abs_diff_per_stage": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "conversion_parity.json"))
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    args = parser.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    result = {
        "machine": {"platform": platform.platform(), "torch": torch.__version__, "device": args.device},
        "fixture_max_abs_diff_per_stage": fixture_parity(),
        "full_size_swin_v2_t": full_size_parity(args.device),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
