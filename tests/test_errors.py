"""Bad input through the CLI: every case ends in one line on stderr that names the file and
what is wrong, a non-zero exit, no traceback, and nothing left in the output directory.

Each case builds its broken input from a real fixture (or writes it the way the format says)
and is run through `summary`, `split` and `export -o`; a case whose index is intact but whose
tensor data is bad still lists (`summary` exits 0) and fails as soon as a value is read.
"""

from __future__ import annotations

import builtins
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from lstm_inspect.cli import main
from lstm_inspect.writers.npz import decode_key

from .conftest import FIXTURES, no_recurrent_layers, sigint_by_default
from .test_cli import assert_clean_error
from .test_hdf5 import damage_layout, keras3_weights
from .test_keras_reader import TINY_CONFIG, _keras_zip, _set_declared_size, _tiny_weights_h5
from .test_tf_bundle import entry, pb, write_bundle

ROOT = Path(__file__).resolve().parent.parent
LFS_POINTER = (
    b"version https://git-lfs.github.com/spec/v1\n"
    b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    b"size 79368\n"
)


def cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def copy_fixture(name: str, tmp_path: Path) -> Path:
    """A writable copy of fixtures/<name>; returns the copied directory."""
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


# ---- the cases -------------------------------------------------------------------------------------

OPEN, READ = "open", "read"  # where a case fails: opening (every command) or reading values (split, export)
CASES: dict[str, tuple[str, Callable[[Path], tuple[Path, tuple[str, ...]]]]] = {}


def case(when: str) -> Callable:
    """Register a builder: tmp_path -> (path to give the CLI, fragments the error line must hold)."""

    def register(build: Callable[[Path], tuple[Path, tuple[str, ...]]]) -> Callable:
        CASES[build.__name__] = (when, build)
        return build

    return register


@case(OPEN)
def path_missing(tmp_path):
    return tmp_path / "nope.ckpt", ("nope.ckpt", "no such file")


@case(OPEN)
def directory_without_state_file(tmp_path):
    run = copy_fixture("tf1_basic", tmp_path)
    (run / "checkpoint").unlink()
    # The message lists the checkpoint prefixes it did find.
    return run, ("tf1_basic", "no `checkpoint` state file", "model.ckpt")


@case(OPEN)
def directory_without_checkpoint(tmp_path):
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty", ("empty", "no `checkpoint` state file")


