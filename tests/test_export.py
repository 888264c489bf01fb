"""export.write_npz: one thread reads the arrays while another writes them. What comes back is
what went in, bit for bit, however it was cut into pieces, to a file or to a stream; a failure on
either side stops both and leaves nothing behind. Member names are the keys, encoded so that no
extractor writes outside its folder, and decoded back exactly."""

from __future__ import annotations

import errno
import io
import itertools
import os
import re
import threading
import zipfile

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lstm_inspect.errors import CorruptFile, OutputError
from lstm_inspect.writers import npz as export
from lstm_inspect.writers.npz import decode_key, encode_key, write_npz


def every_kind_of_array() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    fused = rng.standard_normal((37, 4 * 24)).astype(np.float32)
    fused[0, 30] = np.nan  # compared as bytes, NaN included
    return {
        "layer/forget/kernel": fused[:, 24:48],  # a column block: copied rows at a time
        "layer/forget/recurrent": fused[:24, 24:48].T,  # cuDNN's recurrent blocks are transposed
        "fortran": np.asfortranarray(fused[:6, :9]),  # written in C order, and its header says so
        "strided": rng.standard_normal((4, 5, 6))[:, ::2, 1:],
        "contiguous": rng.standard_normal((50, 30)),
        "layer/forget_bias": np.array(1.0, np.float32),  # 0-d
        "no rows": np.zeros((0, 7), np.float32),
        "empty rows": np.zeros((5, 0), np.float16),
        "bfloat16": fused[:, :24].astype(ml_dtypes.bfloat16),  # widened to float32
        "complex": (fused[:3] + 1j * fused[3:6]).astype(np.complex64),
        "bool": fused > 0,
        "int64": np.arange(1000, dtype=np.int64),
    }


def no_export_thread() -> bool:
    return not any(thread.name == "lstm-inspect export" for thread in threading.enumerate())


@pytest.mark.parametrize("piece_bytes", [64, 1 << 20])
def test_arrays_come_back_bit_for_bit(tmp_path, monkeypatch, piece_bytes):
    # 64-byte pieces cut every array but the smallest into many, each crossing between the threads.
    monkeypatch.setattr(export, "_PIECE_BYTES", piece_bytes)
    arrays = every_kind_of_array()
    out = tmp_path / "out.npz"
    progress = []
    result = write_npz(str(out), arrays.items(), lambda key, nbytes: progress.append((key, nbytes)))
    with zipfile.ZipFile(out) as archive:
        assert archive.testzip() is None  # every member's CRC-32
        assert archive.namelist() == [key + ".npy" for key in arrays]
    with np.load(out) as loaded:
        for key, value in arrays.items():
            expected = value.astype(np.float32) if value.dtype.kind == "V" else value
            got = loaded[key]
            assert (got.dtype, got.shape) == (expected.dtype, expected.shape), key
            assert got.tobytes() == expected.tobytes(), key
    # Progress comes per piece written, in bytes of values; an array of no values has no piece.
    written = {key: sum(n for k, n in progress if k == key) for key, _ in progress}
    assert list(written) == [key for key, value in arrays.items() if value.size]
    assert written == {key: np.load(out)[key].nbytes for key in written}
    assert len(progress) > len(written) if piece_bytes == 64 else len(progress) == len(written)
    assert result.arrays == len(arrays)
    assert result.bytes == sum(np.load(out)[key].nbytes for key in arrays)
    assert no_export_thread()


def test_the_file_does_not_depend_on_the_piece_size(tmp_path, monkeypatch):
    written = []
    for piece_bytes in (8, 100, 1 << 20):
        monkeypatch.setattr(export, "_PIECE_BYTES", piece_bytes)
        out = tmp_path / f"{piece_bytes}.npz"
        write_npz(str(out), every_kind_of_array().items())
        written.append(out.read_bytes())
    assert written[0] == written[1] == written[2]


def test_an_error_while_reading_reaches_the_caller_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(export, "_PIECE_BYTES", 64)
    out = tmp_path / "out.npz"
    out.write_bytes(b"previous export")

    def arrays():
        yield "a", np.arange(1000.0)
        yield "b", np.arange(1000.0)
        raise CorruptFile("model.ckpt.data-00000-of-00001: tensor 'c' fails its CRC-32C check")

    progress = []
    with pytest.raises(CorruptFile, match="fails its CRC-32C check"):
        write_npz(str(out), arrays(), lambda key, elements: progress.append(key))
    assert list(dict.fromkeys(progress)) == ["a", "b"]  # written (a piece at a time) before the error came
    assert out.read_bytes() == b"previous export"
    assert list(tmp_path.iterdir()) == [out]
    assert no_export_thread()


