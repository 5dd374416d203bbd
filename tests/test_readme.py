"""README.md is what a fresh run does: every command and snippet in it runs as written and passes.

How README blocks are run (the convention for everyone who writes a README section):
- ```bash blocks run, each as one ``bash -euo pipefail`` script, and ```python blocks run, each in fresh globals of
  one Python process, all in README order, in a scratch directory laid out like a fresh checkout after the set-up:
  examples/, tests/, hub_cards/, scripts/, benchmarks/ and the top-level files link to the repository; cache/ and
  outputs/ start empty and are filled by the README's own commands (`umedpt data build`, pretraining, ...).
  Variables exported in one bash block do not reach the next one; `cd` does not either.
- Other fences are shown, not run: ```text for output, ```yaml / ```json for file contents, ```bibtex, ```console.
- The first block is the set-up (exactly `make main` and `make test`): checked, not run (this suite is `make test`).
- Placeholders are files that exist in the scratch directory (PLACEHOLDER_FILES: `encoder-1.0.4.pt.zip`, the
  authors' download, is the structural stand-in of their export); a Hub name is served by a loopback Hub
  (tests/hub_server) that HF_ENDPOINT / HF_TOKEN point at, with the repos of HUB_REPOS pushed there first.
- `make main` is stood in for by MAKE_MAIN_STAND_IN (its own data build and pretraining commands, on the stand-in
  database and config), so that later sections find `cache/umedpt-mini` and `outputs/umedpt_mini/final`.
- Stand-ins keep the run short, and are the only edits: the database is built with a few tasks (STAND_IN_TASKS), the
  YAML configs under examples/configs/ run two steps on small images (STAND_IN_CONFIG), and TEXT_STAND_INS rewrites
  README text (each entry says why). A command that needs more must say so in this file, not be skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
ARTIFACTS = REPO_ROOT / "test-artifacts"  # readme_blocks.json: each block's line, time and result
SETUP_COMMANDS = ["make main", "make test"]
RUN_LANGUAGES = {"bash", "sh", "shell", "python"}
SHOWN_LANGUAGES = {"text", "yaml", "json", "bibtex", "console", "toml", "markdown", ""}
LINKED = ["examples", "tests", "hub_cards", "scripts", "benchmarks", "src", "pyproject.toml", "Makefile", "README.md"]
# the umedpt-mini tasks the stand-in database holds: one per task type, and one held-out task for `umedpt evaluate`
STAND_IN_TASKS = ["modality_cls", "head_ct_tissue_seg", "dsb2018_nuclei_det", "xray_bodypart_cls"]
ONLY_STAND_IN_TASKS = r"\1 --only " + " ".join(STAND_IN_TASKS) + r"\2"
STAND_IN_CONFIG = {"training": {"max_steps": 2, "save_steps": 1, "logging_steps": 1, "warmup_steps": 0},
                   "data": {"image_size": 32, "batch_size": 2, "augment": False}}  # fmt: skip
# (pattern in README text, replacement, why)
TEXT_STAND_INS = [
    (r"^([^#\n]*umedpt data build(?:(?!--only)[^#\n])*?)(\s*(?:#.*)?)$", ONLY_STAND_IN_TASKS,
     "the full umedpt-mini database makes every later command slower"),
    (r"\b8765\b", "{port}", "the loopback Hub of the Publish section listens on a free port"),
]  # fmt: skip
# README file name -> the file of this repository (a fixture, or a file an offline package ships) copied in its place
PLACEHOLDER_FILES = {"encoder-1.0.4.pt.zip": "tests/conversion/data/mmm_standin_tiny.pt.zip"}
# Hub names the README loads from: pushed to the loopback Hub first (repo id -> folder in the scratch directory)
HUB_REPOS: dict[str, str] = {}
BLOCK_TIMEOUT = 300
# `make main` (the set-up block) is checked, not run: this stand-in leaves what later sections use after it, the
# database in cache/umedpt-mini and the main job's model in outputs/umedpt_mini (scripts/main.sh's own commands)
MAKE_MAIN_STAND_IN = (
    "umedpt data build --out cache/umedpt-mini --no-progress --only " + " ".join(STAND_IN_TASKS) + "\n"
    "python examples/pretrain.py --config examples/configs/umedpt_mini.yaml data.database=cache/umedpt-mini "
    "output_dir=outputs/umedpt_mini training.progress_bar=false\n"
)

WORKER = r"""
import contextlib, runpy, sys, traceback
for line in sys.stdin:
    path = line.strip()
    status = "ok"
    with open(path + ".log", "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            runpy.run_path(path, run_name="__main__")
        except SystemExit as stop:
            status = "ok" if stop.code in (None, 0) else "failed"
        except BaseException:
            traceback.print_exc()
            status = "failed"
    print(status, flush=True)
"""


@dataclass
class Block:
    language: str
    text: str
    line: int

    @property
    def runs(self) -> bool:
        return self.language in RUN_LANGUAGES


def readme_blocks() -> list[Block]:
    text = README.read_text()
    blocks = []
    for match in re.finditer(r"^```(?!`)([\w-]*)[^\n]*\n(.*?)^```\s*$", text, flags=re.M | re.S):
        blocks.append(Block(match.group(1).lower(), match.group(2), text.count("\n", 0, match.start()) + 1))
    return blocks


def _commands(block: Block) -> list[str]:
    joined = block.text.replace("\\\n", " ")
    return [line.split("#")[0].strip() for line in joined.splitlines() if line.split("#")[0].strip()]


def test_readme_starts_with_exactly_the_two_setup_commands():
    first = readme_blocks()[0]
    assert first.language == "bash" and _commands(first) == SETUP_COMMANDS


def test_every_fence_is_either_run_or_shown():
    unknown = [(b.line, b.language) for b in readme_blocks() if not b.runs and b.language not in SHOWN_LANGUAGES]
    assert not unknown, f"README fences of unknown language (run: {RUN_LANGUAGES}; shown: {SHOWN_LANGUAGES}): {unknown}"


# -- the scratch checkout ------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stand_in_config(source: Path, target: Path) -> None:
    config = yaml.safe_load(source.read_text())
    for section, values in STAND_IN_CONFIG.items():
        config.setdefault(section, {}).update(values)
    kept = []
    for task in config.get("tasks", []):
        name = task if isinstance(task, str) else task.get("name")
        if name in STAND_IN_TASKS:
            kept.append(task if isinstance(task, str) else {**task, "image_size": 32, "batch_size": 2})
    config["tasks"] = kept or config.get("tasks", [])
    config["held_out_tasks"] = [t for t in config.get("held_out_tasks", []) if t in STAND_IN_TASKS]
    target.write_text(yaml.safe_dump(config, sort_keys=False))


def _scratch_checkout(root: Path) -> Path:
    work = root / "checkout"
    work.mkdir()
    for name in LINKED:
        if (REPO_ROOT / name).exists() and name != "examples":
            (work / name).symlink_to(REPO_ROOT / name)
    examples = work / "examples"
    for path in (REPO_ROOT / "examples").rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            target = examples / path.relative_to(REPO_ROOT / "examples")
            target.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix == ".yaml" and target.parent.name == "configs":
                _stand_in_config(path, target)
            else:
                target.symlink_to(path)
    for name, source in PLACEHOLDER_FILES.items():
        shutil.copy(REPO_ROOT / source, work / name)
    return work


def _environment(root: Path, hub) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "UMEDPT_", "ACCELERATE_"))}
    env.update(hub.client_env())
    env.update({
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "HF_HOME": str(root / "hf_home"), "HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error", "TOKENIZERS_PARALLELISM": "false",
        "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "2", "GRADIO_ANALYTICS_ENABLED": "False",
    })  # fmt: skip
    return env


def _rewrite(text: str, port: int) -> str:
    for pattern, replacement, _why in TEXT_STAND_INS:
        text = re.sub(pattern, replacement.replace("{port}", str(port)), text, flags=re.M)
    return text


def _stop_background_hubs(work: Path) -> None:
    """A loopback Hub a block started with --background and did not stop (the block failed half-way)."""
    for folder in [work, *(p for p in work.iterdir() if p.is_dir() and not p.is_symlink())]:
        state = folder / "server.json"
        with contextlib.suppress(OSError, ValueError, KeyError):
            os.kill(int(json.loads(state.read_text())["pid"]), signal.SIGTERM)


# -- the run -------------------------------------------------------------------------------------------------------
def test_every_readme_command_and_snippet_runs_as_written(tmp_path, hub_for_readme):
    blocks = [block for block in readme_blocks()[1:] if block.runs]
    assert blocks, "the README shows no command"
    work = _scratch_checkout(tmp_path)
    env = _environment(tmp_path, hub_for_readme)
    port = _free_port()
    scripts = tmp_path / "blocks"
    scripts.mkdir()
    worker = subprocess.Popen([sys.executable, "-c", WORKER], cwd=work, env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    failures, timings = [], []
    made = subprocess.run(["bash", "-euo", "pipefail", "-c", MAKE_MAIN_STAND_IN], cwd=work, env=env,
                          capture_output=True, text=True, timeout=BLOCK_TIMEOUT)  # fmt: skip
    assert made.returncode == 0, f"the stand-in of make main failed:\n{(made.stdout + made.stderr)[-3000:]}"
    try:
        for block in blocks:
            started = time.monotonic()
            text = _rewrite(block.text, port)
            for repo_id, folder in HUB_REPOS.items():
                if repo_id in text and (work / folder).is_dir():
                    hub_for_readme.push(work / folder, repo_id)
            if block.language == "python":
                script = scripts / f"readme_line_{block.line}.py"
                script.write_text(text)
                worker.stdin.write(f"{script}\n")
                worker.stdin.flush()
                ok = worker.stdout.readline().strip() == "ok"
                if not ok:
                    log = Path(f"{script}.log").read_text()[-3000:]
                    failures.append(f"README line {block.line} (python):\n{log}")
            else:
                result = subprocess.run(["bash", "-euo", "pipefail", "-c", text], cwd=work, env=env,
                                        capture_output=True, text=True, timeout=BLOCK_TIMEOUT)  # fmt: skip
                ok = result.returncode == 0
                if not ok:
                    failures.append(f"README line {block.line} (bash, exit {result.returncode}):\n{text}\n"
                                    f"{(result.stdout + result.stderr)[-3000:]}")  # fmt: skip
            timings.append(
                {
                    "line": block.line,
                    "language": block.language,
                    "ok": ok,
                    "seconds": round(time.monotonic() - started, 1),
                    "first_line": text.splitlines()[0],
                }
            )
    finally:
        worker.stdin.close()
        worker.wait(timeout=60)
        _stop_background_hubs(work)
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "readme_blocks.json").write_text(json.dumps(timings, indent=1) + "\n")
    assert not failures, "README blocks that fail as written:\n\n" + "\n\n".join(failures)


@pytest.fixture
def hub_for_readme(tmp_path):
    """The loopback Hub every README command sees as HF_ENDPOINT; ``push(folder, repo_id)`` fills a repo."""
    from hub_server import LoopbackHub

    with LoopbackHub(tmp_path / "hub", token="hf_readme_token") as hub:

        def push(folder: Path, repo_id: str) -> None:
            env = _environment(tmp_path, hub)
            subprocess.run(["umedpt", "push", str(folder), repo_id], env=env, check=True, capture_output=True)

        hub.push = push
        yield hub
