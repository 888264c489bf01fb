"""Hostile HDF5 and .keras files (issue #9): what points outside the file is refused before anything
is allocated, damage is refused without asking libhdf5, values are read without libhdf5 wherever
the parser reads their storage, libhdf5 runs only in a worker that a CPU limit or Ctrl-C stops,
and the JSON of a .keras has budgets. Every hostile file is made by h5py itself, or from a fixture
by a recipe; each behaviour is checked through the CLI too (one `Error:` line, no traceback, no
output file)."""

from __future__ import annotations

import io
import json
import os
import signal
import struct
import subprocess
import sys
import time
import tracemalloc
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from lstm_inspect.cli import main
from lstm_inspect.errors import CorruptFile, UnsupportedFormat
from lstm_inspect.readers import open_store
from lstm_inspect.readers.hdf5 import Damaged, H5pyWorker, NotUnderstood, OutsideFile, read_tree
from lstm_inspect.readers.hdf5 import worker as hdf5_module

from .conftest import FIXTURES, sigint_by_default
from .test_cli import assert_clean_error
from .test_fuzz import LIBHDF5_HANGS, mutate
from .test_hdf5 import KERAS_HDF5, hdf5_bytes, header_messages

ROOT = Path(__file__).resolve().parent.parent
# Files the parser lists itself, and files written in the newest format, which it leaves to the
# worker: every refusal must hold on both paths.
LIBVERS = ["earliest", "latest"]


def cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def fails_cleanly(path: Path, tmp_path: Path, *fragments: str, listing_works: bool) -> None:
    """summary, split and export all end in one Error line naming `fragments`, and leave no output;
    where only values are bad, summary still lists the file. (split reads every value for its
    statistics; `--values` would first be refused by its --max-elements guard for a huge claim.)"""
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    summary = cli("summary", str(path))
    if listing_works:
        assert summary.exit_code == 0, summary.stderr
    else:
        assert_clean_error(summary, path.name, *fragments)
    assert_clean_error(cli("split", str(path)), path.name, *fragments)
    assert_clean_error(cli("export", str(path), "-o", str(out / "out.npz")), path.name, *fragments)
    assert list(out.iterdir()) == []


def lstm_weights(path: Path, libver: str = "earliest", bias=None) -> None:
    """A Keras 3 .weights.h5 of one LSTM(4) on 3 inputs; `bias(group)` writes vars/2."""
    with h5py.File(path, "w", libver=libver) as f:
        cell = f.create_group("layers/lstm/cell/vars")
        cell.create_dataset("0", data=np.arange(48, dtype=np.float32).reshape(3, 16))
        cell.create_dataset("1", data=np.arange(64, dtype=np.float32).reshape(4, 16))
        if bias is None:
            cell.create_dataset("2", data=np.ones(16, np.float32))
        else:
            bias(cell)


@pytest.fixture
def no_libhdf5(monkeypatch):
    """Fail the test if the Keras reader starts hdf5.py's h5py worker."""

    def refuse(*args):
        raise AssertionError("libhdf5 was asked")

    monkeypatch.setattr("lstm_inspect.readers.hdf5.worker.H5pyWorker", refuse)


# ---- values, read by the parser -------------------------------------------------------------------


@pytest.mark.parametrize("name", KERAS_HDF5)
def test_every_keras_fixture_reads_without_libhdf5(name, no_libhdf5):
    with h5py.File(io.BytesIO(hdf5_bytes(FIXTURES / name))) as f, open_store(FIXTURES / name) as store:
        for info in store.tensors().values():
            h5_path = info.source.removeprefix("model.weights.h5:")
            value = store.read(info.name)
            expected = f[h5_path][()]
            assert value.dtype == expected.dtype and np.array_equal(value, expected), info.name


@pytest.mark.parametrize("name", KERAS_HDF5)
def test_every_keras_fixture_reads_the_same_through_the_worker(name, monkeypatch):
    # The worker is what the parser falls back to: it must read every value alike, scalars too.
    with open_store(FIXTURES / name) as store:
        expected = {info.name: store.read(info.name) for info in store.tensors().values()}

    def give_up(raw):
        raise NotUnderstood("forced")

    monkeypatch.setattr("lstm_inspect.readers.keras.store.read_tree", give_up)
    with open_store(FIXTURES / name) as store:
        for tensor, value in expected.items():
            got = store.read(tensor)
            assert got.dtype == value.dtype and got.shape == value.shape and np.array_equal(got, value), tensor


