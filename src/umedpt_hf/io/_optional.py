"""Imports of the optional medical-file packages with an error that names the extra to install."""

from __future__ import annotations

from types import ModuleType


def require(module: str, extra: str) -> ModuleType:
    """Import `module`, or raise ImportError telling which `umedpt_hf` extra provides it."""
    try:
        return __import__(module)
    except ImportError as error:
        raise ImportError(
            f'Reading this file needs the optional package `{module}`: pip install "umedpt_hf[{extra}]"'
        ) from error
