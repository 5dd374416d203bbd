"""The model card of a converted folder: source file and SHA-256, the source's licence (never ours), parity figures
and the input sizes where parity holds, and what was and was not converted. Marked `umedpt_converted: true` so that
`umedpt push` publishes it as it is."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData

from . import parity

SOURCE_KINDS = {
    "umedpt_export": "the UMedPT authors' published encoder export (a zip of pickled blocks, read without running it)",
    "torchvision_state_dict": "a torchvision Swin-V2 state_dict",
    "transformers_swinv2": "a transformers Swin-V2 checkpoint",
}
CARD_TAGS = ["medical-imaging", "umedpt", "image-feature-extraction", "swinv2", "converted"]
UNVERIFIED_EXPORT_NOTE = (
    "**Checked offline against a structural stand-in only.** When this converter was written, the member list of "
    "the real published export (e.g. 1.0.4) and whether its squeezer projects to another width (a 1×1 conv) could "
    "not be verified; the converter infers both from the file it reads, refuses what it cannot account for, and "
    "lists every member and key of this file above and in `conversion_report.json`."
)


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _parity(report: dict) -> tuple[str, str, str, str]:
    weights = report["parity"]["weights"]
    rows = [f"| weights: every converted tensor vs the source | max abs diff {weights['max_abs_diff']} over "
            f"{weights['tensors']} tensors (bit-identical: {weights['bit_identical']}) |"]  # fmt: skip
    features = report["parity"]["features"]
    sizes = report["parity"]["input_sizes"]
    if features["reference"] == "transformers":
        text = "The source is a transformers Swin-V2: the encoder runs the same transformers code on the same tensors."
        return text, "\n".join(rows), "every size the source accepts", ""
    text = (
        "The encoder's four pyramid maps (strides 4-32, no final norm) equal those of torchvision's Swin-V2 on the "
        f"same tensors. Measured by umedpt_hf's tests against {parity.REFERENCE}; the tests fail above "
        f"{parity.TOLERANCE:g}."
    )
    rows += [
        f"| features at {size}×{size} px | max abs diff {diff} |" for size, diff in features["max_abs_diff"].items()
    ]
    note = parity.sizes_note(sizes, features["size_step"], features["native_image_size"])
    return text, "\n".join(rows), ", ".join(f"{side}×{side}" for side in sizes), note


def render_converted_card(report: dict, model_name: str, template_dir: Path) -> ModelCard:
    """Render `hub_cards/converted_modelcard_template.md` for a conversion report (see `convert.py`)."""
    from umedpt_hf import __version__

    source, licence, model = report["source"], report["licence"], report["model"]
    card_data = ModelCardData(
        license=licence["id"],
        license_name=licence.get("name") if licence["id"] == "other" else None,
        library_name="transformers",
        pipeline_tag="image-feature-extraction",
        tags=CARD_TAGS,
        model_name=model_name,
        umedpt_converted=True,
        umedpt_source_sha256=source["sha256"],
    )
    parity_text, parity_rows, parity_sizes, parity_note = _parity(report)
    rows = [[item["block"], item["tensors"], f"{item['parameters']:,}", item["into"]] for item in report["converted"]]
    if report["initialised"]:
        names = ", ".join(f"`{item['name']}`" for item in report["initialised"])
        rows.append(["(not in the source)", len(report["initialised"]), "–", f"initialised by default: {names}"])
    converted = _table(["block", "tensors", "parameters", "into"], rows)
    not_converted = report["not_converted"]
    dropped = report["dropped"]
    reasons: dict[str, int] = {}
    for reason in dropped.values():
        reasons[reason] = reasons.get(reason, 0) + 1
    return ModelCard.from_template(
        card_data,
        template_path=str(template_dir / "converted_modelcard_template.md"),
        model_name=model_name,
        package_version=__version__,
        source_description=SOURCE_KINDS[source["kind"]],
        source_file=source["file"],
        source_sha256=source["sha256"] or "– (a folder: see its files)",
        source_kind=source["kind"],
        encoder=model["encoder"],
        parameters=f"{model['parameters'] / 1e6:.2f} M",
        hidden_size=model["hidden_size"],
        input_description=report["input_convention"]["text"],
        licence_name=licence.get("name", licence["id"]),
        licence_text=licence["text"],
        parity_text=parity_text,
        parity_rows=parity_rows,
        parity_sizes=parity_sizes,
        parity_sizes_note=parity_note,
        converted_table=converted,
        dropped_summary="; ".join(f"{count} × {reason}" for reason, count in reasons.items()) or "nothing",
        not_converted_table=_table(["name", "reason"], [[f"`{i['name']}`", i["reason"]] for i in not_converted])
        if not_converted
        else "nothing: every tensor of the source was converted or dropped as above.",
        unverified_note=UNVERIFIED_EXPORT_NOTE if source["kind"] == "umedpt_export" else "",
        convention=report["input_convention"]["text"],
    )