def write_layouts(path: Path) -> dict[str, np.ndarray]:
    """Datasets in every storage and type the parser reads, as h5py writes them."""
    rng = np.random.default_rng(9)
    values = {}
    with h5py.File(path, "w") as f:
        for dtype in ("i1", "i2", "<i4", ">i4", "i8", "u1", "u2", "u4", "u8", "f2", "<f4", ">f4", "<f8", ">f8"):
            values[f"contiguous_{dtype}"] = (rng.standard_normal((5, 7)) * 100).astype(dtype)
        values["scalar"] = np.float32(2.5)
        values["empty"] = np.zeros((0, 4), np.float32)
        values["opaque"] = np.frombuffer(rng.bytes(24), "V2")  # how Keras 3 stores bfloat16
        for name, value in values.items():
            f.create_dataset(name, data=value)
        chunked = {
            "chunked_plain": ((9, 10), {"chunks": (4, 3)}),
            "chunked_deflate": ((9, 10), {"chunks": (4, 3), "compression": "gzip"}),
            "chunked_shuffle_deflate": ((9, 10), {"chunks": (2, 5), "compression": "gzip", "shuffle": True}),
            "chunked_3d": ((5, 4, 3), {"chunks": (2, 3, 2), "compression": "gzip", "compression_opts": 9}),
            "chunked_one_big_chunk": ((3,), {"chunks": (1000,), "maxshape": (None,), "compression": "gzip"}),
        }
        for name, (shape, options) in chunked.items():
            values[name] = rng.standard_normal(shape).astype(np.float32)
            f.create_dataset(name, data=values[name], **options)
        # compact: data in the layout message itself (h5py writes it only through the low-level API)
        values["compact"] = np.arange(6, dtype=np.int16).reshape(2, 3)
        plist = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        plist.set_layout(h5py.h5d.COMPACT)
        space = h5py.h5s.create_simple((2, 3))
        h5py.h5d.create(f.id, b"compact", h5py.h5t.STD_I16LE, space, dcpl=plist).write(
            h5py.h5s.ALL, h5py.h5s.ALL, values["compact"]
        )
    return values


def test_values_are_read_by_the_parser_as_h5py_reads_them(tmp_path):
    path = tmp_path / "layouts.h5"
    values = write_layouts(path)
    with open(path, "rb") as raw, h5py.File(path) as f:
        tree = read_tree(raw)
        for name, expected in values.items():
            got = tree[name].read()
            assert got.dtype == f[name].dtype and got.shape == f[name].shape, name
            assert got.tobytes() == f[name][()].tobytes(), name
            assert got.tobytes() == np.asarray(expected).tobytes(), name


def test_a_version_1_layout_message_is_read_as_libhdf5_reads_it(tmp_path):
    # libhdf5 1.14 writes version 3 layouts, HDF5 1.4 and older wrote version 1 (H5Olayout.c):
    # dimensionality, class, 5 reserved bytes, the address, then dimensions the reader ignores for
    # contiguous data. Rewritten in place over a version 3 message, whose 24 bytes it exactly fills.
    path = tmp_path / "v1.h5"
    value = np.arange(12, dtype=np.float32).reshape(3, 4)
    with h5py.File(path, "w") as f:
        f.create_dataset("k", data=value)
    data = bytearray(path.read_bytes())
    address = read_tree(io.BytesIO(bytes(data)))["k"].key
    _, body, length = next(m for m in header_messages(data, address) if m[0] == 0x08)
    assert length == 24 and data[body : body + 2] == b"\3\1"
    data_address = struct.unpack_from("<Q", data, body + 2)[0]
    data[body : body + 24] = bytes([1, 2, 1, 0, 0, 0, 0, 0]) + struct.pack("<QII", data_address, 3, 4)
    path.write_bytes(bytes(data))
    with h5py.File(path) as f:
        assert np.array_equal(f["k"][()], value)
    with open(path, "rb") as raw:
        assert np.array_equal(read_tree(raw)["k"].read(), value)


def test_a_big_endian_weight_reads_in_native_order(tmp_path, no_libhdf5):
    path = tmp_path / "be.weights.h5"
    lstm_weights(path, bias=lambda cell: cell.create_dataset("2", data=np.arange(16, dtype=">f4")))
    with open_store(path) as store:
        bias = store.read("lstm/bias")
    assert bias.dtype == np.dtype("float32") and bias.dtype.isnative and bias.tolist() == list(range(16))


