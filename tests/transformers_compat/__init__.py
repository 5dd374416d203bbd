"""transformers' own common test mixins for the installed version, fetched by `make install` (see `fetch.py`).

from transformers_compat import common_tests
ModelTesterMixin = common_tests("test_modeling_common").ModelTesterMixin
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

import transformers

from .fetch import DEFAULT_DEST


def common_tests(module: str) -> ModuleType:
    """`transformers_tests.<module>` from the unpacked sdist of the installed transformers version."""
    root = Path(os.environ.get("UMEDPT_TRANSFORMERS_TESTS", DEFAULT_DEST))
    marker = root / "transformers_tests" / "VERSION"
    if not marker.is_file() or marker.read_text().strip() != transformers.__version__:
        raise RuntimeError(
            f"transformers {transformers.__version__}'s common tests are not in {root}; run `make install` "
            f"(or `python tests/transformers_compat/fetch.py {root}`)"
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module(f"transformers_tests.{module}")
