"""Which reader takes a path: one small plugin module per format, asked in order (the way Pillow
asks its src/PIL/*ImagePlugin.py modules' `_accept`).

A plugin module holds what a path of its format is recognised by, and nothing heavy: it imports
its reader only to open a path. It defines

- ``READS``: what the reader takes, in words, for the message that lists what lstm-inspect reads;
- ``accept(probe) -> bool``: whether it takes the path (probe.py: its kind, name, first bytes,
  a zip's member names; the cheapest facts first);
- ``open_path(probe, verify) -> TensorStore``: open it;
- ``near_miss(probe) -> LstmInspectError | None`` (optional): for a path no plugin takes, the error
  that names what it is and the path to give instead (the graph beside a checkpoint, ...).

Adding a format is one plugin module (holding its reader too, when it is small) and its line in
READERS. unread.py says what a file no plugin takes nor names looks like.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import import_module
from types import ModuleType

__all__ = ["READERS", "plugins"]

# The order matters where two plugins could take a path: a SavedModel directory before a
# checkpoint directory; the checkpoint's names before anything reads a file's bytes (a remote
# data shard is never fetched to be sniffed); frozen graphs by name before the Keras reader looks
# at signatures and zip members.
READERS: tuple[str, ...] = (
    "saved_model",
    "tf_checkpoint",
    "frozen_graph",
    "keras",
    # After Keras, whose archives it must not take; an .npz that is not made of .npy members is
    # named by unread.py.
    "npz",
)


def plugins() -> Iterator[ModuleType]:
    """The plugin modules in the order they are asked, each imported when first reached."""
    for name in READERS:
        yield import_module(f".{name}", __name__)
