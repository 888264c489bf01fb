"""The pure-Python HDF5 parser (readers/hdf5.py) against h5py, run in hdf5.py's worker process: the
same tree, names, shapes, dtypes and attribute values on every Keras fixture and on files that use
what h5py writes by default; NotUnderstood, and so h5py, for everything else; damage refused as
Damaged, and bounded."""

from __future__ import annotations

import contextlib
import io
import struct
import tempfile
import time
import tracemalloc
import zipfile
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest

from lstm_inspect.errors import CorruptFile
from lstm_inspect.readers import open_store
from lstm_inspect.readers.hdf5 import Damaged, Dataset, Group, H5pyWorker, Node, NotUnderstood, read_tree
from lstm_inspect.readers.keras.store import dataset_paths as _dataset_paths

from .conftest import FIXTURES

KERAS_HDF5 = sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.glob("*/*") if p.suffix in (".h5", ".keras"))


def hdf5_bytes(path: Path) -> bytes:
    if path.suffix == ".keras":
        with zipfile.ZipFile(path) as archive:
            return archive.read("model.weights.h5")
    return path.read_bytes()


def dump(root: Group) -> list[tuple]:
    """Every object reached from the root, depth first in name order, with all it lists."""
    out, seen, stack = [], set(), [root]
    while stack:
        node: Node = stack.pop()
        attrs = [(name, node.attrs[name]) for name in sorted(node.attrs)]
        if isinstance(node, Dataset):
            out.append((node.name, "dataset", node.shape, node.dtype, attrs))
        elif isinstance(node, Group):
            out.append((node.name, "group", attrs))
            if node.key not in seen:
                seen.add(node.key)
                stack.extend(child for _, child in reversed(node.items()))
        else:
            out.append((node.name, "other", attrs))
    return out


@contextlib.contextmanager
def worker_tree(data: bytes) -> Iterator[Group]:
    """The tree h5py lists, in hdf5.py's worker process, of an HDF5 file holding `data`."""
    with tempfile.TemporaryFile() as f:
        f.write(data)
        f.flush()
        worker = H5pyWorker(f.fileno(), 0, len(data))
        try:
            yield worker.tree()
        finally:
            worker.close()


def both(data: bytes) -> tuple[list[tuple], list[tuple]]:
    with worker_tree(data) as tree:
        expected = dump(tree)
    return dump(read_tree(io.BytesIO(data))), expected


@pytest.mark.parametrize("name", KERAS_HDF5)
def test_same_tree_as_h5py_on_every_keras_fixture(name):
    got, expected = both(hdf5_bytes(FIXTURES / name))
    assert got == expected
    assert any(kind == "dataset" for _, kind, *_ in got)


@pytest.mark.parametrize("name", KERAS_HDF5)
def test_same_listing_through_either_tree(name, monkeypatch):
    # The Keras reader's logic exists once, over the interface; h5py's tree is what the parser
    # falls back to, so both must list a file alike.
    with open_store(FIXTURES / name) as store:
        listed = (store.format, store.tensors(), store.layer_configs())

    def give_up(raw):
        raise NotUnderstood("forced")

    monkeypatch.setattr("lstm_inspect.readers.keras.store.read_tree", give_up)
    with open_store(FIXTURES / name) as store:
        assert (store.format, store.tensors(), store.layer_configs()) == listed


def write_varied(path: Path) -> None:
    """Everything the parser claims to read, as h5py writes it by default."""
    with h5py.File(path, "w") as f:
        f.attrs["vlen"] = "héllo"
        f.attrs["vlen_list"] = ["a", "", "ünï"]
        f.attrs["fixed"] = np.array([b"ab", b"c", b""], dtype="S3")
        f.attrs["fixed_scalar"] = np.bytes_(b"xyz")
        f.attrs["empty"] = h5py.Empty("f4")
        f.attrs["no_items"] = np.array([], dtype=np.float64)  # Keras' weight_names of a layer without weights
        for dtype in ("i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", ">i4", "f2", "f4", "f8", ">f8"):
            f.attrs[f"n_{dtype}"] = np.arange(6, dtype=dtype).reshape(2, 3)
            f.attrs[f"s_{dtype}"] = np.array(5, dtype=dtype)
        big = f.create_group("big")
        for i in range(300):  # several symbol table nodes under a two-level B-tree
            big.create_dataset(f"d{i}", data=np.full(i % 3 + 1, i, np.float32))
        for i in range(60):  # attributes added after the datasets: a continuation chunk
            big.attrs[f"late{i}"] = f"value {i}"
        g = f.create_group("nested/ünicode/deep")
        g.create_dataset("chunked", data=np.ones((64, 64), np.float16), chunks=(8, 8), compression="gzip")
        g.create_dataset("scalar", data=np.int64(3))
        g.create_dataset("null", data=h5py.Empty("f8"))
        g.create_dataset("text", data=np.array(["a", "b"], dtype=h5py.string_dtype()))
        g.create_dataset("opaque", data=np.zeros(4, "V2"))
        f["nested/again"] = g  # a hard link: one object, two paths
        g["loop"] = f["nested"]  # and a cycle
        f["a_type"] = np.dtype("<f4")  # a committed datatype