def test_filters_the_parser_does_not_read_go_to_the_worker(tmp_path):
    path = tmp_path / "fletcher.weights.h5"
    checksummed = {"chunks": (4,), "fletcher32": True}
    lstm_weights(path, bias=lambda cell: cell.create_dataset("2", data=np.arange(16.0), **checksummed))
    with open(path, "rb") as raw, pytest.raises(NotUnderstood, match="filter 3"):
        read_tree(raw)["layers/lstm/cell/vars/2"].read()
    with open_store(path) as store:
        assert store.read("lstm/bias").tolist() == list(range(16))


def test_a_deflated_keras_reads_through_the_worker_where_the_parser_does_not(tmp_path):
    # The worker opens the deflated zip member itself.
    weights = tmp_path / "model.weights.h5"
    lstm_weights(
        weights, bias=lambda cell: cell.create_dataset("2", data=np.arange(16.0), chunks=(4,), fletcher32=True)
    )
    config = {
        "class_name": "Sequential",
        "config": {"layers": [{"class_name": "LSTM", "config": {"name": "enc", "units": 4}}]},
    }
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.write(weights, "model.weights.h5")
    with open_store(path) as store:
        assert store.read("enc/bias").tolist() == list(range(16))
        assert store.read("enc/kernel").tolist() == np.arange(48, dtype=np.float32).reshape(3, 16).tolist()


# ---- what points outside the file ----------------------------------------------------------------


@pytest.mark.parametrize("libver", LIBVERS)
@pytest.mark.parametrize("target", ["/etc/passwd", "../../secret"])
def test_external_storage_is_refused_naming_the_outside_file(tmp_path, libver, target):
    (tmp_path / "secret").write_bytes(b"password=hunter2\n" * 8)
    folder = tmp_path / "a" / "b"
    folder.mkdir(parents=True)
    path = folder / "model.weights.h5"
    lstm_weights(path, libver, lambda cell: cell.create_dataset("2", (16,), "f4", external=[(target, 0, 64)]))
    with h5py.File(path) as f:  # libhdf5 itself reads whatever it points at
        assert f["layers/lstm/cell/vars/2"].id.get_create_plist().get_external(0)[0] == target.encode()
    with open_store(path) as store, pytest.raises(UnsupportedFormat) as raised:
        store.read("lstm/bias")
    assert f"tensor 'lstm/bias' (layers/lstm/cell/vars/2) keeps its values in other files, {target!r}" in str(
        raised.value
    )
    fails_cleanly(path, tmp_path, "'lstm/bias'", repr(target), "HDF5 external storage", listing_works=True)


@pytest.mark.parametrize("libver", LIBVERS)
def test_a_huge_external_storage_claim_is_refused_before_allocating(tmp_path, libver):
    # A kernel of 2**36 x 16 floats, 4 TiB, "stored" in /dev/zero: refused from the header, with
    # nothing allocated (numpy's MemoryError was the campaign's traceback).
    path = tmp_path / "huge.weights.h5"
    with h5py.File(path, "w", libver=libver) as f:
        cell = f.create_group("layers/lstm/cell/vars")
        cell.create_dataset("0", (2**36, 16), "f4", external=[("/dev/zero", 0, 2**42)])
        cell.create_dataset("1", data=np.ones((4, 16), np.float32))
        cell.create_dataset("2", data=np.ones(16, np.float32))
    tracemalloc.start()
    try:
        with open_store(path) as store, pytest.raises(UnsupportedFormat, match="'/dev/zero'"):
            store.read("lstm/kernel")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20
    fails_cleanly(path, tmp_path, "'lstm/kernel'", "'/dev/zero'", listing_works=True)


@pytest.mark.parametrize("libver", LIBVERS)
@pytest.mark.parametrize("source", ["source.h5", "missing.h5"])
def test_a_virtual_dataset_is_refused_naming_its_source(tmp_path, libver, source):
    # libhdf5 reads a virtual dataset from other files, and a source that is missing as zeros.
    with h5py.File(tmp_path / "source.h5", "w") as f:
        f.create_dataset("bias", data=np.full(16, 7, np.float32))

    def virtual(cell):
        layout = h5py.VirtualLayout(shape=(16,), dtype="f4")
        layout[:] = h5py.VirtualSource(source, "bias", shape=(16,))
        cell.create_virtual_dataset("2", layout)

    path = tmp_path / "model.weights.h5"
    lstm_weights(path, libver, virtual)
    fails_cleanly(path, tmp_path, "'lstm/bias'", "HDF5 virtual dataset", repr(source), listing_works=True)


