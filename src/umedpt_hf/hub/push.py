"""Publish a saved UMedPT model (weights, config + remote code, processor, model card, plot) in one Hub commit."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from huggingface_hub import (
    CommitInfo,
    CommitOperationAdd,
    CommitOperationDelete,
    HfApi,
    ModelCard,
    SpaceCard,
    SpaceCardData,
)
from huggingface_hub import constants as hub_constants
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

from umedpt_hf.hub.card import hub_cards_dir, render_model_card
from umedpt_hf.hub.model_folder import ModelFolder
from umedpt_hf.hub.preflight import check_loads, check_repo_id, check_weight_files
from umedpt_hf.hub.results import load_scarcity_results, plot_scarcity

try:  # the HTTP client under huggingface_hub: httpx2 (huggingface_hub >= 2), httpx before
    from httpx2 import HTTPError as _TransportError
except ImportError:  # pragma: no cover
    from httpx import HTTPError as _TransportError

PLOT_PATH_IN_REPO = "data_scarcity.png"
RESULTS_PATH_IN_REPO = "evaluation/data_scarcity.json"
# files of an earlier push that a new push replaces (stale shards or modules must not survive)
_MANAGED_SUFFIXES = (".safetensors", ".safetensors.index.json", ".py")


def _api(token: str | None) -> HfApi:
    """An HfApi that honours HF_ENDPOINT and HF_TOKEN as they are *now* (not when huggingface_hub was imported)."""
    if hub_constants.is_offline_mode():
        raise ValueError(
            "HF_HUB_OFFLINE is set: unset it to push (to push to a Hub on this machine, set HF_ENDPOINT to it)"
        )
    return HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=token or os.environ.get("HF_TOKEN") or None)


@contextlib.contextmanager
def _clear_hub_errors(api: HfApi, repo_id: str) -> Iterator[None]:
    """Turn the client's HTTP and connection errors into one-line ValueErrors naming the endpoint and the repo."""
    try:
        yield
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else "?"
        summary = " ".join(str(error).split())[:300]
        raise ValueError(
            f"the Hub at {api.endpoint} refused the push to {repo_id} (HTTP {status}): {summary}"
        ) from error
    except (_TransportError, OfflineModeIsEnabled, ConnectionError) as error:
        if "xet" in str(error).lower():  # hf_xet reports a Hub without Xet storage as a connection error
            raise ValueError(
                f"the Hub at {api.endpoint} did not accept the Xet upload to {repo_id} ({error}); for a Hub without "
                "Xet storage set HF_HUB_DISABLE_XET=1"
            ) from error
        raise ValueError(f"cannot reach the Hub at {api.endpoint} (set HF_ENDPOINT?): {error}") from error
    except RuntimeError as error:  # an LFS upload that failed: the client wraps the HTTP error
        if not isinstance(error.__cause__, (HfHubHTTPError, _TransportError)):
            raise
        raise ValueError(f"the Hub at {api.endpoint} refused an upload to {repo_id}: {error.__cause__}") from error


def _prepare_repo(api: HfApi, repo_id: str, repo_type: str, private: bool, revision: str | None, **kwargs) -> None:
    api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True, **kwargs)
    if revision and revision != "main":
        api.create_branch(repo_id, branch=revision, repo_type=repo_type, exist_ok=True)


def _converted_card(model_dir: Path) -> bool:
    """True for a folder written by `umedpt convert`: its README.md is marked `umedpt_converted: true`."""
    readme, report = model_dir / "README.md", model_dir / "conversion_report.json"
    if not (readme.is_file() and report.is_file()):
        return False
    return ModelCard.load(readme).data.to_dict().get("umedpt_converted") is True


def check_before_upload(model_dir: str | Path, repo_id: str, space_id: str | None = None) -> ModelFolder:
    """Everything that can be checked before an upload, so that a bad folder or name never reaches the Hub: the repo
    ids (model and Space), the folder's files, every safetensors file complete, and the model loading with
    ``from_pretrained``. Returns the opened folder; raises ValueError / FileNotFoundError naming the problem."""
    check_repo_id(repo_id, "model repo id")
    if space_id is not None:
        check_repo_id(space_id, "Space id")
    folder = ModelFolder.open(model_dir)
    check_weight_files(folder.path, folder.weight_files)
    check_loads(folder.path, folder.architecture)
    return folder


def _model_card(folder: ModelFolder, repo_id: str, **card_fields) -> bytes | Path:
    """The README.md of the model repo: the card `umedpt convert` wrote (source, SHA-256, source licence) as it is,
    else one rendered from hub_cards/modelcard_template.md."""
    if _converted_card(folder.path):
        return folder.path / "README.md"
    return str(render_model_card(folder.path, repo_id, **card_fields)).encode()