def test_same_tree_as_h5py_on_a_varied_file(tmp_path):
    write_varied(tmp_path / "varied.h5")
    got, expected = both((tmp_path / "varied.h5").read_bytes())
    assert got == expected
    kinds = {entry[1] for entry in got}
    assert kinds == {"group", "dataset", "other"}


def test_null_terminated_strings_end_at_their_first_nul(tmp_path):
    # h5py writes null-padded strings; other writers (libhdf5's C default) null-terminated ones.
    with h5py.File(tmp_path / "c.h5", "w") as f:
        tid = h5py.h5t.C_S1.copy()
        tid.set_size(6)
        tid.set_strpad(h5py.h5t.STR_NULLTERM)
        space = h5py.h5s.create_simple((2,))
        attr = h5py.h5a.create(f.id, b"names", tid, space)
        attr.write(np.array([b"ab\0cd", b"efg"], dtype="S6"), mtype=tid)
    got, expected = both((tmp_path / "c.h5").read_bytes())
    assert got == expected
    assert got[0][2] == [("names", [b"ab", b"efg"])]


def test_dataset_paths_walk_as_h5py_visititems(tmp_path):
    write_varied(tmp_path / "varied.h5")
    with h5py.File(tmp_path / "varied.h5") as f:
        visited: list[str] = []
        f.visititems(lambda name, obj: visited.append(name) if isinstance(obj, h5py.Dataset) else None)
    with worker_tree((tmp_path / "varied.h5").read_bytes()) as tree:
        assert _dataset_paths(tree) == visited
    with open(tmp_path / "varied.h5", "rb") as raw:
        assert _dataset_paths(read_tree(raw)) == visited