@pytest.mark.parametrize("libver", LIBVERS)
def test_an_external_link_is_refused_naming_the_other_file(tmp_path, libver):
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_dataset("bias", data=np.full(16, 7, np.float32))
    path = tmp_path / "model.weights.h5"

    def linked(cell):
        cell["2"] = h5py.ExternalLink("other.h5", "/bias")

    lstm_weights(path, libver, linked)
    with h5py.File(path) as f:  # h5py follows it, opening the other file
        assert f["layers/lstm/cell/vars/2"][0] == 7
    fails_cleanly(path, tmp_path, "'other.h5'", "HDF5 external link", listing_works=False)


# ---- damage, refused -----------------------------------------------------------------------------


@pytest.mark.parametrize("libver", LIBVERS)
def test_a_partly_written_chunked_weight_is_refused_not_read_as_zeros(tmp_path, libver):
    def partly(cell):
        bias = cell.create_dataset("2", (16,), "f4", chunks=(4,))
        bias[:4] = 1  # the other three chunks are never written: libhdf5 reads them as zeros

    path = tmp_path / "partial.weights.h5"
    lstm_weights(path, libver, partly)
    with h5py.File(path) as f:
        assert f["layers/lstm/cell/vars/2"][()].tolist() == [1] * 4 + [0] * 12
    fails_cleanly(path, tmp_path, "'lstm/bias'", "stores 1 of them", "a partly written dataset", listing_works=True)


def test_damage_is_refused_without_libhdf5(tmp_path, no_libhdf5):
    # The inputs on which libhdf5 loops forever (test_fuzz.py LIBHDF5_HANGS), through the CLI.
    for name, (fixture, edits) in LIBHDF5_HANGS.items():
        path = tmp_path / f"{name}.h5"
        path.write_bytes(mutate((FIXTURES / fixture).read_bytes(), edits))
        for command in ("summary", "split"):
            assert_clean_error(cli(command, str(path)), path.name, "the HDF5 file is truncated or damaged")


def test_a_weight_declaring_more_than_the_file_holds_is_refused_before_allocating(tmp_path, no_libhdf5):
    # A kernel of 2**36 x 16 floats, 4 TiB: h5py writes the header and no data ("late" allocation)
    path = tmp_path / "unwritten.weights.h5"
    with h5py.File(path, "w") as f:
        cell = f.create_group("layers/lstm/cell/vars")
        cell.create_dataset("0", (2**36, 16), "f4")
        cell.create_dataset("1", data=np.ones((4, 16), np.float32))
        cell.create_dataset("2", data=np.ones(16, np.float32))
    tracemalloc.start()
    try:
        with open_store(path) as store, pytest.raises(CorruptFile, match="declares 4398046511104 bytes"):
            store.read("lstm/kernel")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20
    fails_cleanly(path, tmp_path, "'lstm/kernel'", "the file stores none of them", listing_works=True)
    # and one whose data address points near the end of the file
    path = tmp_path / "moved.weights.h5"
    lstm_weights(path)
    data = bytearray(path.read_bytes())
    address = read_tree(io.BytesIO(bytes(data)))["layers/lstm/cell/vars/1"].key
    _, body, _ = next(m for m in header_messages(data, address) if m[0] == 0x08)
    data[body + 2 : body + 10] = struct.pack("<Q", len(data) - 10)
    path.write_bytes(bytes(data))
    fails_cleanly(path, tmp_path, "'lstm/recurrent_kernel'", "run past the end of the file", listing_works=True)


def test_a_chunk_that_does_not_inflate_is_damage(tmp_path, no_libhdf5):
    path = tmp_path / "model.weights.h5"
    lstm_weights(path, bias=lambda cell: cell.create_dataset("2", data=np.ones(16, "f4"), compression="gzip"))
    with h5py.File(path) as f:
        chunk = f["layers/lstm/cell/vars/2"].id.get_chunk_info(0)
    data = bytearray(path.read_bytes())
    data[chunk.byte_offset + 2 : chunk.byte_offset + chunk.size] = b"\xff" * (chunk.size - 2)
    path.write_bytes(bytes(data))
    fails_cleanly(path, tmp_path, "'lstm/bias'", "a chunk does not inflate", listing_works=True)


