"""README states how many bad inputs and faults this suite tries: the number is kept in step with the suite."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
README = HERE.parents[1] / "README.md"


def test_readme_states_the_number_of_reliability_cases():
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", str(HERE)]
    collected = subprocess.run(
        [*command, f"--ignore={__file__}"], capture_output=True, text=True, cwd=HERE.parents[1], timeout=300
    )
    found = re.search(r"(\d+) tests? collected", collected.stdout)
    assert found, collected.stdout[-2000:] + collected.stderr[-2000:]
    cases = int(found.group(1))
    stated = re.search(r"`tests/reliability/` tries (\d+) bad inputs and faults", README.read_text())
    assert stated, "README's Develop section states the number of reliability cases"
    assert int(stated.group(1)) == cases, f"README says {stated.group(1)} reliability cases, the suite has {cases}"
