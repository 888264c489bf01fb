"""The export targets, one module per framework, listed once: `--layout` takes these names.

Adding a target is one module declaring a `Target` (targets/base.py) and its entry below.
Importing this package imports no framework and no numpy.
"""

from __future__ import annotations

from . import gates, keras, onnx, pytorch, tensorflow
from .base import Features, Target

__all__ = ["TARGETS", "Features", "Target", "get"]

TARGETS: dict[str, Target] = {
    t.name: t for t in (gates.TARGET, pytorch.TARGET, onnx.TARGET, keras.TARGET, tensorflow.TARGET)
}


def get(name: str) -> Target:
    """The target called `name`; KeyError names the known ones."""
    try:
        return TARGETS[name]
    except KeyError:
        raise KeyError(f"unknown layout {name!r}; layouts: {', '.join(TARGETS)}") from None
