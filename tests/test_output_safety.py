"""export never destroys, never leaks, never leaves junk (issues #9 and #14), driven through the CLI.

Every refusal is one `Error:` line, a non-zero exit, no traceback, no file left behind and the input
unchanged byte for byte. Signals go to a real process, which a wrapper script stops at a known step
and which says so with a sentinel file: the test waits for that, never for a guessed time.
"""

from __future__ import annotations

import errno
import io
import os
import pty
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lstm_inspect.cli import main
from lstm_inspect.writers.npz import decode_key

from .conftest import FIXTURES
from .test_cli import assert_clean_error
from .test_tf_bundle import entry, write_bundle

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
PART = re.compile(r"\.(?P<output>.+)\.(?P<pid>\d+)\.[0-9a-f]{16}\.part")


def cli(*args: str, cwd: Path | None = None):
    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return CliRunner().invoke(main, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


def copy_fixture(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def contents(directory: Path) -> dict[str, bytes]:
    """Every file under `directory`, byte for byte (links as what they point to)."""
    found = {}
    for path in sorted(directory.rglob("*")):
        if path.is_symlink():
            found[str(path.relative_to(directory))] = os.readlink(path).encode()
        elif path.is_file():
            found[str(path.relative_to(directory))] = path.read_bytes()
    return found


def lstm_bundle(prefix: Path, scopes: list[str], input_size: int = 3, units: int = 2) -> list[str]:
    """A checkpoint of one BasicLSTMCell per scope; returns the layer names."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    entries, data = {}, b""
    for scope in scopes:
        kernel = rng.standard_normal((input_size + units, 4 * units)).astype(np.float32).tobytes()
        bias = rng.standard_normal(4 * units).astype(np.float32).tobytes()
        name = f"{scope}/basic_lstm_cell".encode()
        entries[name + b"/kernel"] = entry(1, (input_size + units, 4 * units), len(kernel), kernel, offset=len(data))
        entries[name + b"/bias"] = entry(1, (4 * units,), len(bias), bias, offset=len(data) + len(kernel))
        data += kernel + bias
    write_bundle(str(prefix), entries, data)
    return [f"{scope}/basic_lstm_cell" for scope in scopes]


# ---- an output that is an input -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "given", "output", "suggested"),
    [
        ("tf1_basic", "model.ckpt", "model.ckpt.index", "model.ckpt.npz"),
        ("tf1_basic", "model.ckpt", "model.ckpt.data-00000-of-00001", "model.ckpt.npz"),
        ("tf1_basic", "model.ckpt", "checkpoint", "checkpoint.npz"),
        ("keras2_h5", "model.h5", "model.h5", "model.npz"),
        ("keras3", "model.keras", "model.keras", "model.npz"),
    ],
)
def test_the_input_named_as_the_output_is_refused(tmp_path, fixture, given, output, suggested):
    folder = copy_fixture(fixture, tmp_path)
    before = contents(folder)
    result = cli("export", str(folder / given), "-o", str(folder / output))
    assert_clean_error(result, str(folder / output), "must end in .npz", f"-o {folder / suggested}")
    assert contents(folder) == before


def _symlink(target: Path, link: Path) -> None:
    link.symlink_to(target)


def _symlink_to_a_symlink(target: Path, link: Path) -> None:
    middle = link.with_name("middle")
    middle.symlink_to(target)
    link.symlink_to(middle)


def _hard_link(target: Path, link: Path) -> None:
    os.link(target, link)


@pytest.mark.parametrize("make_link", [_symlink, _symlink_to_a_symlink, _hard_link])
@pytest.mark.parametrize(
    ("fixture", "given", "target"),
    [
        ("tf1_basic", "model.ckpt", "model.ckpt.index"),
        ("tf1_basic", "model.ckpt.index", "model.ckpt.data-00000-of-00001"),
        ("tf1_two_shards", "model.ckpt", "model.ckpt.data-00001-of-00002"),
        ("tf1_basic", "model.ckpt", "model.ckpt.meta"),
        ("tf1_basic", ".", "checkpoint"),  # the directory, opened through its state file
        ("keras2_h5", "model.h5", "model.h5"),
        ("keras3", "model.keras", "model.keras"),
    ],
)
def test_an_output_that_links_to_an_input_is_refused(tmp_path, fixture, given, target, make_link):
    folder = copy_fixture(fixture, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    make_link(folder / target, out / "gates.npz")
    before, links = contents(folder), contents(out)
    result = cli("export", str(folder / given), "-o", str(out / "gates.npz"))
    assert_clean_error(result, str(out / "gates.npz"), f"is the input file {folder / target}", "another output name")
    assert contents(folder) == before
    assert contents(out) == links


def test_an_onnx_model_over_an_input_is_refused(tmp_path):
    pytest.importorskip("onnx")
    folder = copy_fixture("tf1_basic", tmp_path)
    (tmp_path / "model.onnx").symlink_to(folder / "model.ckpt.data-00000-of-00001")
    before = contents(folder)
    result = cli("export", str(folder / "model.ckpt"), "--layout", "onnx", "-o", str(tmp_path / "model.onnx"))
    assert_clean_error(result, "model.onnx", "is the input file", "data-00000-of-00001")
    assert contents(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "tf1_basic"]


# ---- an output that is not a regular file -------------------------------------------------------

BASIC = FIXTURES / "tf1_basic" / "model.ckpt"


@pytest.fixture
def device(tmp_path) -> Path:
    """A character device: a private copy of /dev/null where the tests may make one (as root, who
    could replace the real one if the refusal failed), else /dev/null itself, which no one else can."""
    node = tmp_path / "devices" / "null"
    node.parent.mkdir()
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except OSError:
        return Path("/dev/null")
    return node


def test_a_device_is_refused(device):
    assert_clean_error(cli("export", str(BASIC), "-o", str(device)), str(device), "is a character device", "-o -")
    assert stat.S_ISCHR(os.lstat(device).st_mode)


def test_a_fifo_is_refused(tmp_path):
    fifo = tmp_path / "gates.npz"
    os.mkfifo(fifo)
    assert_clean_error(cli("export", str(BASIC), "-o", str(fifo)), "gates.npz", "is a FIFO", "regular files only")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["gates.npz"]


def test_a_link_to_a_device_is_refused_and_kept(tmp_path, device):
    # As root, -o /dev/stdout used to replace that link with a regular file.
    out = tmp_path / "out"
    out.mkdir()
    (out / "gates.npz").symlink_to(device)
    assert_clean_error(cli("export", str(BASIC), "-o", str(out / "gates.npz")), "gates.npz", "is a character device")
    assert os.readlink(out / "gates.npz") == str(device)
    assert stat.S_ISCHR(os.lstat(device).st_mode)
    assert [p.name for p in out.iterdir()] == ["gates.npz"]


def test_a_link_to_a_regular_file_is_written_through(tmp_path):
    # The link stays a link; the file it names gets the export, as shell redirection would do.
    real = tmp_path / "real.npz"
    real.write_bytes(b"previous export")
    (tmp_path / "gates.npz").symlink_to("real.npz")
    assert cli("export", str(BASIC), "-o", str(tmp_path / "gates.npz"), "-q").exit_code == 0
    assert os.readlink(tmp_path / "gates.npz") == "real.npz"
    assert "rnn/basic_lstm_cell/forget/kernel" in np.load(real).files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gates.npz", "real.npz"]


def test_an_empty_output_name_is_refused(tmp_path):
    assert_clean_error(cli("export", str(BASIC), "-o", "", cwd=tmp_path), "output file name is empty", "-o -")
    assert list(tmp_path.iterdir()) == []


def test_a_name_ending_in_a_slash_is_refused(tmp_path):
    out = str(tmp_path / "gates.npz") + "/"
    assert_clean_error(cli("export", str(BASIC), "-o", out), "names a directory")
    assert list(tmp_path.iterdir()) == []


# ---- suffixes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "layout", "fragments"),
    [
        ("out.txt", "gates", ("out.txt: export writes an .npz", "give -o out.npz")),
        ("out", "pytorch", ("give -o out.npz",)),
        ("out.txt", "onnx", ("give -o out.npz, or -o out.onnx for a runnable ONNX model",)),
        ("x.ONNX", "gates", ("x.ONNX: an .onnx model is written with --layout onnx", "-o x.npz")),
        ("x.onnx", "keras", ("--layout onnx", "-o x.npz")),
    ],
)
def test_an_output_named_for_another_format_is_refused(tmp_path, output, layout, fragments):
    assert_clean_error(cli("export", str(BASIC), "--layout", layout, "-o", output, cwd=tmp_path), *fragments)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["x.ONNX", "x.Onnx", "x.onnx"])
def test_an_onnx_suffix_in_any_case_writes_the_model(tmp_path, name):
    onnx = pytest.importorskip("onnx")
    result = cli("export", str(BASIC), "--layout", "onnx", "-o", str(tmp_path / name))
    assert result.exit_code == 0, result.stderr
    assert "Wrote an ONNX model of rnn/basic_lstm_cell" in result.stdout
    model = onnx.load(str(tmp_path / name))
    assert [node.op_type for node in model.graph.node] == ["LSTM"]
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_an_npz_suffix_in_any_case_is_an_npz(tmp_path):
    assert cli("export", str(BASIC), "-o", str(tmp_path / "g.NPZ"), "-q").exit_code == 0
    assert len(np.load(tmp_path / "g.NPZ").files) == 13


# ---- default names (issue 14) -------------------------------------------------------------------


def test_default_names_keep_the_whole_input_name(tmp_path):
    for given in ("keras3/model.keras", "keras2_h5/model.h5"):
        result = cli("export", str(FIXTURES / given), "--layout", "keras", cwd=tmp_path)
        assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.h5.keras.npz", "model.keras.keras.npz"]
    # Each holds its own file's layers: the Keras 3 model has a `dec` layer, the Keras 2 one none.
    assert "dec/kernel" in np.load(tmp_path / "model.keras.keras.npz").files
    assert "dec/kernel" not in np.load(tmp_path / "model.h5.keras.npz").files


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("model.ckpt", "model.ckpt.gates.npz"),
        ("model.ckpt.index", "model.ckpt.gates.npz"),
        ("model.ckpt.data-00000-of-00001", "model.ckpt.gates.npz"),
        (".", "model.ckpt.gates.npz"),  # a checkpoint directory: the prefix its state file names
    ],
)
def test_a_checkpoint_is_named_by_its_prefix(tmp_path, given, expected):
    folder = copy_fixture("tf1_basic", tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    assert cli("export", str(folder / given), "-q", cwd=out).exit_code == 0
    assert [p.name for p in out.iterdir()] == [expected]


def test_a_default_name_never_replaces_a_file(tmp_path):
    previous = tmp_path / "model.ckpt.gates.npz"
    previous.write_bytes(b"previous export")
    result = cli("export", str(BASIC), cwd=tmp_path)
    assert_clean_error(result, "model.ckpt.gates.npz: exists", "-o model.ckpt.gates.npz", "--force")
    assert previous.read_bytes() == b"previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["model.ckpt.gates.npz"]


@pytest.mark.parametrize("args", [["--force"], ["-o", "model.ckpt.gates.npz"]])
def test_force_or_naming_the_file_replaces_it(tmp_path, args):
    previous = tmp_path / "model.ckpt.gates.npz"
    previous.write_bytes(b"previous export")
    assert cli("export", str(BASIC), *args, "-q", cwd=tmp_path).exit_code == 0
    assert len(np.load(previous).files) == 13
    assert [p.name for p in tmp_path.iterdir()] == ["model.ckpt.gates.npz"]


def test_a_file_made_during_an_export_to_a_default_name_is_not_replaced(tmp_path, monkeypatch):
    # Another program creates the file after the check, while the arrays are written: the rename
    # (a link(), which fails on an existing name) still does not replace it.
    real_write = zipfile._ZipWriteFile.write
    target = tmp_path / "model.ckpt.gates.npz"

    def write(member, data):
        if not target.exists():
            target.write_bytes(b"made meanwhile")
        return real_write(member, data)

    monkeypatch.setattr(zipfile._ZipWriteFile, "write", write)
    assert_clean_error(cli("export", str(BASIC), cwd=tmp_path), "model.ckpt.gates.npz: exists", "--force")
    assert target.read_bytes() == b"made meanwhile"
    assert [p.name for p in tmp_path.iterdir()] == ["model.ckpt.gates.npz"]


# ---- stdout -------------------------------------------------------------------------------------


def run_module(*args: str, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lstm_inspect", *args], cwd=cwd, env=ENV, capture_output=True, timeout=120, **kwargs
    )


def test_dash_streams_the_npz_to_stdout(tmp_path):
    result = run_module("export", str(BASIC), "-o", "-", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.decode().startswith("Wrote 13 arrays") and "to stdout" in result.stderr.decode()
    assert list(tmp_path.iterdir()) == []  # never a file named "-"
    assert cli("export", str(BASIC), "-o", str(tmp_path / "file.npz"), "-q").exit_code == 0
    with np.load(io.BytesIO(result.stdout)) as streamed, np.load(tmp_path / "file.npz") as written:
        assert streamed.files == written.files
        for key in written.files:
            assert streamed[key].tobytes() == written[key].tobytes()
    with zipfile.ZipFile(io.BytesIO(result.stdout)) as archive:
        assert archive.testzip() is None


def test_dash_to_a_file_on_stdout(tmp_path):
    with open(tmp_path / "redirected.npz", "wb") as stdout:
        result = subprocess.run(
            [sys.executable, "-m", "lstm_inspect", "export", str(BASIC), "-o", "-", "-q"],
            cwd=tmp_path,
            env=ENV,
            stdout=stdout,
            stderr=subprocess.PIPE,
            timeout=120,
        )
    assert result.returncode == 0 and result.stderr == b""
    assert len(np.load(tmp_path / "redirected.npz").files) == 13


def test_dash_on_a_terminal_is_refused(tmp_path):
    parent, child = pty.openpty()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "lstm_inspect", "export", str(BASIC), "-o", "-"],
            cwd=tmp_path,
            env=ENV,
            stdout=child,
            stderr=subprocess.PIPE,
            timeout=120,
        )
    finally:
        os.close(child)
        os.close(parent)
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == [
        "Error: -o - writes the .npz to stdout, which is a terminal; redirect it (> out.npz) or give -o OUT.npz"
    ]
    assert list(tmp_path.iterdir()) == []


def test_dash_appending_to_the_input_is_refused(tmp_path):
    folder = copy_fixture("keras2_h5", tmp_path)
    before = contents(folder)
    with open(folder / "model.h5", "ab") as stdout:
        result = subprocess.run(
            [sys.executable, "-m", "lstm_inspect", "export", str(folder / "model.h5"), "-o", "-"],
            cwd=tmp_path,
            env=ENV,
            stdout=stdout,
            stderr=subprocess.PIPE,
            timeout=120,
        )
    assert result.returncode == 1
    (line,) = result.stderr.decode().splitlines()
    assert line == (
        f"Error: stdout: is the input file {folder / 'model.h5'} (or a link to it); writing there would "
        "destroy it, so choose another output name"
    )
    assert contents(folder) == before


def test_a_closed_pipe_ends_the_export_with_one_line(tmp_path):
    # 2 MiB of kernel, far more than a pipe holds: the export is still writing when the reader leaves.
    prefix = tmp_path / "big" / "model.ckpt"
    lstm_bundle(prefix, ["rnn"], input_size=256, units=256)
    process = subprocess.Popen(
        [sys.executable, "-m", "lstm_inspect", "export", str(prefix), "-o", "-"],
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stdout.read(4) == b"PK\x03\x04"
    process.stdout.close()
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1
    assert stderr.decode().splitlines() == ["Error: stdout: cannot write (Broken pipe)"]


# ---- signals ------------------------------------------------------------------------------------

# Runs the CLI with one step blocked: the Nth zip write (the main thread writing the temporary
# file) or the Nth tensor read (the reading thread, while the main thread waits for it). On reaching
# it the process creates the sentinel file, and it goes on only once a signal handler that the
# export installed has run.
BLOCKED_EXPORT = r"""
import signal, sys, threading, zipfile
from lstm_inspect.readers.tf_bundle import TFCheckpoint

phase, block_at, sentinel = sys.argv.pop(1), int(sys.argv.pop(1)), sys.argv.pop(1)
released = threading.Event()
real_signal = signal.signal

def spy(signum, handler):
    if callable(handler):
        inner = handler
        def handler(number, frame):
            released.set()
            return inner(number, frame)
    return real_signal(signum, handler)

signal.signal = spy
owner, method = (zipfile._ZipWriteFile, "write") if phase == "writing" else (TFCheckpoint, "_read_entry")
real = getattr(owner, method)
calls = []

def blocked(*args):
    calls.append(None)
    if len(calls) == block_at:
        open(sentinel, "w").close()
        released.wait()
    return real(*args)

setattr(owner, method, blocked)
from lstm_inspect.cli import main
main(prog_name="lstm-inspect")
"""


def start_blocked_export(tmp_path: Path, out: Path, phase: str) -> subprocess.Popen:
    """A running export to `out`, stopped with its temporary file written in part."""
    sentinel = tmp_path / "blocked"
    # The 9th write: four arrays and a half are in the file. The 2nd read: the kernel's blocks are.
    block_at = "9" if phase == "writing" else "2"
    process = subprocess.Popen(
        [sys.executable, "-c", BLOCKED_EXPORT, phase, block_at, str(sentinel), "export", str(BASIC), "-o", str(out)],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120  # a bound on a hang, not a guess at a speed
    while not sentinel.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the export never reached the blocked step: {process.communicate()[1]}")
        time.sleep(0.01)
    return process


@pytest.mark.parametrize("phase", ["writing", "reading"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_remove_the_temporary_file(tmp_path, phase, signum):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    process = start_blocked_export(tmp_path, out_dir / "gates.npz", phase)
    (part,) = out_dir.iterdir()
    match = PART.fullmatch(part.name)
    assert match and match["output"] == "gates.npz" and int(match["pid"]) == process.pid
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signum, stderr
    assert stdout == "" and stderr == ""
    assert list(out_dir.iterdir()) == []


def test_a_part_left_by_sigkill_is_removed_by_the_next_export(tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    process = start_blocked_export(tmp_path, out_dir / "gates.npz", "writing")
    process.kill()
    process.communicate(timeout=120)
    (stale,) = out_dir.iterdir()  # SIGKILL cannot be handled: the file stays, named for its writer
    assert PART.fullmatch(stale.name)["pid"] == str(process.pid)

    # Kept: a part of a writer still running, one whose lock is held (a writer in another pid
    # namespace, whose pid means nothing here), and parts of other outputs.
    live = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    kept = [
        out_dir / f".gates.npz.{live.pid}.{'a' * 16}.part",
        out_dir / f".gates.npz.{process.pid}.{'b' * 16}.part",
        out_dir / f".other.npz.{process.pid}.{'c' * 16}.part",
        out_dir / f".gates.npz.{process.pid}.not-ours.part",
    ]
    for path in kept:
        path.write_bytes(b"partial")
    import fcntl

    with open(kept[1], "rb") as locked:
        fcntl.flock(locked, fcntl.LOCK_EX)
        try:
            assert cli("export", str(BASIC), "-o", str(out_dir / "gates.npz"), "-q").exit_code == 0
        finally:
            live.communicate(b"", timeout=120)
    assert sorted(out_dir.iterdir()) == sorted([out_dir / "gates.npz", *kept])
    assert len(np.load(out_dir / "gates.npz").files) == 13


def _signal_at_write(monkeypatch, signum: int) -> None:
    real_write = zipfile._ZipWriteFile.write
    sent = []

    def write(member, data):
        if not sent:
            sent.append(signum)
            os.kill(os.getpid(), signum)
        return real_write(member, data)

    monkeypatch.setattr(zipfile._ZipWriteFile, "write", write)


def test_an_ignored_sighup_stays_ignored(tmp_path, monkeypatch):
    # Under nohup the export goes on and finishes; the handler left is the one that was there.
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        _signal_at_write(monkeypatch, signal.SIGHUP)
        assert cli("export", str(BASIC), "-o", str(tmp_path / "gates.npz"), "-q").exit_code == 0
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert len(np.load(tmp_path / "gates.npz").files) == 13


def test_a_programs_own_sigterm_handler_stays_its_own(tmp_path, monkeypatch):
    received = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        _signal_at_write(monkeypatch, signal.SIGTERM)
        assert cli("export", str(BASIC), "-o", str(tmp_path / "gates.npz"), "-q").exit_code == 0
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert received == [signal.SIGTERM]
    assert len(np.load(tmp_path / "gates.npz").files) == 13


# ---- durability and modes -----------------------------------------------------------------------


@pytest.mark.parametrize("named", [True, False], ids=["-o", "default name"])
def test_the_data_is_synced_before_the_rename_and_the_directory_after(tmp_path, monkeypatch, named):
    events = []
    real = {name: getattr(os, name) for name in ("fsync", "replace", "link")}

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real["fsync"](fd)

    def replace(source, target):
        events.append(("rename", os.path.basename(source), os.path.basename(target)))
        return real["replace"](source, target)

    def link(source, target):
        events.append(("rename", os.path.basename(source), os.path.basename(target)))
        return real["link"](source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "link", link)
    args = ["-o", str(tmp_path / "model.ckpt.gates.npz")] if named else []
    assert cli("export", str(BASIC), *args, "-q", cwd=tmp_path).exit_code == 0
    (synced_file, part), (renamed, source, target), synced_directory = events
    assert synced_file == "fsync" and renamed == "rename"
    assert os.path.basename(part) == source and PART.fullmatch(source)["pid"] == str(os.getpid())
    assert target == "model.ckpt.gates.npz"
    assert synced_directory == ("fsync", str(tmp_path))
    assert [p.name for p in tmp_path.iterdir()] == ["model.ckpt.gates.npz"]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
@pytest.mark.parametrize("output", ["gates.npz", "model.onnx"])
def test_a_new_file_gets_its_mode_from_the_umask(tmp_path, umask, mode, output):
    if output.endswith(".onnx"):
        pytest.importorskip("onnx")
    previous = os.umask(umask)
    try:
        result = cli("export", str(BASIC), "--layout", "onnx", "-o", str(tmp_path / output), "-q")
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.stderr
    assert stat.S_IMODE(os.stat(tmp_path / output).st_mode) == mode


def test_a_replaced_file_keeps_its_mode(tmp_path):
    out = tmp_path / "gates.npz"
    for mode in (0o644, 0o640):
        out.write_bytes(b"previous export")
        out.chmod(mode)
        assert cli("export", str(BASIC), "-o", str(out), "-q").exit_code == 0
        assert stat.S_IMODE(os.stat(out).st_mode) == mode
        assert len(np.load(out).files) == 13


# ---- member names -------------------------------------------------------------------------------

HOSTILE_SCOPES = [
    "../../../tmp/x",
    "/abs/path",
    "a\\..\\..\\b",
    "..\\up",
    ".. /dots",
    "C:/windows",
    "esc\x1b[2J\nrow",
    "nul\x00byte",
    "100%/done",
    "%2E%2E",
]


def test_member_names_never_leave_the_folder_they_are_extracted_to(tmp_path):
    prefix = tmp_path / "hostile" / "model.ckpt"
    layers = lstm_bundle(prefix, HOSTILE_SCOPES)
    out = tmp_path / "out.npz"
    result = cli("export", str(prefix), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    folder = tmp_path / "extracted"
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        for name in names:
            # A naive extractor joins the name to its folder, on Linux or (backslashes) on Windows.
            for separator in ("/", "\\"):
                parts = name.replace(separator, "/").split("/")
                # `..`, or what Windows, dropping trailing dots and spaces, reads as `..` (`.. `, `...`)
                assert not any(re.fullmatch(r"[. ]*\.[. ]*\.[. ]*", part) for part in parts), name
            assert not name.startswith(("/", "\\")) and not re.match(r"[A-Za-z]:", name), name
            assert not re.search(r"[\x00-\x1f\x7f-\x9f]", name), name
            destination = os.path.realpath(os.path.join(folder, name))
            assert destination.startswith(str(folder) + os.sep), name
    with np.load(out) as npz:
        keys = [decode_key(name) for name in npz.files]
    expected = [f"{layer}/{gate}/{part}" for layer in sorted(layers) for gate in ("input", "forget", "cell", "output")
                for part in ("kernel", "recurrent", "bias")]  # fmt: skip
    assert sorted(keys) == sorted(expected + [f"{layer}/forget_bias" for layer in layers])


def test_ordinary_member_names_are_the_keys_themselves(tmp_path):
    out = tmp_path / "out.npz"
    assert cli("export", str(BASIC), "-o", str(out), "-q").exit_code == 0
    with zipfile.ZipFile(out) as archive:
        assert archive.namelist()[:3] == [
            "rnn/basic_lstm_cell/input/kernel.npy",
            "rnn/basic_lstm_cell/input/recurrent.npy",
            "rnn/basic_lstm_cell/input/bias.npy",
        ]


def test_a_name_too_long_for_a_zip_member_is_one_error_naming_the_layer(tmp_path):
    scope = "deep/" * 14_000  # 70,000 bytes: past the 65,535 a zip header can say
    prefix = tmp_path / "long" / "model.ckpt"
    lstm_bundle(prefix, [scope.rstrip("/")])
    before = contents(prefix.parent)
    out = tmp_path / "out"
    out.mkdir()
    result = cli("export", str(prefix), "-o", str(out / "gates.npz"))
    assert_clean_error(result, "'deep/deep/deep/", "basic_lstm_cell/input/kernel'", "-byte name", "65,535", "--layer")
    assert len(result.stderr) < 400
    assert list(out.iterdir()) == []
    assert contents(prefix.parent) == before


# ---- a full disk --------------------------------------------------------------------------------


def test_a_full_disk_while_writing_an_onnx_model_is_one_line(tmp_path, monkeypatch):
    pytest.importorskip("onnx")
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, f):
            self._f = f

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name):
            return getattr(self._f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._f.close()

    def fdopen(fd, mode="r", *args, **kwargs):
        f = real_fdopen(fd, mode, *args, **kwargs)
        return FullDisk(f) if "w" in mode else f

    monkeypatch.setattr(os, "fdopen", fdopen)
    folder = copy_fixture("tf1_basic", tmp_path)
    before = contents(folder)
    out = tmp_path / "out"
    out.mkdir()
    result = cli("export", str(folder / "model.ckpt"), "--layout", "onnx", "-o", str(out / "model.onnx"))
    assert_clean_error(result, "model.onnx: cannot write (No space left on device); nothing was written")
    assert list(out.iterdir()) == []
    assert contents(folder) == before
