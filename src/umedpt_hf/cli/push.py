"""`umedpt push MODEL_DIR REPO_ID`: publish a saved model with its processor, card and results in one Hub commit."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "push",
        help="push a saved UMedPT model (weights, remote code, processor, model card, plot) to the Hub in one commit",
        description="Push a folder written by save_pretrained to the Hub (HF_ENDPOINT, HF_TOKEN are honoured). "
        "Nothing is uploaded unless the repo ids are valid, every safetensors file is complete and the folder loads "
        "with from_pretrained.",
    )
    parser.add_argument("model_dir", help="folder with config.json, model.safetensors and preprocessor_config.json")
    parser.add_argument("repo_id", help="namespace/name of the model repo (created if missing)")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--revision", default=None, help="branch to commit to (created if missing; default main)")
    parser.add_argument("--eval-json", default=None, help="data-scarcity results JSON (table, plot and model-index)")
    parser.add_argument("--plot", default=None, help="PNG to show instead of the plot drawn from --eval-json")
    parser.add_argument("--license", default="apache-2.0", help="licence of the weights (card metadata)")
    parser.add_argument("--encoder-name", default=None, help="which encoder of --eval-json is this model")
    parser.add_argument("--training-data", default=None, help="the task database (folder or its tasks.json) used")
    parser.add_argument("--commit-message", default="Upload UMedPT model, processor and model card")
    parser.add_argument("--space", default=None, metavar="SPACE_ID", help="also push the gradio demo to this Space")
    parser.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or the saved login)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from umedpt_hf.hub.push import push_to_hub

    commit = push_to_hub(
        args.model_dir,
        args.repo_id,
        token=args.token,
        private=args.private,
        revision=args.revision,
        commit_message=args.commit_message,
        eval_json=args.eval_json,
        plot=args.plot,
        license=args.license,
        encoder_name=args.encoder_name,
        training_data=args.training_data,
        space_id=args.space,
    )
    print(f"pushed {args.model_dir} to {args.repo_id}: {commit.commit_url}")
    if args.space:
        print(f"pushed the demo serving {args.repo_id} to the Space {args.space}")
    return 0
