"""House rules that hold for the whole tree: small files with one concept each."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 400


def tracked_code_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "*.py", "*.sh"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:  # not a git checkout (an unpacked sdist): every code file below the root
        return [p for p in ROOT.rglob("*") if p.suffix in (".py", ".sh") and ".venv" not in p.parts]
    return [ROOT / name for name in listed.stdout.split()]


def test_no_code_file_is_over_400_lines():
    lines = {str(path.relative_to(ROOT)): len(path.read_text().splitlines()) for path in tracked_code_files()}
    long = {name: count for name, count in lines.items() if count > MAX_LINES}
    assert not long, f"files over {MAX_LINES} lines (split them by concept): {long}"
