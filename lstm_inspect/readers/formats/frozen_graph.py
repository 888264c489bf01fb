"""Frozen TensorFlow graphs (readers/frozen_graph.py): a binary GraphDef `.pb` (or a SavedModel's
saved_model.pb given as a file), or a text GraphDef `.pbtxt`, from a local file."""

from __future__ import annotations

from ...errors import LstmInspectError, UnsupportedFormat
from ..base import TensorStore
from .probe import Probe

__all__ = ["READS", "accept", "looks_like_text_graph", "near_miss", "open_path"]

READS = "frozen graphs (.pb, .pbtxt)"
# A text GraphDef starts with a field name (`node`, `library`, `versions`) or a comment
# (tensorflow/core/framework/graph.proto; text_format writes fields in their declared order).
_TEXT_STARTS = (b"node", b"library", b"versions", b"version", b"#")


def looks_like_text_graph(head: bytes) -> bool:
    """Whether a file's first bytes look like a text-format GraphDef."""
    return head.lstrip().startswith(_TEXT_STARTS)


def accept(probe: Probe) -> bool:
    if probe.kind != "file" or probe.remote:
        return False
    return probe.name.endswith(".pb") or (probe.name.endswith(".pbtxt") and looks_like_text_graph(probe.head))


def open_path(probe: Probe, verify: bool) -> TensorStore:
    from ..frozen_graph import open_frozen_graph

    store: TensorStore = open_frozen_graph(probe.path)
    return store


def near_miss(probe: Probe) -> LstmInspectError | None:
    if probe.kind != "file" or not probe.name.endswith((".pb", ".pbtxt")):
        return None
    if probe.remote:
        return UnsupportedFormat(
            f"{probe.path}: a TensorFlow graph file, which lstm-inspect reads from local files only; "
            "download it and give the local copy"
        )
    if not probe.is_text:
        return None
    return UnsupportedFormat(
        f"{probe.path}: a text file that is not a TensorFlow GraphDef (a text GraphDef starts with "
        "`node`, `library` or `versions`)"
    )
