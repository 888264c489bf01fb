"""Hostile TF checkpoint inputs end in one line and in bounded memory: FIFOs, devices and sockets
where a file should be, sparse files claiming gigabytes, data shards missing or cut short, and the
near-miss paths people give (the .meta graph, the `checkpoint` state file, a SavedModel directory).

Cases that blocked or read forever before run the CLI in a subprocess: its timeout is only a
safety net, so that a regression fails instead of hanging the suite; what is asserted is the
behaviour (the one line, the exit code) and, for sparse files, the memory (an RLIMIT_DATA the old
whole-file reads could not live within).
"""

from __future__ import annotations

import builtins
import os
import resource
import shutil
import socket
import stat
import struct
import subprocess
import sys
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

import pytest

from lstm_inspect.errors import LstmInspectWarning, UnsupportedFormat
from lstm_inspect.readers import open_store
from lstm_inspect.readers.tf_bundle import open_checkpoint

from .conftest import FIXTURES
from .test_cli import run as cli
from .test_tf_bundle import FLOATS, MAGIC, entry, varint, write_bundle

ROOT = Path(__file__).resolve().parent.parent
SHARD = "model.ckpt.data-00000-of-00001"
# Far more than lstm-inspect needs for these fixtures (an export of tf1_basic lives in 256 MiB),
# far less than the gigabytes a sparse file claims.
MEMORY_LIMIT = 512 << 20