@case(OPEN)
def state_file_naming_a_missing_prefix(tmp_path):
    run = copy_fixture("tf1_basic", tmp_path)
    (run / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-500"\n')
    return run, ("checkpoint", "names checkpoint 'model.ckpt-500'", "model.ckpt-500.index")


@case(OPEN)
def state_file_without_a_path(tmp_path):
    run = copy_fixture("tf1_basic", tmp_path)
    (run / "checkpoint").write_text("all_model_checkpoint_paths: 3\n")
    return run, ("checkpoint", "no model_checkpoint_path")


@case(OPEN)
def index_of_random_bytes(tmp_path):
    run = copy_fixture("tf1_basic", tmp_path)
    index = run / "model.ckpt.index"
    index.write_bytes(np.random.default_rng(4).bytes(index.stat().st_size))
    return run / "model.ckpt", ("model.ckpt.index", "bad magic")


@case(OPEN)
def index_with_wrong_magic(tmp_path):
    run = copy_fixture("tf1_basic", tmp_path)
    flip(run / "model.ckpt.index", (run / "model.ckpt.index").stat().st_size - 3)
    return run / "model.ckpt", ("model.ckpt.index", "bad magic")


@case(OPEN)
def index_with_bad_block_crc(tmp_path):
    run = copy_fixture("tf1_basic", tmp_path)
    flip(run / "model.ckpt.index", 30)  # inside the first (data) block
    return run / "model.ckpt", ("model.ckpt.index", "fails its CRC-32C check")


def _rewrite_footer_handles(index: Path, handles: bytes) -> None:
    # The footer (format.cc Footer) is two BlockHandles in 40 bytes, then the magic number; it has
    # no checksum of its own.
    data = bytearray(index.read_bytes())
    data[-48:-8] = handles.ljust(40, b"\0")[:40]
    index.write_bytes(bytes(data))


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


@case(OPEN)
def index_block_handle_past_the_end(tmp_path):
    run = copy_fixture("tf1_basic", tmp_path)
    _rewrite_footer_handles(run / "model.ckpt.index", _varint(0) + _varint(0) + _varint(200) + _varint(100))
    return run / "model.ckpt", ("model.ckpt.index", "block at byte 200 runs past the end of the file")


@case(OPEN)
def index_block_of_huge_declared_size(tmp_path):
    run = copy_fixture("tf1_basic", tmp_path)
    _rewrite_footer_handles(run / "model.ckpt.index", _varint(0) + _varint(0) + _varint(0) + _varint(2**62))
    return run / "model.ckpt", ("model.ckpt.index", "block at byte 0 runs past the end of the file")


@case(OPEN)
def index_footer_varint_that_never_ends(tmp_path):
    run = copy_fixture("tf1_basic", tmp_path)
    _rewrite_footer_handles(run / "model.ckpt.index", b"\xff" * 40)
    return run / "model.ckpt", ("model.ckpt.index", "varint is longer than 10 bytes")


def _lstm_bundle(tmp_path: Path, kernel: bytes, bias: bytes, dtype: int = 1, sizes: tuple[int, int] | None = None):
    """A hand-made bundle holding one BasicLSTMCell (3 inputs, 2 units): kernel [5, 8], bias [8]."""
    prefix = tmp_path / "lstm" / "model.ckpt"
    prefix.parent.mkdir()
    kernel_size, bias_size = sizes or (len(kernel), len(bias))
    write_bundle(
        str(prefix),
        {
            b"rnn/basic_lstm_cell/kernel": entry(dtype, (5, 8), kernel_size, kernel),
            b"rnn/basic_lstm_cell/bias": entry(1, (8,), bias_size, bias, offset=len(kernel)),
        },
        kernel + bias,
    )
    return prefix


KERNEL = np.arange(40, dtype=np.float32).tobytes()
BIAS = np.ones(8, np.float32).tobytes()


@case(OPEN)
def index_entry_varint_that_never_ends(tmp_path):
    # A well-formed table (checksums and all) whose BundleEntryProto has a varint of 0xff bytes.
    prefix = tmp_path / "v" / "model.ckpt"
    prefix.parent.mkdir()
    write_bundle(str(prefix), {b"rnn/basic_lstm_cell/kernel": pb(1, 1) + b"\x20" + b"\xff" * 16})
    return prefix, ("model.ckpt.index", "varint is longer than 10 bytes")


@case(READ)
def entry_of_huge_declared_size(tmp_path):
    # dtype × shape agree with the declared size, which the 192-byte data file cannot hold.
    prefix = tmp_path / "huge" / "model.ckpt"
    prefix.parent.mkdir()
    huge = {
        b"rnn/basic_lstm_cell/kernel": entry(1, (2**28, 2**28), 2**58),
        b"rnn/basic_lstm_cell/bias": entry(1, (2**28,), 2**30),
    }
    write_bundle(str(prefix), huge, KERNEL + BIAS)
    return prefix, ("model.ckpt.data-00000-of-00001", "of a 192-byte file")


@case(OPEN)
def entry_of_a_shape_no_array_can_have(tmp_path):
    # Zero elements, so zero bytes, yet numpy refuses the shape: 2**62 × 2**62 does not fit in 64 bits.
    prefix = tmp_path / "wide" / "model.ckpt"
    prefix.parent.mkdir()
    write_bundle(str(prefix), {b"rnn/basic_lstm_cell/kernel": entry(1, (0, 2**62, 2**62), 0)})
    return prefix, ("model.ckpt.index", "too large for any array")


@case(READ)
def entry_size_disagreeing_with_dtype_and_shape(tmp_path):
    prefix = _lstm_bundle(tmp_path, KERNEL, BIAS, sizes=(len(KERNEL) - 4, len(BIAS)))
    return prefix, ("model.ckpt.index", "stored as 156 bytes, but float32 [5, 8] needs 160")


@case(READ)
def entry_of_unknown_dtype(tmp_path):
    prefix = _lstm_bundle(tmp_path, KERNEL, BIAS, dtype=99)
    return prefix, ("model.ckpt", "rnn/basic_lstm_cell/kernel", "dtype unknown-99")


@case(READ)
def data_shard_missing(tmp_path):
    run = copy_fixture("tf1_basic", tmp_path)
    (run / "model.ckpt.data-00000-of-00001").unlink()
    return run / "model.ckpt", ("model.ckpt.data-00000-of-00001", "cannot open data shard 1 of 1", "copy every")


@case(READ)
def one_of_two_data_shards_missing(tmp_path):
    run = copy_fixture("tf1_two_shards", tmp_path)
    (run / "model.ckpt.data-00001-of-00002").unlink()
    return run / "model.ckpt", ("model.ckpt.data-00001-of-00002", "cannot open data shard 2 of 2")


@case(READ)
def data_shard_truncated(tmp_path):
    run = copy_fixture("tf1_basic", tmp_path)
    os.truncate(run / "model.ckpt.data-00000-of-00001", 1000)
    return run / "model.ckpt", ("model.ckpt.data-00000-of-00001", "of a 1000-byte file")


@case(READ)
def data_shard_with_a_flipped_byte(tmp_path):
    run = copy_fixture("tf1_basic", tmp_path)
    flip(run / "model.ckpt.data-00000-of-00001", 4000)
    return run / "model.ckpt", ("model.ckpt.data-00000-of-00001", "fails its CRC-32C check")


@case(OPEN)
def v1_checkpoint(tmp_path):
    # A real pre-2017 single-file checkpoint, written by TF's V1 saver: refused, saying what it is.
    return FIXTURES / "tf1_v1_format" / "model.ckpt", ("model.ckpt", "V1 TensorFlow checkpoint", "save it again")


@case(OPEN)
def v1_checkpoint_directory(tmp_path):
    return FIXTURES / "tf1_v1_format", ("model.ckpt", "V1 TensorFlow checkpoint")


@case(OPEN)
def hdf5_that_is_not_keras(tmp_path):
    path = tmp_path / "images.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=np.zeros((2, 4, 4)))
    return path, ("images.h5", "an HDF5 file without Keras weights")


@case(OPEN)
def h5_that_is_not_hdf5(tmp_path):
    path = tmp_path / "model.h5"
    path.write_bytes(b"PK\x03\x04 not hdf5 at all")
    return path, ("model.h5", "not an HDF5 file")


@case(OPEN)
def h5_truncated(tmp_path):
    path = tmp_path / "model.h5"
    path.write_bytes((FIXTURES / "keras2_h5" / "model.h5").read_bytes()[:5000])
    return path, ("model.h5", "truncated or damaged")


@case(OPEN)
def dot_keras_without_weights(tmp_path):
    path = tmp_path / "model.keras"
    _keras_zip(path, {"config.json": TINY_CONFIG, "metadata.json": b"{}"})
    return path, ("model.keras", "has no model.weights.h5")


@case(OPEN)
def dot_keras_with_a_broken_config(tmp_path):
    path = tmp_path / "model.keras"
    _keras_zip(path, {"config.json": b'{"class_name": "Seq', "model.weights.h5": _tiny_weights_h5(tmp_path)})
    return path, ("model.keras", "config.json is not valid JSON")


@case(OPEN)
def dot_keras_with_a_config_nested_too_deep(tmp_path):
    path = tmp_path / "model.keras"
    _keras_zip(path, {"config.json": b"[" * 100_000 + b"]" * 100_000, "model.weights.h5": _tiny_weights_h5(tmp_path)})
    return path, ("model.keras", "config.json is not valid JSON")


@case(OPEN)
def dot_keras_with_a_layer_config_nested_900_deep(tmp_path):
    # Deep enough to crash a recursive copy or walk, shallow enough for json to parse.
    config = json.loads(TINY_CONFIG)
    config["config"]["layers"][0]["config"]["deep"] = json.loads("[" * 900 + "]" * 900)
    path = tmp_path / "model.keras"
    _keras_zip(path, {"config.json": json.dumps(config).encode(), "model.weights.h5": _tiny_weights_h5(tmp_path)})
    return path, ("model.keras", "config.json nests deeper than")


@case(OPEN)
def dot_keras_with_a_bomb_sized_entry(tmp_path):
    path = tmp_path / "model.keras"
    _keras_zip(path, {"config.json": TINY_CONFIG, "model.weights.h5": _tiny_weights_h5(tmp_path)}, zipfile.ZIP_DEFLATED)
    _set_declared_size(path, "config.json", 0xFFFF_FFF0)
    return path, ("model.keras", "the zip entry config.json declares 4294967280 bytes")


@case(READ)
def keras_dataset_of_huge_declared_size(tmp_path):
    # HDF5 lets a chunked dataset declare any shape and store no chunk: 4 TiB in a 6 KiB file.
    path = tmp_path / "huge.weights.h5"
    with h5py.File(path, "w") as f:
        cell = f.create_group("layers/lstm/cell/vars")
        cell.create_dataset("0", shape=(2**20, 2**20), dtype="f4", chunks=(1, 1024))
        cell.create_dataset("1", shape=(2**18, 2**20), dtype="f4", chunks=(1, 1024))
        cell.create_dataset("2", shape=(2**20,), dtype="f4", chunks=(1024,))
    return path, ("huge.weights.h5", "lstm/kernel", "4398046511104 bytes")


@case(READ)
def keras_tensor_that_h5py_cannot_open(tmp_path):
    # Listed by readers/hdf5.py, which reads the values too: a layout libhdf5 could not read either
    # is damage, found before anything is read.
    path = tmp_path / "model.weights.h5"
    keras3_weights(path)
    damage_layout(path, "layers/lstm/cell/vars/2")
    return path, ("model.weights.h5", "'lstm/bias'", "a data layout message of an unknown class")


@case(OPEN)
def lfs_pointer_as_h5(tmp_path):
    path = tmp_path / "model.h5"
    path.write_bytes(LFS_POINTER)
    return path, ("model.h5", "Git LFS pointer", "git lfs pull")


@case(OPEN)
def lfs_pointer_as_dot_keras(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(LFS_POINTER)
    return path, ("model.keras", "Git LFS pointer", "git lfs pull")


@case(OPEN)
def lfs_pointer_as_index_given_by_prefix(tmp_path):
    run = copy_fixture("tf1_basic", tmp_path)
    (run / "model.ckpt.index").write_bytes(LFS_POINTER)
    return run / "model.ckpt", ("model.ckpt.index", "Git LFS pointer", "git lfs pull")


@case(OPEN)
def lfs_pointer_as_index_in_a_directory(tmp_path):
    run = copy_fixture("tf1_basic", tmp_path)
    (run / "model.ckpt.index").write_bytes(LFS_POINTER)
    return run, ("model.ckpt.index", "Git LFS pointer", "git lfs pull")


@case(OPEN)
def lfs_pointer_as_state_file(tmp_path):
    run = copy_fixture("tf1_basic", tmp_path)
    (run / "checkpoint").write_bytes(LFS_POINTER)
    return run, ("checkpoint", "Git LFS pointer", "git lfs pull")


@case(READ)
def lfs_pointer_as_data_shard(tmp_path):
    run = copy_fixture("tf1_basic", tmp_path)
    (run / "model.ckpt.data-00000-of-00001").write_bytes(LFS_POINTER)
    return run / "model.ckpt", ("model.ckpt.data-00000-of-00001", "Git LFS pointer", "git lfs pull")


COMMANDS = ("summary", "split", "export")


def run_command(command: str, path: Path, out_dir: Path, *extra: str):
    out_dir.mkdir(exist_ok=True)
    args = [command, str(path), *extra]
    if command == "export":
        args += ["-o", str(out_dir / "out.npz")]
    return cli(*args)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_fails_cleanly(name, command, tmp_path):
    when, build = CASES[name]
    path, fragments = build(tmp_path)
    out = tmp_path / "out"
    result = run_command(command, path, out)
    if when == READ and command == "summary":
        # The index (or the HDF5 structure) is fine: listing works without reading a value.
        assert result.exit_code == 0, result.stderr
        assert "rnn/basic_lstm_cell" in result.stdout or "lstm" in result.stdout
    else:
        assert_clean_error(result, *fragments)
    assert list(out.iterdir()) == []


# ---- the index cut at every length ----------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["tf1_basic", "tf1_partitioned"])
def test_index_truncated_at_every_length(fixture, tmp_path):
    run = copy_fixture(fixture, tmp_path)
    index = run / "model.ckpt.index"
    data = index.read_bytes()
    for length in range(len(data)):
        index.write_bytes(data[:length])
        assert_clean_error(cli("summary", str(run / "model.ckpt")), "model.ckpt.index", "truncated")


@pytest.mark.parametrize("name", ["keras3/model.keras", "keras2_h5/model.h5", "keras3/model.weights.h5"])
def test_keras_files_truncated_at_many_lengths(name, tmp_path):
    data = (FIXTURES / name).read_bytes()
    path = tmp_path / Path(name).name
    for length in [*range(0, 64), *range(64, len(data), 997)]:
        path.write_bytes(data[:length])
        assert_clean_error(cli("summary", str(path)), path.name)


# ---- listing works when the data is gone ----------------------------------------------------------


def test_index_without_its_data_shard_lists_and_fails_to_read(tmp_path):
    run = copy_fixture("tf1_two_shards", tmp_path)
    for shard in run.glob("model.ckpt.data-*"):
        shard.unlink()
    listing = cli("summary", str(run), "--json")
    assert listing.exit_code == 0, listing.stderr
    assert [layer["name"] for layer in json.loads(listing.stdout)["layers"]] == [
        "decoder/lstm_cell",
        "encoder/basic_lstm_cell",
    ]
    assert_clean_error(cli("split", str(run)), "model.ckpt.data-0000", "cannot open data shard")


def test_flipped_data_byte_reads_with_no_verify(tmp_path):
    path, _ = data_shard_with_a_flipped_byte(tmp_path)
    assert cli("split", str(path), "--no-verify").exit_code == 0
    out = tmp_path / "out.npz"
    assert cli("export", str(path), "--no-verify", "-o", str(out)).exit_code == 0
    assert out.exists()


def test_non_lstm_file_to_split_and_export(tmp_path):
    dense = no_recurrent_layers(tmp_path / "in")
    assert cli("summary", str(dense)).exit_code == 0
    out = tmp_path / "out"
    for command in ("split", "export"):
        assert_clean_error(run_command(command, dense, out), "in/dense.npz", "no LSTM or GRU layer found")
    assert list(out.iterdir()) == []


# ---- permissions ----------------------------------------------------------------------------------


@pytest.fixture
def deny(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Callable[[Path], None]:
    """Make a file, or everything in a directory, unreadable and unwritable.

    chmod does it for a normal user. Root (as in CI) passes every permission check, so there the
    refusal is made where the code meets it: builtins.open and os.open (tempfile uses it) raise
    EACCES for the path, as the kernel does for anyone else.
    """

    def deny_path(target: Path) -> None:
        if os.geteuid() != 0:
            mode = target.stat().st_mode
            target.chmod(0o500 if target.is_dir() else 0)
            request.addfinalizer(lambda: target.chmod(mode))
            return
        denied = os.path.abspath(target)
        real_open, real_os_open = builtins.open, os.open

        def check(file: object) -> None:
            if isinstance(file, (str, bytes, os.PathLike)):
                path = os.path.abspath(os.fsdecode(file))
                if path == denied or path.startswith(denied + os.sep):
                    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(file))

        def guarded_open(file, *args, **kwargs):
            check(file)
            return real_open(file, *args, **kwargs)

        def guarded_os_open(file, *args, **kwargs):
            check(file)
            return real_os_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", guarded_open)
        monkeypatch.setattr(os, "open", guarded_os_open)

    return deny_path


@pytest.mark.parametrize(
    ("denied", "commands", "fragments"),
    [
        ("tf1_basic/model.ckpt.index", COMMANDS, ("model.ckpt.index", "Permission denied")),
        ("tf1_basic/model.ckpt.data-00000-of-00001", ("split", "export"), ("data-00000-of-00001", "Permission denied")),
        ("tf1_basic/checkpoint", COMMANDS, ("checkpoint", "Permission denied")),
        ("keras2_h5/model.h5", COMMANDS, ("model.h5", "Permission denied")),
        ("keras3/model.keras", COMMANDS, ("model.keras", "Permission denied")),
    ],
)
def test_unreadable_file(denied, commands, fragments, tmp_path, deny):
    copy_fixture(denied.split("/")[0], tmp_path)
    target = tmp_path / denied
    given = target.parent if target.name == "checkpoint" else target
    if ".ckpt." in target.name:
        given = target.parent / "model.ckpt"
    deny(target)
    for command in commands:
        assert_clean_error(run_command(command, given, tmp_path / "out"), *fragments)
    assert list((tmp_path / "out").iterdir()) == []


# ---- the output file ------------------------------------------------------------------------------

BASIC = FIXTURES / "tf1_basic" / "model.ckpt"


def test_output_in_a_missing_directory(tmp_path):
    out = tmp_path / "missing" / "gates.npz"
    assert_clean_error(cli("export", str(BASIC), "-o", str(out)), "gates.npz", "does not exist")
    assert not (tmp_path / "missing").exists()


def test_output_that_is_a_directory(tmp_path):
    assert_clean_error(cli("export", str(BASIC), "-o", str(tmp_path)), str(tmp_path), "is a directory")
    assert list(tmp_path.iterdir()) == []


def test_output_in_an_unwritable_directory(tmp_path, deny):
    out_dir = tmp_path / "readonly"
    out_dir.mkdir()
    deny(out_dir)
    result = cli("export", str(BASIC), "-o", str(out_dir / "gates.npz"))
    assert_clean_error(result, "gates.npz", "cannot write", "Permission denied")
    assert list(out_dir.iterdir()) == []


def test_ctrl_c_in_the_middle_of_writing_a_member_leaves_nothing(tmp_path, monkeypatch):
    # Interrupted halfway through the bytes of the fourth array, three being in the file already.
    real_write = zipfile._ZipWriteFile.write
    writes = []

    def interrupted(member, data):
        writes.append(len(data))
        if len(writes) == 8:  # each array is written as its header, then its data
            data = memoryview(data).cast("B")
            real_write(member, data[: len(data) // 2])
            raise KeyboardInterrupt
        return real_write(member, data)

    monkeypatch.setattr(zipfile._ZipWriteFile, "write", interrupted)
    result = CliRunner().invoke(main, ["export", str(BASIC), "-o", str(tmp_path / "gates.npz")])
    assert result.exit_code == 130 and "Traceback" not in result.stderr
    assert len(writes) == 8
    assert list(tmp_path.iterdir()) == []


SLOW_EXPORT = """
import sys, time, zipfile
from lstm_inspect.readers.tf_bundle import TFCheckpoint
slowed = {slowed}
real = slowed.{method}
calls = [0]
def held(*args):
    calls[0] += 1
    if calls[0] == {hold_at}:
        open({sentinel!r}, "w").close()
        for _ in range(6000):  # held here until the test's SIGINT ends the program (a minute at most)
            time.sleep(0.01)
    return real(*args)
slowed.{method} = held
from lstm_inspect.cli import main
sys.argv[0] = "lstm-inspect"
main()
"""


@pytest.mark.parametrize(
    "slowed",
    [
        # Held at a write: the signal lands while the temporary file is being written.
        dict(slowed="zipfile._ZipWriteFile", method="write", hold_at=16, written=4096),
        # Held at the second tensor's read: it lands while the writing (main) thread waits for the
        # reading one, the temporary file open and the bias not yet read.
        dict(slowed="TFCheckpoint", method="_read_entry", hold_at=2, written=0),
    ],
    ids=["writing", "reading"],
)
def test_sigint_to_a_running_export_leaves_nothing(tmp_path, slowed):
    # A real SIGINT to a real process, held (not slowed for a guessed time) where it must land:
    # once it says it is there and some members are in the temporary file.
    out_dir, sentinel = tmp_path / "out", tmp_path / "held"
    out_dir.mkdir()
    written = slowed.pop("written")
    script = SLOW_EXPORT.format(**slowed, sentinel=str(sentinel))
    process = subprocess.Popen(
        [sys.executable, "-c", script, "export", str(BASIC), "-o", str(out_dir / "gates.npz")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        preexec_fn=sigint_by_default,
    )
    deadline = time.monotonic() + 60  # a safety net only: the export holds until signalled
    while time.monotonic() < deadline:
        parts = list(out_dir.glob("*.part"))
        if sentinel.exists() and parts and parts[0].stat().st_size >= written:
            break
        time.sleep(0.002)
    else:
        process.kill()
        pytest.fail("the export never reached the point it is held at")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert stderr.strip() == "Interrupted." and "Traceback" not in stderr
    assert list(out_dir.iterdir()) == []


def test_failed_export_leaves_an_existing_output_untouched(tmp_path, monkeypatch):
    out = tmp_path / "gates.npz"
    out.write_bytes(b"previous export")

    def disk_full(member, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(zipfile._ZipWriteFile, "write", disk_full)
    result = cli("export", str(BASIC), "-o", str(out))
    assert_clean_error(result, "gates.npz", "cannot write", "No space left on device", "nothing was written")
    assert out.read_bytes() == b"previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gates.npz"]


def test_names_with_a_nul_keep_every_array(tmp_path):
    # A NUL in a tensor name (TF allows it) would be cut off by zipfile, so that every array of the
    # layer landed on one member name; found by test_fuzz_tf_index_bytes. Member names encode it
    # (export.encode_key), so each array is stored, under a name that decodes to its key.
    kernel, bias = np.arange(40, dtype=np.float32).tobytes(), np.ones(8, np.float32).tobytes()
    prefix = tmp_path / "nul" / "model.ckpt"
    prefix.parent.mkdir()
    write_bundle(
        str(prefix),
        {
            b"rn\0/basic_lstm_cell/kernel": entry(1, (5, 8), 160, kernel),
            b"rn\0/basic_lstm_cell/bias": entry(1, (8,), 32, bias, offset=160),
        },
        kernel + bias,
    )
    out = tmp_path / "out"
    assert run_command("export", prefix, out).exit_code == 0
    with np.load(out / "out.npz") as npz:
        assert "rn%00/basic_lstm_cell/forget/kernel" in npz.files
        arrays = {decode_key(key): npz[key] for key in npz.files}
    assert len(arrays) == 13
    # TF's i, j, f, o: the forget gate is columns 4:6 of the kernel, whose first 3 rows are the input part.
    expected = np.arange(40, dtype=np.float32).reshape(5, 8)[:3, 4:6]
    assert arrays["rn\0/basic_lstm_cell/forget/kernel"].tobytes() == expected.tobytes()


def test_flipped_byte_in_dot_keras_weights(tmp_path):
    # HDF5 keeps no checksums: the zip's CRC-32 of model.weights.h5 is the only one there is.
    path = tmp_path / "model.keras"
    shutil.copy(FIXTURES / "keras3" / "model.keras", path)
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("model.weights.h5")
    with open(path, "r+b") as f:
        f.seek(info.header_offset + 26)
        name_length, extra_length = int.from_bytes(f.read(2), "little"), int.from_bytes(f.read(2), "little")
        position = info.header_offset + 30 + name_length + extra_length + info.file_size // 2
        f.seek(position)
        byte = f.read(1)[0]
        f.seek(position)
        f.write(bytes([byte ^ 0xFF]))
    assert cli("summary", str(path)).exit_code == 0  # listing reads no values
    out = tmp_path / "out"
    out.mkdir()
    for command in (("split", str(path)), ("export", str(path), "-o", str(out / "g.npz"))):
        assert_clean_error(cli(*command), "model.keras", "CRC-32", "--no-verify")
    assert list(out.iterdir()) == []
    assert cli("split", str(path), "--no-verify").exit_code == 0
