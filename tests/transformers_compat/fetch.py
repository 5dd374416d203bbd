"""Fetch transformers' own common test mixins for the INSTALLED transformers version (run by `make install`).

The mixins (`tests/test_modeling_common.py`, `test_backbone_common.py`, `test_configuration_common.py`,
`test_image_processing_common.py`, ...) ship in transformers' sdist, not its wheel. This downloads the sdist of the
installed version from the package registry (install time, never at test time), unpacks its `tests/*.py` into
`<dest>/transformers_tests/` and adds stand-ins for the few modules the sdist lacks (see `shims/`).

    python tests/transformers_compat/fetch.py [DEST]     # DEST defaults to .venv/transformers-tests
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import transformers

HERE = Path(__file__).resolve().parent
DEFAULT_DEST = HERE.parents[1] / ".venv" / "transformers-tests"


def fetch(dest: Path) -> Path:
    version = transformers.__version__
    package = dest / "transformers_tests"
    if (package / "VERSION").is_file() and (package / "VERSION").read_text().strip() == version:
        return package
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:"]
        subprocess.run([*command, f"transformers=={version}", "-d", tmp], check=True)
        (archive,) = Path(tmp).glob("transformers-*.tar.gz")
        staging = dest / ".staging"
        shutil.rmtree(staging, ignore_errors=True)
        (staging / "transformers_tests").mkdir(parents=True)
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                parts = Path(member.name).parts
                if len(parts) == 3 and parts[1] == "tests" and parts[2].endswith(".py") and member.isfile():
                    source = tar.extractfile(member)
                    (staging / "transformers_tests" / parts[2]).write_bytes(source.read())
    target = staging / "transformers_tests"
    for sub in ("exporters", "generation", "utils"):
        shutil.copytree(HERE / "shims" / sub, target / sub)
    (target / "__init__.py").touch()
    (staging / "utils").mkdir()
    shutil.copy(HERE / "shims" / "utils_fetch_hub_objects_for_ci.py", staging / "utils" / "fetch_hub_objects_for_ci.py")
    (target / "VERSION").write_text(version + "\n")
    for child in ("transformers_tests", "utils"):
        shutil.rmtree(dest / child, ignore_errors=True)
    for child in ("transformers_tests", "utils"):
        (staging / child).rename(dest / child)
    staging.rmdir()
    return package


if __name__ == "__main__":
    destination = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DEST
    print(f"transformers {transformers.__version__} common tests in {fetch(destination)}")