def copy_fixture(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def run_cli(*args: str, memory_limit: int | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process. A run that blocks fails the test after the timeout."""

    def limit_memory() -> None:
        if memory_limit is not None:
            resource.setrlimit(resource.RLIMIT_DATA, (memory_limit, memory_limit))

    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="140", NO_COLOR="1")
    try:
        return subprocess.run(
            [sys.executable, "-m", "lstm_inspect", *args],
            capture_output=True,
            text=True,
            env=env,
            preexec_fn=limit_memory,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"lstm-inspect {' '.join(args)} did not finish: it blocked or read without end")


def one_line(result: Any, kind: str) -> str:
    """The one line a run wrote on stderr, checked to be an `Error:` (exit 1, nothing on stdout) or
    a `Warning:` (exit 0); `result` is a CliRunner result or a finished subprocess."""
    exit_code = result.exit_code if hasattr(result, "exit_code") else result.returncode
    stdout, stderr = result.stdout, result.stderr
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{kind}: "), stderr
    if kind == "Error":
        assert exit_code == 1 and stdout == ""
    else:
        assert exit_code == 0
    return lines[0]


def assert_error(result: Any, *fragments: str) -> None:
    line = one_line(result, "Error")
    for fragment in fragments:
        assert fragment in line, line


# ---- not a regular file ---------------------------------------------------------------------------


def make_fifo(path: Path) -> str:
    os.mkfifo(path)
    return "is a FIFO (named pipe); lstm-inspect reads regular files only"


def make_device(path: Path) -> str:
    os.symlink("/dev/zero", path)  # reads zeros without end, as a state file once did
    return "is a character device; lstm-inspect reads regular files only"


def make_socket(path: Path) -> str:
    # A Unix socket path is limited to 108 bytes: bind by the short name inside its folder.
    here = os.getcwd()
    os.chdir(path.parent)
    try:
        with socket.socket(socket.AF_UNIX) as listening:
            listening.bind(path.name)
    finally:
        os.chdir(here)
    return "is a socket; lstm-inspect reads regular files only"


def make_directory(path: Path) -> str:
    path.mkdir()
    return "is a directory; lstm-inspect reads regular files only"


KINDS = {"fifo": make_fifo, "device": make_device, "socket": make_socket, "directory": make_directory}

# (the file replaced, the path given): both relative to a copy of fixtures/tf1_basic.
PLACES = {
    "index-given-prefix": ("model.ckpt.index", "model.ckpt"),
    "index-given-itself": ("model.ckpt.index", "model.ckpt.index"),
    "index-given-directory": ("model.ckpt.index", "."),
    "shard-given-prefix": (SHARD, "model.ckpt"),
    "shard-given-itself": (SHARD, SHARD),
    "state-file-given-directory": ("checkpoint", "."),
}


@pytest.mark.parametrize("kind", ["fifo", "device"])
@pytest.mark.parametrize("place", list(PLACES))
def test_not_a_regular_file_is_refused_saying_what_it_is(place, kind, tmp_path):
    run = copy_fixture("tf1_basic", tmp_path)
    replaced, given = PLACES[place]
    (run / replaced).unlink()
    words = KINDS[kind](run / replaced)
    assert_error(run_cli("summary", str(run / given)), f"{replaced}: {words}")


@pytest.mark.parametrize("kind", ["socket", "directory"])
def test_data_shard_that_is_a_socket_or_a_directory(kind, tmp_path):
    run = copy_fixture("tf1_basic", tmp_path)
    (run / SHARD).unlink()
    words = KINDS[kind](run / SHARD)
    assert_error(run_cli("summary", str(run / "model.ckpt")), f"{SHARD}: {words}")


@pytest.mark.parametrize("command", ["split", "export"])
def test_fifo_data_shard_does_not_block_reading_commands(command, tmp_path):
    run = copy_fixture("tf1_basic", tmp_path)
    (run / SHARD).unlink()
    words = make_fifo(run / SHARD)
    out = tmp_path / "out"
    out.mkdir()
    extra = ["-o", str(out / "gates.npz")] if command == "export" else []
    assert_error(run_cli(command, str(run / "model.ckpt"), *extra), f"{SHARD}: {words}")
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("name", ["model.keras", "model.h5", "weights"])
def test_path_that_is_a_fifo_is_refused_by_the_sniffer(name, tmp_path):
    words = make_fifo(tmp_path / name)
    assert_error(run_cli("summary", str(tmp_path / name)), f"{name}: {words}")


def test_tensorflow_backend_refuses_a_fifo_shard_before_tensorflow_opens_it(tmp_path):
    run = copy_fixture("tf1_basic", tmp_path)
    (run / SHARD).unlink()
    make_fifo(run / SHARD)
    code = (
        "import sys\nfrom lstm_inspect.readers import open_store\nfrom lstm_inspect.errors import UnsupportedFormat\n"
        "try:\n    open_store(sys.argv[1], backend='tensorflow')\nexcept UnsupportedFormat as e:\n    print(e)\n"
        "print('tensorflow' in sys.modules)\n"
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", code, str(run / "model.ckpt")],
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("TensorFlow's reader was handed a FIFO and blocked")
    assert result.stdout.splitlines() == [
        f"{run / SHARD}: is a FIFO (named pipe); lstm-inspect reads regular files only",
        "False",
    ]


@pytest.mark.parametrize("given", ["model.ckpt", "model.ckpt.index", SHARD, "."])
def test_every_open_is_non_blocking_and_none_goes_through_builtin_open(given, monkeypatch):
    # Every file of the checkpoint is opened with O_NONBLOCK (open_regular), none with open().
    run = FIXTURES / "tf1_basic"
    flags_seen = {}
    real_os_open, real_open = os.open, builtins.open

    def recording_os_open(path, flags, *args, **kwargs):
        if str(path).startswith(str(run)):
            flags_seen[os.path.basename(path)] = flags
        return real_os_open(path, flags, *args, **kwargs)

    def refusing_open(file, *args, **kwargs):
        assert not str(file).startswith(str(run)), f"{file} opened with open(), which blocks on a FIFO"
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(os, "open", recording_os_open)
    monkeypatch.setattr(builtins, "open", refusing_open)
    with open_store(str(run / given)) as ckpt:
        assert ckpt.read("rnn/basic_lstm_cell/bias").shape == (256,)
    assert {"model.ckpt.index", SHARD} <= set(flags_seen)
    assert ("checkpoint" in flags_seen) == (given == ".")
    assert all(flags & os.O_NONBLOCK for flags in flags_seen.values()), flags_seen


# ---- sizes checked before reading -----------------------------------------------------------------


def test_a_regular_summary_lives_within_the_memory_limit():
    # The limit the sparse cases run under leaves lstm-inspect room for real work.
    result = run_cli("summary", str(FIXTURES / "tf1_basic" / "model.ckpt"), memory_limit=MEMORY_LIMIT)
    assert result.returncode == 0 and result.stderr == "" and "rnn/basic_lstm_cell" in result.stdout


@pytest.mark.parametrize("size", ["4G", "50G"])
def test_sparse_index_fails_at_its_footer_in_bounded_memory(size, tmp_path):
    run = copy_fixture("tf1_basic", tmp_path)
    subprocess.run(["truncate", "-s", size, str(run / "model.ckpt.index")], check=True)
    result = run_cli("summary", str(run / "model.ckpt"), memory_limit=MEMORY_LIMIT)
    assert_error(result, "model.ckpt.index: no table footer")


def test_sparse_state_file_is_refused_by_its_size(tmp_path):
    run = copy_fixture("tf1_basic", tmp_path)
    subprocess.run(["truncate", "-s", "50G", str(run / "checkpoint")], check=True)
    result = run_cli("summary", str(run), memory_limit=MEMORY_LIMIT)
    assert_error(result, "checkpoint: 53,687,091,200 bytes, too large for a checkpoint state file (1,048,576 at most)")


def test_state_file_of_more_than_a_mebibyte_is_refused(tmp_path):
    run = copy_fixture("tf1_basic", tmp_path)
    text = (run / "checkpoint").read_text()
    (run / "checkpoint").write_text(text + 'all_model_checkpoint_paths: "model.ckpt"\n' * 30_000)
    assert_error(run_cli("summary", str(run)), "too large for a checkpoint state file")
    # A long list that fits is read as before.
    (run / "checkpoint").write_text(text + 'all_model_checkpoint_paths: "model.ckpt"\n' * 20_000)
    assert run_cli("summary", str(run)).returncode == 0


def crafted_sparse_index(prefix: Path, size: int) -> None:
    """A valid footer at the end of a sparse file, naming one index block of nearly all of it."""
    write_bundle(str(prefix), {})
    block = size - 48 - 5
    with open(f"{prefix}.index", "wb") as f:
        f.truncate(size)
        f.seek(block)
        f.write(b"\0" + struct.pack("<I", 0))  # the block trailer: no compression, a checksum
        f.write((varint(0) + varint(0) + varint(0) + varint(block)).ljust(40, b"\0") + struct.pack("<Q", MAGIC))


@pytest.mark.parametrize("no_verify", [False, True])
def test_block_handle_claiming_gigabytes_is_refused_before_reading(no_verify, tmp_path):
    crafted_sparse_index(tmp_path / "model.ckpt", 3 * 10**9)
    args = ["summary", str(tmp_path / "model.ckpt"), *(["--no-verify"] if no_verify else [])]
    result = run_cli(*args, memory_limit=MEMORY_LIMIT)
    assert_error(result, "the block at byte 0 claims 2,999,999,947 bytes")


def test_index_memory_follows_its_blocks_not_its_file_size(tmp_path):
    # 16 MiB that no block handle covers, between the blocks and the footer: the old reader held
    # the whole file; blocks read one at a time never touch it.
    prefix = tmp_path / "h"
    write_bundle(str(prefix), {b"w": entry(1, (3,), 12, FLOATS)}, FLOATS)
    index = Path(f"{prefix}.index")
    data = index.read_bytes()
    index.write_bytes(data[:-48] + bytes(16 << 20) + data[-48:])
    tracemalloc.start()
    try:
        with open_checkpoint(prefix) as ckpt:
            assert ckpt.read("w").tolist() == [1.5, -2.0, 3.25]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak


def test_huge_num_shards_looks_only_at_shards_holding_tensors(tmp_path, monkeypatch):
    # The header's num_shards costs a damaged file one varint; checking each shard it names would
    # cost two billion stats.
    prefix = tmp_path / "h"
    write_bundle(str(prefix), {b"w": entry(1, (3,), 12, FLOATS)}, FLOATS, num_shards=2**31 - 1)
    looked_at = []
    real_lexists = os.path.lexists
    monkeypatch.setattr(os.path, "lexists", lambda path: looked_at.append(path) or real_lexists(path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with open_checkpoint(prefix) as ckpt:
            assert list(ckpt.tensors()) == ["w"]
    assert looked_at == [f"{prefix}.data-00000-of-2147483647"]
    assert [str(w.message) for w in caught] == [
        f"{prefix}.data-00000-of-2147483647: data shard 1 of 2147483647 is missing: its tensors are listed, but "
        "their values cannot be read; copy every .data-*-of-2147483647 file next to the .index file"
    ]


# ---- a data shard missing or cut short (issue 11 item 7) ------------------------------------------


def test_summary_lists_a_checkpoint_without_its_data_and_warns(tmp_path):
    run = copy_fixture("tf1_basic", tmp_path)
    (run / SHARD).unlink()
    result = cli("summary", str(run / "model.ckpt"))
    line = one_line(result, "Warning")
    assert f"{SHARD}: data shard 1 of 1 is missing" in line and "copy every .data-*-of-00001 file" in line
    assert "rnn/basic_lstm_cell" in result.stdout and "19,712" in result.stdout


def test_summary_warns_of_a_shard_cut_short_with_both_sizes(tmp_path):
    run = copy_fixture("tf1_basic", tmp_path)
    os.truncate(run / SHARD, 100)
    for args in (["summary"], ["summary", "--json"]):
        result = cli(*args, str(run / "model.ckpt"))
        line = one_line(result, "Warning")
        # The kernel ends the shard: 1,544 + 77,824 bytes (fixtures/tf1_basic).
        assert f"{SHARD}: data shard 1 of 1 is 100 bytes, but the index places tensor data up to byte 79,368" in line
        assert "rnn/basic_lstm_cell" in result.stdout


@pytest.mark.parametrize("damage", ["missing", "short"])
@pytest.mark.parametrize("command", ["split", "export", "verify"])
def test_commands_that_need_the_data_refuse_in_one_line(command, damage, tmp_path):
    run = copy_fixture("tf1_basic", tmp_path)
    if damage == "missing":
        (run / SHARD).unlink()
    else:
        os.truncate(run / SHARD, 100)
    out = tmp_path / "out"
    out.mkdir()
    extra = ["-o", str(out / "gates.npz")] if command == "export" else []
    result = cli(command, str(run / "model.ckpt"), *extra)
    line = one_line(result, "Error")
    assert SHARD in line and ("cannot open data shard 1 of 1" if damage == "missing" else "of a 100-byte file") in line
    assert list(out.iterdir()) == []


def test_split_of_what_is_there_works_and_warns_of_what_is_not(tmp_path):
    # Shard 2 of 2 holds the decoder and the head; the encoder, in shard 1, is whole.
    run = copy_fixture("tf1_two_shards", tmp_path)
    (run / "model.ckpt.data-00001-of-00002").unlink()
    result = cli("split", str(run / "model.ckpt"), "--layer", "encoder/basic_lstm_cell", "--json")
    line = one_line(result, "Warning")
    assert "model.ckpt.data-00001-of-00002: data shard 2 of 2 is missing" in line
    assert "encoder/basic_lstm_cell" in result.stdout
    result = cli("split", str(run / "model.ckpt"))
    assert "cannot open data shard 2 of 2, which holds tensor 'decoder/lstm_cell/" in one_line(result, "Error")


def test_shard_cut_after_the_lstm_weights_exports_them_and_warns(tmp_path):
    # fixtures/tf1_adam keeps the LSTM kernel at bytes 1,192..8,360, then its Adam slots.
    run = copy_fixture("tf1_adam", tmp_path)
    os.truncate(run / SHARD, 8360)
    out = tmp_path / "gates.npz"
    result = cli("export", str(run / "model.ckpt"), "-o", str(out))
    line = one_line(result, "Warning")
    assert "is 8,360 bytes, but the index places tensor data up to byte 22,696" in line
    assert out.stat().st_size > 0


def test_library_warns_once_on_close_unless_a_read_said_it(tmp_path):
    run = copy_fixture("tf1_basic", tmp_path)
    (run / SHARD).unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ckpt = open_checkpoint(run / "model.ckpt")
        assert caught == []  # reading may still say it, as an error
        ckpt.close()
        ckpt.close()
        assert [w.category for w in caught] == [LstmInspectWarning]
        caught.clear()
        with open_checkpoint(run / "model.ckpt") as ckpt, pytest.raises(Exception, match="cannot open data shard"):
            ckpt.read("rnn/basic_lstm_cell/kernel")
    assert caught == []


def test_a_partitioned_tensor_needs_the_bytes_of_its_pieces_only(tmp_path):
    # The full entry of a partitioned variable carries no data (its shard, offset and size are 0);
    # a shard cut after the last piece is whole.
    run = copy_fixture("tf1_partitioned", tmp_path)
    os.truncate(run / SHARD, 7424)  # the last piece ends at 5,120 + 2,304
    result = cli("summary", str(run / "model.ckpt"))
    assert result.exit_code == 0 and result.stderr == ""
    os.truncate(run / SHARD, 7423)
    assert "up to byte 7,424" in one_line(cli("summary", str(run / "model.ckpt")), "Warning")


# ---- near misses: the path to give instead --------------------------------------------------------


def test_meta_graph_given_as_path_points_at_the_prefix(tmp_path):
    # Issue 11: a .meta beside its checkpoint opens that checkpoint (and its graph is read).
    run = copy_fixture("tf1_basic", tmp_path)
    result = cli("summary", str(run / "model.ckpt.meta"))
    assert result.exit_code == 0 and "forget bias 1.0 (graph: rnn/basic_lstm_cell/Const_1)" in result.stdout
    (run / "model.ckpt.index").unlink()
    result = cli("summary", str(run / "model.ckpt.meta"))
    assert f"its checkpoint {run / 'model.ckpt'}.index is not beside it" in one_line(result, "Error")


def test_state_file_given_as_path_points_at_its_directory_and_prefix(tmp_path):
    run = copy_fixture("tf1_basic", tmp_path)
    result = cli("summary", str(run / "checkpoint"))
    line = one_line(result, "Error")
    assert line.endswith(
        "checkpoint: a checkpoint state file, not a checkpoint; give the directory holding it or the "
        f"checkpoint prefix it names, {run / 'model.ckpt'}"
    )


def test_saved_model_directory_with_a_damaged_graph_is_one_error(tmp_path):
    # A SavedModel directory is read as a SavedModel (readers/saved_model.py); an empty
    # saved_model.pb is said to be one, and its variables checkpoint still reads on its own.
    saved = tmp_path / "exported"
    (saved / "variables").mkdir(parents=True)
    (saved / "saved_model.pb").write_bytes(b"")
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.copy(FIXTURES / "tf1_basic" / f"model.ckpt{suffix}", saved / "variables" / f"variables{suffix}")
    for given in (str(saved), str(saved) + "/"):
        result = cli("summary", given)
        line = one_line(result, "Error")
        assert line.endswith(f"{saved / 'saved_model.pb'}: holds no MetaGraphDef, so it is no SavedModel")
    assert cli("summary", str(saved / "variables" / "variables")).exit_code == 0


def test_unsupported_format_for_what_is_not_a_file_at_library_level(tmp_path):
    os.mkfifo(tmp_path / "model.ckpt.index")
    with pytest.raises(UnsupportedFormat, match=r"model\.ckpt\.index: is a FIFO"):
        open_checkpoint(tmp_path / "model.ckpt")
    assert stat.S_ISFIFO(os.stat(tmp_path / "model.ckpt.index").st_mode)  # left as it was
