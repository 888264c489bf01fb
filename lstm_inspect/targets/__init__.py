"""The export targets, one module per framework, listed once: `--layout` takes these names.

Adding a target is one module declaring a `Target` (targets/base.py) named like the module, and
its name in NAMES below. Importing this package imports none of them (the CLI's start-up needs only
the names); TARGETS imports them on first use, and no framework and no numpy then either.
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Features, Target

    TARGETS: dict[str, Target]

__all__ = ["NAMES", "TARGETS", "Features", "Target", "get"]

# The registry, in the order help lists them: each the name of its module and of the Target it declares.
NAMES = ("gates", "pytorch", "onnx", "keras", "tensorflow")


@functools.cache
def _load() -> dict[str, Target]:
    targets = {key: importlib.import_module(f".{key}", __name__).TARGET for key in NAMES}
    assert all(target.name == key for key, target in targets.items()), "a target named unlike its module"
    return targets


def __getattr__(name: str) -> object:
    if name == "TARGETS":
        return _load()
    if name in ("Features", "Target"):
        from . import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get(name: str) -> Target:
    """The target called `name`; KeyError names the known ones."""
    if name not in NAMES:
        raise KeyError(f"unknown layout {name!r}; layouts: {', '.join(NAMES)}")
    return _load()[name]
