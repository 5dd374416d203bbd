"""`umedpt convert SRC --out DIR` (the authors' export, a torchvision Swin-V2 state_dict or a transformers Swin-V2
folder -> a UMedPT folder) and `umedpt convert DIR --to timm --out TIMM_DIR` (a UMedPT folder -> timm's layout)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert the published UMedPT weights (or a Swin-V2 checkpoint) into a UMedPT folder, or export to timm",
        description="Read a checkpoint without executing any pickled code and write a save_pretrained folder "
        "(safetensors, config with auto_map, processor, model card, conversion_report.json). Never overwrites "
        "files it did not write.",
    )
    parser.add_argument(
        "source",
        help="encoder-1.0.4.pt.zip (the authors' export), a torchvision Swin-V2 state_dict (.pth/.pt/.safetensors), "
        "a transformers Swin-V2 folder; with --to timm: a UMedPT folder",
    )
    parser.add_argument("--out", required=True, help="output folder (new or empty)")
    parser.add_argument("--to", choices=("transformers", "timm"), default="transformers", help="output layout")
    parser.add_argument(
        "--image-size", type=int, default=None, help="processor side (default: the source's, 224 for UMedPT)"
    )
    parser.add_argument(
        "--stand-in-module",
        action="append",
        default=[],
        metavar="MODULE",
        help="also give inert stand-ins to classes of this module (if the export names its framework differently); "
        "nothing is imported from it",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from umedpt_hf.conversion.stand_ins import check_stand_in_roots

    if args.to == "timm":
        from umedpt_hf.conversion.timm_export import export_timm

        out = export_timm(args.source, args.out)
        print(f"exported the encoder of {args.source} in timm's SwinTransformerV2 layout to {out}")
        return 0
    from umedpt_hf.conversion.convert import convert_checkpoint

    result = convert_checkpoint(
        args.source, args.out, stand_in_modules=check_stand_in_roots(args.stand_in_module), image_size=args.image_size
    )
    report = result.report
    for item in report["converted"]:
        print(
            f"converted {item['block']}: {item['tensors']} tensors, {item['parameters']:,} parameters -> {item['into']}"
        )
    for item in report["initialised"]:
        print(f"initialised (not in the source): {item['name']}")
    for item in report["not_converted"]:
        print(f"not converted: {item['name']} ({item['reason']})")
    print(f"dropped on purpose: {len(report['dropped'])} entries (see conversion_report.json)")
    sizes = report["parity"]["input_sizes"]
    if sizes:
        print(f"features equal the source's for square inputs of side {', '.join(map(str, sizes))}")
        side = report["input_convention"]["image_size"]
        if side not in sizes:
            print(f"note: the processor resizes to {side} px, where the features differ from the source's")
    print(f"wrote {result.path} (licence: {report['licence'].get('name', report['licence']['id'])})")
    return 0