@pytest.mark.parametrize("libver", LIBVERS)
@pytest.mark.parametrize(
    ("dtype", "name"), [(np.dtype([("re", "f4"), ("im", "f4")]), "compound"), (np.dtype(bool), "enum")]
)
def test_a_weight_of_a_type_that_is_not_numbers_is_refused_naming_it(tmp_path, libver, dtype, name):
    path = tmp_path / "model.weights.h5"
    lstm_weights(path, libver, lambda cell: cell.create_dataset("2", data=np.zeros(16, dtype)))
    with open_store(path) as store:
        assert store.tensors()["lstm/bias"].dtype == name
    fails_cleanly(path, tmp_path, "'lstm/bias'", f"is of the HDF5 type {name!r}, not numbers", listing_works=True)


# ---- libhdf5, guarded ----------------------------------------------------------------------------


def libhdf5_hang(tmp_path: Path) -> Path:
    """A file the parser leaves to the worker, on which libhdf5 loops forever: the damaged global
    heap of LIBHDF5_HANGS (under `model_config`), and the `keras_version` attributes turned from
    variable-length strings into variable-length sequences (class bits 0-3: 1 -> 0, FMT3 IV.A.2.d),
    which libhdf5 reads and the parser does not, so that it gives the file up before the damage."""
    fixture, edits = LIBHDF5_HANGS["a_damaged_heap_under_a_string_attribute"]
    data = bytearray(mutate((FIXTURES / fixture).read_bytes(), edits))
    at = data.find(b"keras_version\0")
    while at != -1:
        body = at - 8  # a version 1 attribute message: version, reserved, 3 sizes, the padded name
        name_size = struct.unpack_from("<H", data, body + 2)[0]
        datatype = body + 8 + (name_size + 7) // 8 * 8
        assert data[body] == 1 and data[datatype] & 15 == 9 and data[datatype + 1] & 15 == 1
        data[datatype + 1] &= 0xF0
        at = data.find(b"keras_version\0", at + 1)
    path = tmp_path / "hang.h5"
    path.write_bytes(bytes(data))
    with open(path, "rb") as raw, pytest.raises(NotUnderstood, match="datatype"):
        read_tree(raw).attrs["keras_version"]
    return path


def test_a_libhdf5_loop_ends_when_the_worker_has_spent_its_cpu_time(tmp_path, monkeypatch):
    monkeypatch.setattr(hdf5_module, "WORKER_CPU_SECONDS", 1)
    path = libhdf5_hang(tmp_path)
    result = cli("summary", str(path))
    assert_clean_error(result, "hang.h5: the HDF5 file is truncated or damaged (libhdf5 did not finish within 1 s")
    with open(path, "rb") as raw:
        worker = H5pyWorker(raw.fileno(), 0, path.stat().st_size)
        try:
            with pytest.raises(Damaged, match="did not finish"):
                worker.tree()
            with pytest.raises(Damaged, match="did not finish"):  # and says so again, not "closed"
                worker.read("/model_weights/lstm/lstm/kernel:0")
        finally:
            worker.close()


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()  # state is field 3; utime, stime 14 and 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process trees and CPU times from /proc")
def test_ctrl_c_stops_a_command_inside_a_libhdf5_loop(tmp_path):
    # The worker would spin for its 10 CPU seconds; Ctrl-C ends the command at once (about 0.03 s
    # here, measured by hand), and the worker with it. Without the worker, neither Ctrl-C nor any
    # limit stopped it.
    path = libhdf5_hang(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "lstm_inspect", "summary", str(path)]
    process = subprocess.Popen(
        command, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path, preexec_fn=sigint_by_default
    )
    try:
        while not (workers := children(process.pid)) or cpu_seconds(workers[0]) < 0.5:
            assert process.poll() is None  # the worker is inside libhdf5's loop (it spins)
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)  # a guard only: the worker's own limit is 10 s
    finally:
        process.kill()
    assert process.returncode == 130 and err.strip() == "Interrupted."
    assert not Path(f"/proc/{workers[0]}").exists()


