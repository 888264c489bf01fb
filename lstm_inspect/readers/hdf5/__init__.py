"""The HDF5 files Keras writes: groups, datasets, attributes and values, with libhdf5 kept at arm's length.

Two sources give the same small interface (Group, Dataset, Node: tree.py):

- ``read_tree`` (parser.py, values.py) parses the file itself, in pure Python: the metadata
  without h5py or numpy (together about half of a `summary` run), the values with numpy alone.
  It reads what h5py writes by default, the "earliest" file format: superblock v0/v1, version-1
  object headers, symbol-table groups, attributes of integers, IEEE floats and strings
  (fixed-length, or variable-length in the global heap), and datasets stored contiguous,
  compact, or in chunks indexed by a version-1 B-tree and filtered by deflate and shuffle.
- ``H5pyWorker`` (worker.py) lists and reads with h5py in a child process, for what the parser
  does not read. libhdf5 loops forever on some damaged files, in native code that holds the GIL, where no signal
  handler or timer of this process can stop it; a child process runs under a CPU-time limit and
  is killed as soon as the parent is interrupted.

What the parser finds decides where a file goes, by the exception it raises:

- NotUnderstood: a feature the parser does not read (a newer superblock or object header, links
  or attributes stored densely, shared messages, soft links, other datatypes, chunk indexes or
  filters). The worker reads it with h5py.
- Damaged: the file contradicts itself (an address past its end, a structure that does not parse,
  names out of order, missing chunks). libhdf5 is never asked: on such files it may loop, crash or
  read zeros.
- OutsideFile: the values or objects live in another file (external storage, a virtual dataset,
  an external link). Refused whoever reads: following them would read files the user never named.

Layouts follow the HDF5 File Format Specification version 3.0 (FMT3), checked against libhdf5 1.14:
src/H5Fsuper_cache.c (superblock), H5Ocache.c (object header), H5Gnode.c / H5Gent.c / H5Bcache.c
(symbol tables), H5HLcache.c (local heap), H5HGcache.c (global heap), H5Oattr.c, H5Odtype.c,
H5Osdspace.c, H5Olayout.c, H5Oefl.c, H5Opline.c (messages), H5Dbtree.c (chunk index), H5Zdeflate.c,
H5Zshuffle.c (filters).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names as _LAZY, for type checkers
    from .parser import dtype_name, read_tree
    from .tree import MAX_DEFLATE_RATIO, SIGNATURE, Damaged, Dataset, Group, Node, NotUnderstood, OutsideFile
    from .worker import H5pyWorker

__all__ = [
    "MAX_DEFLATE_RATIO",
    "SIGNATURE",
    "Damaged",
    "Dataset",
    "Group",
    "H5pyWorker",
    "Node",
    "NotUnderstood",
    "OutsideFile",
    "dtype_name",
    "read_tree",
]

# Where each name lives: imported when first used, so that a look at the signature (formats/) does
# not compile the parser and the worker.
_LAZY = {
    "dtype_name": "parser",
    "read_tree": "parser",
    "H5pyWorker": "worker",
    **dict.fromkeys(("MAX_DEFLATE_RATIO", "SIGNATURE", "Damaged", "Dataset", "Group", "Node"), "tree"),
    **dict.fromkeys(("NotUnderstood", "OutsideFile"), "tree"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{module}", __name__), name)
