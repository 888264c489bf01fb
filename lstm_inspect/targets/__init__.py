"""The export targets, one module per framework, listed once: `--layout` takes these names.

Adding a target is one module declaring a `Target` (targets/base.py) named like the module, and
its name in NAMES below. Importing this package imports none of them (the CLI's start-up needs only
the names); TARGETS imports them on first use, and no framework and no numpy then either.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Features, Target

    TARGETS: dict[str, Target]

__all__ = ["NAMES", "TARGETS", "Features", "Target", "get"]

# The registry, in the order help lists them: each the name of its module and of the Target it declares.
NAMES = ("gates", "pytorch", "onnx", "keras", "tensorflow")


def __getattr__(name: str) -> object:
    if name == "TARGETS":
        targets = {key: importlib.import_module(f".{key}", __name__).TARGET for key in NAMES}
        assert all(target.name == key for key, target in targets.items()), "a target named unlike its module"
        globals()["TARGETS"] = targets
        return targets
    if name in ("Features", "Target"):
        from . import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get(name: str) -> Target:
    """The target called `name`; KeyError names the known ones."""
    if name not in NAMES:
        raise KeyError(f"unknown layout {name!r}; layouts: {', '.join(NAMES)}")
    targets: dict[str, Target] = __getattr__("TARGETS")  # type: ignore[assignment]
    return targets[name]