ORPHANED = """
import os, sys
from lstm_inspect.readers.hdf5 import worker as hdf5
hdf5.WORKER_CPU_SECONDS = 600  # so that only the parent's death can end it within the test
raw = open(sys.argv[1], "rb")
worker = hdf5.H5pyWorker(raw.fileno(), 0, os.fstat(raw.fileno()).st_size)
print(worker._process.pid, flush=True)
worker.tree()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_the_worker_dies_with_its_parent(tmp_path):
    # SIGKILL or SIGTERM gives the parent no chance to kill its worker: the kernel does it.
    path = libhdf5_hang(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen([sys.executable, "-c", ORPHANED, str(path)], stdout=subprocess.PIPE, text=True, env=env)
    worker = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    for _ in range(600):  # PR_SET_PDEATHSIG is immediate; this only waits for the kernel to reap
        if not Path(f"/proc/{worker}").exists():
            break
        time.sleep(0.05)
    assert not Path(f"/proc/{worker}").exists()


# ---- .keras zips ---------------------------------------------------------------------------------


def deflated_keras(path: Path) -> None:
    """The keras3 fixture re-zipped with every member deflated, as a user's zip tool might."""
    with (
        zipfile.ZipFile(FIXTURES / "keras3" / "model.keras") as source,
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as copy,
    ):
        for info in source.infolist():
            copy.writestr(info.filename, source.read(info))


