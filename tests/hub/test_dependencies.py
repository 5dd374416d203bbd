"""pyproject.toml says what is used: every default dependency is imported by the package, torch's lower bound is one
the code runs on, the model card names the same bounds and the optional extras; the package never imports the
loopback Hub (test support) and only the CLI and hub import the publishing package."""

from __future__ import annotations

import ast
import importlib.metadata
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from umedpt_hf.hub.card import OPTIONAL_EXTRAS, REMOTE_CODE_REQUIREMENTS

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = REPO_ROOT / "src" / "umedpt_hf"
tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
IMPORT_NAMES = {"pillow": "PIL", "pyyaml": "yaml", "scikit-learn": "sklearn", "huggingface-hub": "huggingface_hub"}


def _project() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


def _imports(path: Path) -> set[str]:
    """Absolute module names imported by a source file (relative imports resolved against umedpt_hf)."""
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                found.add(f"{base}.{node.module}" if node.module else base)
            else:
                found.add(node.module or "")
    return found


def _package_imports() -> dict[Path, set[str]]:
    return {path: _imports(path) for path in PACKAGE.rglob("*.py")}


def test_every_default_dependency_is_imported_by_the_package():
    imported = {name.split(".")[0] for names in _package_imports().values() for name in names}
    for requirement in map(Requirement, _project()["dependencies"]):
        module = IMPORT_NAMES.get(requirement.name.lower(), requirement.name.replace("-", "_"))
        assert module in imported, f"{requirement.name} is declared but never imported by umedpt_hf"


def test_torch_lower_bound_covers_transformers_and_the_functions_called():
    requirements = {Requirement(r).name: Requirement(r) for r in _project()["dependencies"]}
    torch_min = min(Version(spec.version) for spec in requirements["torch"].specifier if spec.operator == ">=")
    # transformers' own requirement on torch (its "torch" extra) must be admitted by ours, not undercut
    for line in importlib.metadata.requires("transformers") or []:
        requirement = Requirement(line)
        if requirement.name == "torch":
            for spec in requirement.specifier:
                if spec.operator == ">=":
                    assert torch_min >= Version(spec.version), f"transformers needs torch {spec}"
    uses_26_apis = any(
        re.search(r"get_total_norm|clip_grads_with_norm_", path.read_text()) for path in PACKAGE.rglob("*.py")
    )
    assert not uses_26_apis or torch_min >= Version("2.6")  # both appeared in torch 2.6
    assert Version(REMOTE_CODE_REQUIREMENTS["torch"]) == torch_min  # the model card states the same bound
    transformers_min = [s.version for s in requirements["transformers"].specifier if s.operator == ">="]
    assert transformers_min == [REMOTE_CODE_REQUIREMENTS["transformers"]]
    space = (REPO_ROOT / "hub_cards" / "space" / "requirements.txt").read_text()
    assert f"torch>={torch_min}" in space


def test_optional_extras_named_in_the_card_exist():
    extras = _project()["optional-dependencies"]
    assert set(OPTIONAL_EXTRAS) <= set(extras)
    assert "evaluate" not in " ".join(_project()["dependencies"])


def test_the_package_never_imports_test_support_and_only_cli_imports_hub():
    for path, names in _package_imports().items():
        relative = path.relative_to(PACKAGE).as_posix()
        assert not any(name.split(".")[0] in ("hub_server", "tests") for name in names), relative
        assert "loopback" not in path.read_text().lower(), f"{relative} mentions the loopback Hub"
        if not relative.startswith(("hub/", "cli/")):
            hub_imports = sorted(name for name in names if name.startswith("umedpt_hf.hub"))
            assert not hub_imports, f"{relative} imports {hub_imports}: publishing is reached from the CLI only"
        if relative.startswith("hub/"):
            upward = sorted(name for name in names if name.startswith(("umedpt_hf.cli", "umedpt_hf.training")))
            assert not upward, f"{relative} imports {upward}"