def write_legacy_weights(path: Path, layers: list[str]) -> None:
    """A Keras 2 weights-only .h5 (hdf5_format.py save_weights_to_hdf5_group) of Dense-like layers."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [name.encode() for name in layers]
        for name in layers:
            group = f.create_group(name)
            group.attrs["weight_names"] = [f"{name}/kernel:0".encode()]
            group.create_dataset(f"{name}/kernel:0", data=np.ones((2, 8), np.float32))


def test_non_ascii_layer_names_are_read_without_h5py(tmp_path):
    # h5py stores a link name that is not ASCII in a link message, not in a symbol table.
    path = tmp_path / "weights.h5"
    write_legacy_weights(path, ["encodeur_é", "tête"])
    got, expected = both(path.read_bytes())
    assert got == expected
    with open_store(path) as store:
        assert list(store.tensors()) == ["encodeur_é/kernel", "tête/kernel"]


# ---- what the parser leaves to h5py ----------------------------------------------------------------


def test_many_non_ascii_names_are_listed_by_h5py(tmp_path):
    # Past 8 links (H5G_CRT_GINFO_MAX_COMPACT) a new-style group keeps them in a fractal heap.
    path = tmp_path / "weights.h5"
    names = [f"couche_é{i}" for i in range(12)]
    write_legacy_weights(path, names)
    with open(path, "rb") as raw, pytest.raises(NotUnderstood, match="dense link storage"):
        read_tree(raw).items()
    with open_store(path) as store:
        assert list(store.tensors()) == [f"{name}/kernel" for name in names]


def keras3_weights(path: Path, **file_options) -> None:
    with h5py.File(path, "w", **file_options) as f:
        cell = f.create_group("layers/lstm/cell/vars")
        for i, shape in enumerate([(3, 16), (4, 16), (16,)]):
            cell.create_dataset(str(i), data=np.ones(shape, np.float32))


@pytest.mark.parametrize(
    "options",
    [{"libver": "latest"}, {"libver": ("v108", "latest")}, {"track_order": True}],
    ids=["superblock-v3", "superblock-v2", "creation-order"],
)
def test_newer_formats_are_listed_by_h5py(tmp_path, options):
    path = tmp_path / "model.weights.h5"
    keras3_weights(path, **options)
    with open(path, "rb") as raw, pytest.raises(NotUnderstood):
        dump(read_tree(raw))
    with open_store(path) as store:
        assert list(store.tensors()) == ["lstm/kernel", "lstm/recurrent_kernel", "lstm/bias"]
        assert store.read("lstm/bias").shape == (16,)


def test_soft_links_and_other_attribute_types_are_listed_by_h5py(tmp_path):
    path = tmp_path / "model.weights.h5"
    keras3_weights(path)
    with h5py.File(path, "r+") as f:
        f["layers/lstm/cell/vars"].attrs["name"] = True  # numpy bool: an HDF5 enum
    with open(path, "rb") as raw, pytest.raises(NotUnderstood, match="datatype"):
        read_tree(raw)["layers/lstm/cell/vars"].attrs["name"]
    with h5py.File(path, "r+") as f:
        del f["layers/lstm/cell/vars"].attrs["name"]
        f["layers/soft"] = h5py.SoftLink("/layers/lstm")
    with open(path, "rb") as raw, pytest.raises(NotUnderstood, match="soft link"):
        read_tree(raw)["layers"].items()
    with open_store(path) as store:
        assert list(store.tensors()) == ["lstm/kernel", "lstm/recurrent_kernel", "lstm/bias"]


# ---- damage ----------------------------------------------------------------------------------------


def header_messages(data: bytes, address: int) -> list[tuple[int, int, int]]:
    """(type, offset of the body, size) of the messages in the first chunk of a v1 object header."""
    size, at, found = struct.unpack_from("<I", data, address + 8)[0], address + 16, []
    while at < address + 16 + size:
        kind, length = struct.unpack_from("<HH", data, at)
        found.append((kind, at + 8, length))
        at += 8 + length
    return found


def test_a_file_cut_after_its_metadata_is_refused_as_libhdf5_does(tmp_path):
    data = (FIXTURES / "keras3" / "model.weights.h5").read_bytes()
    with pytest.raises(Damaged, match="shorter than its superblock says"):
        read_tree(io.BytesIO(data[:-1]))
    (tmp_path / "cut.weights.h5").write_bytes(data[:-1])
    with pytest.raises(CorruptFile, match="cut.weights.h5"):
        open_store(tmp_path / "cut.weights.h5")


def test_a_continuation_into_itself_is_refused(tmp_path):
    path = tmp_path / "loop.h5"
    write_varied(path)
    data = bytearray(path.read_bytes())
    address = read_tree(io.BytesIO(bytes(data)))["big"].key
    kind, body, _ = next(m for m in header_messages(data, address) if m[0] == 0x10)
    data[body : body + 16] = struct.pack("<QQ", address + 16, struct.unpack_from("<I", data, address + 8)[0])
    with pytest.raises(Damaged, match="continues into itself"):
        read_tree(io.BytesIO(bytes(data))).get("big")


def test_a_name_moved_out_of_b_tree_order_is_refused():
    # libhdf5 finds names by binary search over the B-tree keys: a name where that search does not
    # look is a name h5py cannot open, so the parser does not list it either.
    data = bytearray((FIXTURES / "keras2_h5" / "model.h5").read_bytes())
    at = data.index(b"model_weights\0")
    data[at] = ord("z")
    with pytest.raises(Damaged, match="out of order"):
        read_tree(io.BytesIO(bytes(data))).items()
    with h5py.File(io.BytesIO(bytes(data)), "r") as f:
        assert "zodel_weights" in list(f) and f.get("zodel_weights") is None  # listed, not found


def test_strings_repeating_one_heap_object_stay_within_the_read_budget(tmp_path):
    # 2,000 variable-length strings all pointing at the same 100 KB heap object would decode to
    # 200 MB from a 0.3 MB file.
    path = tmp_path / "bomb.h5"
    with h5py.File(path, "w") as f:
        f.attrs["names"] = np.array(["x" * 100_000] + ["y"] * 1999, dtype=h5py.string_dtype())
    data = bytearray(path.read_bytes())
    first = data.index(struct.pack("<I", 100_000))
    element = bytes(data[first : first + 16])
    assert data[first + 16 : first + 20] == struct.pack("<I", 1)  # the next one is "y"
    data[first + 16 : first + 16 * 2000] = element * 1999
    tracemalloc.start()
    start = time.process_time()  # CPU time: the work done, whatever else the machine runs
    try:
        with pytest.raises(Damaged, match="the same bytes over and over"):
            read_tree(io.BytesIO(bytes(data))).attrs["names"]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 << 20 and time.process_time() - start < 5


def damage_layout(path: Path, dataset: str) -> None:
    """Give a dataset's layout message an unknown class: neither h5py nor the parser can read its
    values any more, while the parser, which reads layouts only for values, still lists it."""
    data = bytearray(path.read_bytes())
    address = read_tree(io.BytesIO(bytes(data)))[dataset].key
    _, body, _ = next(m for m in header_messages(data, address) if m[0] == 0x08)
    data[body + 1] = 9  # layout message version 3: the class byte follows the version
    path.write_bytes(bytes(data))