def push_to_hub(
    model_dir: str | Path,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    revision: str | None = None,
    commit_message: str = "Upload UMedPT model, processor and model card",
    eval_json: str | Path | dict | list | None = None,
    plot: str | Path | None = None,
    license: str = "apache-2.0",
    encoder_name: str | None = None,
    training_data: str | Path | dict | list | None = None,
    space_id: str | None = None,
) -> CommitInfo:
    """Push a folder written by ``save_pretrained`` (model and image processor) to the Hub in ONE commit.

    The commit holds the safetensors weights, config.json with its ``auto_map``, the remote-code modules (so
    ``AutoModel.from_pretrained(repo_id, trust_remote_code=True)`` works without ``umedpt_hf``), the
    preprocessor_config.json (with its own ``auto_map``), the rendered model card (README.md) and, with ``eval_json``,
    the data-scarcity results and their plot (``plot``, or one drawn from the results).

    Args:
        model_dir: the saved model folder.
        repo_id: ``namespace/name`` on the Hub (created if missing).
        token: Hub token; default ``HF_TOKEN`` or the saved login. The endpoint is ``HF_ENDPOINT`` (default hf.co).
        private: create the repo private (ignored when it exists).
        revision: branch to commit to (created from main if missing); default main.
        commit_message: summary line of the commit.
        eval_json: data-scarcity evaluation JSON (path or parsed), rendered as table, plot and ``model-index``.
        plot: a PNG to show instead of the plot drawn from ``eval_json``.
        license: licence of the weights in the card's metadata.
        encoder_name: which encoder of the evaluation JSON is this model (default: the one named like "umedpt").
        training_data: the task database's tasks.json (or its folder) the model was trained on: the card lists its
            sources and their licences (default: a tasks.json inside ``model_dir``, else the config's tasks).
        space_id: also push the gradio demo serving this model to this Space (``push_space``), after the model.

    Nothing is uploaded unless everything checks out first (:func:`check_before_upload`: repo ids, complete
    safetensors files, a folder that loads with ``from_pretrained``, the evaluation JSON and the plot).

    Returns:
        The ``CommitInfo`` of the model commit (``commit_url``, ``oid``, ``repo_url``).
    """
    folder = check_before_upload(model_dir, repo_id, space_id)
    if plot is not None and not Path(plot).is_file():
        raise FileNotFoundError(f"plot not found: {plot}")
    results = load_scarcity_results(eval_json) if eval_json is not None else None
    files = folder.files_to_upload()
    with tempfile.TemporaryDirectory(prefix="umedpt-push-") as scratch:
        if results:
            files[RESULTS_PATH_IN_REPO] = (
                json.dumps(
                    eval_json if isinstance(eval_json, (dict, list)) else json.loads(Path(eval_json).read_text()),
                    indent=2,
                )
                + "\n"
            ).encode()
            files[PLOT_PATH_IN_REPO] = (
                Path(plot) if plot is not None else plot_scarcity(results, Path(scratch) / "plot.png")
            )
        elif plot is not None:
            files[PLOT_PATH_IN_REPO] = Path(plot)
        card = _model_card(
            folder,
            repo_id,
            eval_json=eval_json if results else None,
            plot_file=PLOT_PATH_IN_REPO if PLOT_PATH_IN_REPO in files else None,
            license=license,
            encoder_name=encoder_name,
            training_data=training_data,
        )
        files["README.md"] = card
        if _converted_card(folder.path):  # `umedpt convert` output: its report goes with its card
            files["conversion_report.json"] = folder.path / "conversion_report.json"

        api = _api(token)
        with _clear_hub_errors(api, repo_id):
            _prepare_repo(api, repo_id, "model", private, revision)
            existing = api.list_repo_files(repo_id, revision=revision)
            stale = [name for name in existing if name.endswith(_MANAGED_SUFFIXES) and name not in files]
            operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=data) for name, data in files.items()]
            operations += [CommitOperationDelete(path_in_repo=name) for name in stale]
            commit = api.create_commit(repo_id, operations, commit_message=commit_message, revision=revision)
    if space_id is not None:
        push_space(space_id, repo_id, token=token, private=private)
    return commit


def push_space(
    space_id: str,
    model_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    revision: str | None = None,
    commit_message: str = "Upload UMedPT demo",
) -> CommitInfo:
    """Push the gradio demo (hub_cards/space) to a Space that serves ``model_id``, with a rendered Space card."""
    check_repo_id(space_id, "Space id")
    check_repo_id(model_id, "model repo id")
    space_dir = hub_cards_dir() / "space"
    card = SpaceCard.from_template(
        SpaceCardData(
            title=f"UMedPT demo: {model_id.split('/')[-1]}",
            sdk="gradio",
            app_file="app.py",
            license="apache-2.0",
            models=[model_id],
            tags=["medical-imaging", "umedpt", "multi-task"],
            emoji="🩻",
            colorFrom="blue",
            colorTo="indigo",
            pinned=False,
            short_description="Try a UMedPT model: classes, masks, boxes and embeddings",
        ),
        template_path=str(hub_cards_dir() / "spacecard_template.md"),
        model_id=model_id,
    )
    files: dict[str, bytes | Path] = {
        "app.py": space_dir / "app.py",
        "requirements.txt": space_dir / "requirements.txt",
        "README.md": str(card).encode(),
    }
    api = _api(token)
    operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=content) for name, content in files.items()]
    operations.append(CommitOperationAdd(path_in_repo="model_id.txt", path_or_fileobj=(model_id + "\n").encode()))
    with _clear_hub_errors(api, space_id):
        _prepare_repo(api, space_id, "space", private, revision, space_sdk="gradio")
        return api.create_commit(
            space_id, operations, commit_message=commit_message, revision=revision, repo_type="space"
        )
