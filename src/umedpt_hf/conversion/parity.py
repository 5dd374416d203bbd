"""Measured parity between converted encoders and torchvision's Swin-V2, as stated in converted model cards.

The figures are measured by `tests/conversion/test_parity.py` on the reference fixture (a small Swin-V2 with
swin_v2_t's structure; its inputs and pyramids were produced by torchvision 0.28's own Swin-V2 code); the test fails
if the package stops reproducing them. A converter cannot run torchvision itself (it must not import it).
"""

from __future__ import annotations

# max |Δ| over the four pyramid maps, per square input side (pixels)
FIXTURE_MAX_ABS_DIFF = {256: 0.0, 224: 0.0, 192: 0.0}
TOLERANCE = 1e-5
REFERENCE = "torchvision 0.28's Swin-V2 code on CPU (reference fixture: embed 16, depths 2-2-2-2, window 8, float32)"


def measured_sizes() -> list[int]:
    return sorted(FIXTURE_MAX_ABS_DIFF)


def sizes_note(parity_sizes: list[int], step: int, native: int) -> str:
    """Which of the parity sizes were measured and which follow from the window rule."""
    measured = [size for size in parity_sizes if size in FIXTURE_MAX_ABS_DIFF]
    derived = [size for size in parity_sizes if size not in FIXTURE_MAX_ABS_DIFF]
    text = f"Measured at {', '.join(map(str, measured))} px" if measured else "Not measured at these sizes"
    if derived:
        text += f"; {', '.join(map(str, derived))} px follow from the same window rule (not measured)"
    return (
        text + ". Other sizes run but do not reproduce torchvision's features: transformers fixes each stage's "
        "window and shift when the model is built (from `config.image_size`), torchvision pads at run time, so "
        f"sides that are not multiples of {step}, larger than {native}, or non-square with a side outside this set "
        "differ. The saved processor resizes to a parity size."
    )
