"""What a file that no reader takes looks like, in one line: the formats lstm-inspect recognises
and does not read, each with its test, asked in order after every reader has declined.

A new entry is a test of the first bytes (or of a zip's member names) and the words for what the
file is; the message then says what lstm-inspect reads, from the readers' own plugins.
"""

from __future__ import annotations

from collections.abc import Callable

from ...errors import LstmInspectError, UnsupportedFormat
from ..files import check_placeholder
from .probe import Probe

__all__ = ["refusal", "refuse_placeholder"]

# torch.save's default format since PyTorch 1.6 is a zip whose pickled object is
# `<archive name>/data.pkl` (torch/serialization.py _save); TorchScript (torch.jit.save) keeps
# its constants beside it. The legacy format is a pickle that starts with a magic number
# (torch/serialization.py MAGIC_NUMBER = 0x1950a86a20f9469cfc6c, pickled with protocol 2).
_TORCH_PICKLE = "data.pkl"
_TORCH_LEGACY_HEAD = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
# A pickle of protocol 2 or later starts with PROTO and its number (Lib/pickletools.py).
_PICKLE_PROTOCOLS = (2, 3, 4, 5)
# numpy/lib/format.py MAGIC_PREFIX; an .npz is a zip of .npy members (numpy savez).
_NPY_MAGIC = b"\x93NUMPY"


def refuse_placeholder(probe: Probe) -> None:
    """Refuse what stands in for a file: a Git LFS pointer, or an empty file. Said before a
    reader's near miss, which would describe the name and not what is there."""
    if probe.kind == "file":
        check_placeholder(probe.path, probe.head)


def _zip(probe: Probe) -> str | None:
    members = probe.zip_members
    if members is None:
        return None
    if any(name == _TORCH_PICKLE or name.endswith("/" + _TORCH_PICKLE) for name in members):
        return "a PyTorch file (torch.save: a zip holding data.pkl), which lstm-inspect does not read"
    count = f"{len(members):,} member" + ("" if len(members) == 1 else "s")
    return f"a zip archive ({count}) that is neither a Keras .keras file nor a NumPy .npz"


def _pickle(probe: Probe) -> str | None:
    head = probe.head
    if head.startswith(_TORCH_LEGACY_HEAD):
        return "a PyTorch file in torch.save's legacy format (a pickle), which lstm-inspect does not read"
    if len(head) >= 2 and head[0] == 0x80 and head[1] in _PICKLE_PROTOCOLS:
        return "a Python pickle, which lstm-inspect never reads (unpickling runs code)"
    return None


def _npy(probe: Probe) -> str | None:
    if probe.head.startswith(_NPY_MAGIC):
        return "a NumPy array file (.npy), which holds one array without names"
    return None


def _onnx(probe: Probe) -> str | None:
    # A ModelProto has no signature to test; its name says it (onnx/onnx.proto).
    if probe.name.endswith(".onnx"):
        return "an ONNX model, which lstm-inspect writes (export --layout onnx) but does not read"
    return None


def _safetensors(probe: Probe) -> str | None:
    # An 8-byte little-endian header length, then the JSON header (safetensors/README.md, Format).
    head = probe.head
    length = int.from_bytes(head[:8], "little") if len(head) >= 9 else 0
    if probe.name.endswith(".safetensors") or (head[8:10] in (b'{"', b"{'") and 0 < length < probe.size):
        return "a SafeTensors file, which lstm-inspect does not read"
    return None


def _text(probe: Probe) -> str | None:
    if not probe.is_text:
        return None
    kind = "a JSON text file" if probe.head.lstrip()[:1] in (b"{", b"[") else "a text file"
    return f"{kind}, not a TensorFlow checkpoint or a Keras file"


# In order: a zip is told by its members before its first bytes are read as anything else.
_TESTS: tuple[Callable[[Probe], str | None], ...] = (_zip, _pickle, _npy, _onnx, _safetensors, _text)


def refusal(probe: Probe, reads: str) -> LstmInspectError:
    """The one line for a path no reader takes nor names as a near miss: what it looks like and
    what lstm-inspect reads (`reads`, from the readers' plugins)."""
    found = None
    if probe.kind == "file":
        found = next((said for test in _TESTS if (said := test(probe)) is not None), None)
    if found is None:
        found = f"not a TensorFlow checkpoint (no {probe.path}.index next to it) nor any other file lstm-inspect reads"
    return UnsupportedFormat(f"{probe.path}: {found}; lstm-inspect reads {reads}")
