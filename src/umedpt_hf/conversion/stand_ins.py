"""Inert stand-ins for the classes and functions a foreign pickle names, and the policy of which names get one.

A whole pickled `nn.Module` (the authors' export) names its classes as pickle GLOBALs: torchvision's Swin blocks, the
framework's own blocks, an Enum, `functools.partial`, `builtins.getattr`. torch's `weights_only=True` unpickler
refuses every global it does not know; registering an inert stand-in under the same dotted name lets it rebuild the
object tree without importing or running anything: a stand-in only records the arguments and state it is given.
Names outside the policy are refused before any unpickling, naming the global.
"""

from __future__ import annotations

import re
from typing import Any

# module roots whose classes (and function references) are replaced by stand-ins: torch's own modules, torchvision
# (models and ops), the authors' framework (`mmm`, and the structural stand-in used in the tests), pydantic configs
# and Enums; they are never imported, whatever the pickle says
DEFAULT_STAND_IN_ROOTS = ("torch.nn.modules", "torch.nn.functional", "torchvision", "mmm", "mmm_standin_blocks")
CONFIG_ROOTS = ("pydantic", "enum")
# single callables seen in the authors' export (a partial hook, Enum lookup by name); each becomes a stand-in too
STAND_IN_CALLABLES = frozenset({"functools.partial", "builtins.getattr", "builtins.max", "builtins.min"})
# plain values a pickled config may hold (paths); stood in like the rest, never built
VALUE_CLASSES = frozenset(
    {"pathlib.PosixPath", "pathlib.WindowsPath", "pathlib.PurePosixPath", "pathlib.PureWindowsPath"}
)
# roots a user may not add with `stand_in_modules`: a pickle naming them is an attack, not an export
FORBIDDEN_ROOTS = frozenset(
    {"builtins", "__builtin__", "os", "posix", "nt", "sys", "subprocess", "shutil", "importlib", "runpy", "code",
     "pickle", "_pickle", "marshal", "socket", "ctypes", "io", "_io", "tempfile", "webbrowser", "pty",
     "signal", "multiprocessing", "threading", "asyncio", "urllib", "http", "types", "inspect", "operator",
     "functools", "copyreg", "codecs", "_codecs", "torch"}
)  # fmt: skip
DOTTED_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")


class StandIn:
    """An inert placeholder for one global named in a pickle. Calling or building it only records what it was given;
    it has no behaviour, so nothing the pickle asks for can run."""

    global_name = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> StandIn:
        instance = object.__new__(cls)
        instance.__dict__["args"] = args
        instance.__dict__["kwargs"] = kwargs
        instance.__dict__["state"] = None
        return instance

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # REDUCE calls the class: keep the arguments, do nothing
        pass

    def __setstate__(self, state: Any) -> None:
        self.__dict__["state"] = state

    def __repr__(self) -> str:
        return f"<stand-in for {self.global_name}>"

    @property
    def module_state(self) -> dict[str, Any]:
        """The pickled `__dict__` of an `nn.Module` (or any object pickled by state), else {}."""
        state = self.state
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict):  # (dict, slots)
            state = state[0]
        return state if isinstance(state, dict) else {}


def make_stand_in(global_name: str) -> type[StandIn]:
    """A fresh StandIn subclass for one dotted global name (a distinct type per name, as the unpickler needs)."""
    return type(global_name.rsplit(".", 1)[-1], (StandIn,), {"global_name": global_name, "__module__": __name__})


def check_stand_in_roots(extra_roots: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Validate module roots a user adds (e.g. the authors' package under another name)."""
    roots = []
    for root in extra_roots:
        if not isinstance(root, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", root):
            raise ValueError(f"stand-in module {root!r} is not a module name")
        if root.split(".")[0] in FORBIDDEN_ROOTS:
            raise ValueError(
                f"stand-in module {root!r} is refused: a pickle that names {root.split('.')[0]} is not a model export"
            )
        roots.append(root)
    return tuple(roots)


def _under(name: str, roots: tuple[str, ...]) -> bool:
    return any(name == root or name.startswith(root + ".") for root in roots)


def classify_globals(names: list[str] | set[str], extra_roots: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
    """Split the globals a static scan found into (stood in, refused). Torch's own safe globals never reach here."""
    roots = DEFAULT_STAND_IN_ROOTS + CONFIG_ROOTS + tuple(extra_roots)
    accepted, refused = [], []
    for name in sorted(set(names)):
        known = name in STAND_IN_CALLABLES or name in VALUE_CLASSES or _under(name, roots)
        if DOTTED_NAME.fullmatch(name) and known:
            accepted.append(name)
        else:
            refused.append(name)
    return accepted, refused
