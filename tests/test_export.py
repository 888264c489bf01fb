"""export.write_npz: one thread reads the arrays while another writes them. What comes back is
what went in, bit for bit, however it was cut into pieces; a failure on either side stops both
and leaves nothing behind."""

from __future__ import annotations

import errno
import itertools
import os
import threading
import zipfile

import ml_dtypes
import numpy as np
import pytest

from lstm_inspect import export
from lstm_inspect.errors import CorruptFile, OutputError
from lstm_inspect.export import write_npz


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
    result = write_npz(str(out), arrays.items(), lambda key, elements: progress.append((key, elements)))
    with zipfile.ZipFile(out) as archive:
        assert archive.testzip() is None  # every member's CRC-32
        assert archive.namelist() == [key + ".npy" for key in arrays]
    with np.load(out) as loaded:
        for key, value in arrays.items():
            expected = value.astype(np.float32) if value.dtype.kind == "V" else value
            got = loaded[key]
            assert (got.dtype, got.shape) == (expected.dtype, expected.shape), key
            assert got.tobytes() == expected.tobytes(), key
    assert progress == [(key, value.size) for key, value in arrays.items()]
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
    assert progress == ["a", "b"]  # written before the error came
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
    # The reading thread runs at most _PIECES_AHEAD pieces ahead (an array here is two: its header and data).
    assert len(produced) <= export._PIECES_AHEAD + 2
    assert list(tmp_path.iterdir()) == []
    assert no_export_thread()