def test_damaged_deflated_keras_members_are_one_clean_line_for_every_command(tmp_path):
    original = tmp_path / "original.keras"
    deflated_keras(original)
    data = original.read_bytes()
    failed = 0
    # 40 bytes flipped, one at a time, spread over the members' deflated data and the directory
    for offset in range(40, len(data), len(data) // 40):
        path = tmp_path / "model.keras"
        damaged = bytearray(data)
        damaged[offset] ^= 0x55
        path.write_bytes(bytes(damaged))
        for args in (["summary", "--no-verify"], ["summary"], ["split", "--no-verify"], ["split"]):
            result = cli(args[0], str(path), *args[1:])  # a traceback would raise here
            if result.exit_code:
                assert_clean_error(result, "model.keras")
                failed += 1
    assert failed > 100  # most flips are seen: deflate streams and CRC-32s catch them


def set_crc(path: Path, member: str, crc: int) -> None:
    """Overwrite a member's CRC-32 in its local header (+14) and its central directory record (+16)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    data[info.header_offset + 14 : info.header_offset + 18] = crc.to_bytes(4, "little")
    pos = data.find(b"PK\x01\x02")
    while pos != -1:
        name_length = int.from_bytes(data[pos + 28 : pos + 30], "little")
        if data[pos + 46 : pos + 46 + name_length] == member.encode():
            data[pos + 16 : pos + 20] = crc.to_bytes(4, "little")
        pos = data.find(b"PK\x01\x02", pos + 4)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("deflated", [False, True], ids=["stored", "deflated"])
def test_a_weights_member_that_fails_its_crc_is_refused(tmp_path, deflated):
    path = tmp_path / "model.keras"
    if deflated:
        deflated_keras(path)
    else:
        path.write_bytes((FIXTURES / "keras3" / "model.keras").read_bytes())
    with zipfile.ZipFile(path) as archive:
        set_crc(path, "model.weights.h5", archive.getinfo("model.weights.h5").CRC ^ 1)
    message = "model.weights.h5 is damaged (Bad CRC-32" if deflated else "model.weights.h5 fails its CRC-32 check"
    assert_clean_error(cli("split", str(path)), "model.keras", message)
    if deflated:  # zipfile checks the CRC-32 whenever a read reaches the member's end, as listing does
        assert_clean_error(cli("summary", str(path), "--no-verify"), "model.keras", message)
    else:  # listing reads only metadata; --no-verify reads the values anyway
        assert cli("summary", str(path)).exit_code == 0
        assert cli("split", str(path), "--no-verify").exit_code == 0


def write_config_bomb(path: Path, repeats: int, declared: int | None = None) -> None:
    """A .keras whose deflated config.json is `[` then `[],` `repeats` million times: written in
    pieces, so the test itself stays small. `declared`: the size its directory claims."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("config.json", "w") as f:
            f.write(b"[")
            for _ in range(repeats):
                f.write(b"[]," * 1_000_000)
            f.write(b"[]]")
        with zipfile.ZipFile(FIXTURES / "keras3" / "model.keras") as source:
            archive.writestr("model.weights.h5", source.read("model.weights.h5"))
    if declared is not None:
        data = bytearray(path.read_bytes())
        pos = data.find(b"PK\x01\x02")  # config.json's record in the central directory (APPNOTE 4.3.12)
        data[pos + 24 : pos + 28] = declared.to_bytes(4, "little")
        path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("repeats", "declared", "message"),
    [
        (23, None, "config.json claims 69000004 bytes, more than the 67108864"),  # the campaign's was 240 MB
        (23, 3000, "cannot read config.json"),  # the same, its size understated: zipfile stops there
        (10, None, "config.json holds some 20000002 JSON values, more than the 4000000"),  # 30 MB
    ],
    ids=["69-MB", "69-MB-understated", "10-million-values"],
)
def test_a_config_bomb_is_refused_in_bounded_memory(tmp_path, repeats, declared, message):
    path = tmp_path / "bomb.keras"
    write_config_bomb(path, repeats, declared)
    tracemalloc.start()
    try:
        with pytest.raises(CorruptFile, match=message):
            open_store(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100 << 20  # json.loads of the 30 MB one alone would hold about 1 GB
    assert_clean_error(cli("summary", str(path)), "bomb.keras", "config.json")


# ---- thousands of layers -------------------------------------------------------------------------


def many_layers(path: Path, count: int) -> None:
    """A Keras 2 weights-only .h5 of `count` tiny LSTM layers, `layer_names` split as Keras splits an
    attribute over 64 KiB (hdf5_format.py save_attributes_to_hdf5_group)."""
    names = [f"lstm_{i}" for i in range(count)]
    with h5py.File(path, "w") as f:
        for i in range(0, count, 2000):
            f.attrs[f"layer_names{i // 2000}"] = [n.encode() for n in names[i : i + 2000]]
        for name in names:
            group = f.create_group(name)
            weights = {"kernel": (3, 8), "recurrent_kernel": (2, 8), "bias": (8,)}
            group.attrs["weight_names"] = [f"{name}/lstm_cell/{w}:0".encode() for w in weights]
            for weight, shape in weights.items():
                group.create_dataset(f"{name}/lstm_cell/{weight}:0", data=np.ones(shape, np.float32))


def python_calls(call) -> int:
    calls = 0

    def count(frame, event, arg):
        nonlocal calls
        calls += event == "call"

    sys.setprofile(count)
    try:
        call()
    finally:
        sys.setprofile(None)
    return calls


def test_listing_and_reading_stay_linear_in_the_number_of_layers(tmp_path):
    # Counted in Python calls, not seconds: twice the layers must cost (about) twice the calls.
    def list_and_read(path):
        def run():
            with open_store(path) as store:
                for name in store.tensors():
                    store.read(name)

        return run

    many_layers(tmp_path / "warm.h5", 2)
    list_and_read(tmp_path / "warm.h5")()  # imports and first-use caches out of the count
    costs = []
    for count in (150, 300):
        many_layers(tmp_path / f"{count}.h5", count)
        costs.append(python_calls(list_and_read(tmp_path / f"{count}.h5")))
    assert costs[1] < 2.1 * costs[0], costs


def test_attribute_values_come_back_from_the_worker_unchanged(tmp_path):
    path = tmp_path / "attrs.h5"
    with h5py.File(path, "w") as f:
        f.attrs["fixed"] = np.array([b"ab", b"\x00\xff"], dtype="S2")
        f.attrs["vlen"] = "héllo"
        f.attrs["numbers"] = np.array([1.5, np.nan, np.inf])
        f.attrs["big"] = np.uint64(2**64 - 1)
    with open(path, "rb") as raw:
        worker = H5pyWorker(raw.fileno(), 0, path.stat().st_size)
        try:
            attrs = dict(worker.tree().attrs)
        finally:
            worker.close()
    assert attrs["fixed"] == [b"ab", b"\x00\xff"] and attrs["vlen"] == "héllo" and attrs["big"] == 2**64 - 1
    assert attrs["numbers"][0] == 1.5 and np.isnan(attrs["numbers"][1]) and attrs["numbers"][2] == np.inf


def test_the_parser_refuses_outside_storage_itself(tmp_path):
    path = tmp_path / "external.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("b", (4,), "f4", external=[("/etc/passwd", 0, 16)])
    with open(path, "rb") as raw, pytest.raises(OutsideFile, match="'/etc/passwd'"):
        read_tree(raw)["b"].read()