def test_an_error_while_writing_stops_the_reading(tmp_path, monkeypatch):
    produced = []

    def endless():
        for n in itertools.count():
            produced.append(n)
            yield f"a{n}", np.zeros(1000)

    def disk_full(member, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(zipfile._ZipWriteFile, "write", disk_full)
    with pytest.raises(OutputError, match="No space left on device"):
        write_npz(str(tmp_path / "out.npz"), endless())
    # The reading thread runs at most _PIECES_AHEAD batches ahead, each of _PIECE_BYTES of pieces or
    # _BATCH_ITEMS items at most (an array here is two, its header and its 8,000 bytes), besides the
    # batch it is making and the one being written.
    per_batch = min(export._PIECE_BYTES // 8000, export._BATCH_ITEMS // 2)
    assert len(produced) <= (export._PIECES_AHEAD + 2) * per_batch
    assert list(tmp_path.iterdir()) == []
    assert no_export_thread()


# ---- member names ---------------------------------------------------------------------------------

# Names as the readers make them: TF scopes, Keras paths, TF2 object-graph keys, unicode.
ORDINARY_KEYS = [
    "rnn/basic_lstm_cell/forget/kernel",
    "model_weights/enc/enc/lstm_cell/kernel:0",
    "model/_functional/_operations/1/cell/kernel/.ATTRIBUTES/VARIABLE_VALUE",
    "bi/forward/weight_ih_l0_reverse",
    "größe/重み/🙂/.S/-/0",
    "a.b/c..d/...x/x../ .hidden",
]


@pytest.mark.parametrize("key", ORDINARY_KEYS)
def test_ordinary_keys_are_their_own_member_names(key):
    assert encode_key(key) == key


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("../../../tmp/x", "%2E%2E/%2E%2E/%2E%2E/tmp/x"),
        ("/etc/passwd", "%2Fetc/passwd"),
        ("a\\..\\b", "a%5C..%5Cb"),
        ("a/.. /b/.../c", "a/%2E%2E /b/%2E%2E%2E/c"),
        ("C:/x", "C%3A/x"),
        ("esc\x1b[2J\nrow\x00\x7f\x85", "esc%1B[2J%0Arow%00%7F%85"),
        ("100%", "100%25"),
    ],
)
def test_hostile_keys_are_percent_encoded(key, name):
    assert encode_key(key) == name
    assert decode_key(name) == key


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("/\\.%: aZ:\x00\x1b\n\x85é重")) | st.characters(), max_size=40))
def test_encode_key_is_undone_by_decode_key_and_stays_in_its_folder(key):
    name = encode_key(key)
    assert decode_key(name) == key
    assert not name.startswith("/") and not re.match(r"[A-Za-z]:", name)
    assert not re.search(r"[\\\x00-\x1f\x7f-\x9f]", name)
    for part in name.split("/"):
        assert not re.fullmatch(r"[. ]*\.[. ]*\.[. ]*", part)


# ---- writing to a stream --------------------------------------------------------------------------


class Pipe:
    """An unseekable binary stream, as stdout is when piped."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data) -> int:
        self.data += memoryview(data).cast("B")
        return memoryview(data).nbytes

    def flush(self) -> None:
        pass


def test_a_stream_gets_the_same_arrays_as_a_file(tmp_path):
    arrays = every_kind_of_array()
    pipe = Pipe()
    result = write_npz("stdout", arrays.items(), stream=pipe)  # type: ignore[arg-type]
    assert (result.path, result.arrays) == ("stdout", len(arrays))
    write_npz(str(tmp_path / "file.npz"), arrays.items())
    with np.load(io.BytesIO(bytes(pipe.data))) as streamed, np.load(tmp_path / "file.npz") as written:
        assert streamed.files == written.files == list(arrays)
        for key in arrays:
            assert streamed[key].tobytes() == written[key].tobytes(), key
    assert no_export_thread()


def test_a_failing_stream_is_one_output_error(tmp_path):
    class Closed(Pipe):
        def write(self, data) -> int:
            raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))

    with pytest.raises(OutputError, match=r"^stdout: cannot write \(Broken pipe\)$"):
        write_npz("stdout", every_kind_of_array().items(), stream=Closed())  # type: ignore[arg-type]
    assert no_export_thread()


def test_the_library_refuses_an_input_as_output(tmp_path):
    # write_npz takes the files an export reads, whatever the caller (the CLI passes TensorStore.files()).
    index = tmp_path / "model.ckpt.index"
    index.write_bytes(b"the input")
    (tmp_path / "alias.npz").symlink_to(index)
    for path in (index, tmp_path / "alias.npz"):
        with pytest.raises(OutputError, match="is the input file"):
            write_npz(str(path), every_kind_of_array().items(), inputs=[str(index)])
    assert index.read_bytes() == b"the input"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alias.npz", "model.ckpt.index"]
