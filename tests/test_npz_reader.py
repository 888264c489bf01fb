"""The .npz reader: this tool's own exports read back as layers, exactly, with the forget bias they
store; and every hostile .npz (pickled objects, crafted headers, sizes that lie, cut short, not a
regular file) refused in one line."""

from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import lstm_inspect
from lstm_inspect import CorruptFile, UnsupportedFormat
from lstm_inspect.cli import main
from lstm_inspect.export import gate_arrays
from lstm_inspect.numpy_lstm import run_lstm
from lstm_inspect.readers import open_store
from lstm_inspect.readers.npz import NpzStore
from lstm_inspect.writers.npz import write_npz

from .conftest import FIXTURES, load_options, manifest

WITH_REFERENCE = [e for e in manifest() if e.get("reference")]


def export(source: Path, out: Path, *args: str) -> Path:
    result = CliRunner().invoke(main, ["export", str(source), "-o", str(out), "-q", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return out


@pytest.mark.parametrize("entry", WITH_REFERENCE, ids=[e["name"] for e in WITH_REFERENCE])
def test_a_gates_export_reads_back_as_the_layers_it_came_from(entry, tmp_path):
    source = FIXTURES / entry["path"]
    said = [f"--{key.replace('_', '-')}={value}" for key, value in load_options(entry).items()]
    out = export(source, tmp_path / "gates.npz", *said)
    reference = np.load(FIXTURES / entry["reference"])
    with lstm_inspect.load(source, **load_options(entry)) as original, lstm_inspect.load(out) as exported:
        assert exported.format == "npz"
        assert [layer.name for layer in exported.layers] == [layer.name for layer in original.layers]
        assert exported.variables == []  # the 0-d forget biases are settings, not tensors
        for expected in entry["layers"]:
            a, b = original.layer(expected["name"]), exported.layer(expected["name"])
            assert b.spec.sizes == a.spec.sizes
            assert (b.spec.pair, b.spec.direction) == (a.spec.pair, a.spec.direction)
            setting = b.spec.settings["forget_bias"]
            assert setting.value == a.spec.forget_bias and not setting.assumed
            assert setting.source == f"stored in the export: {a.name}/forget_bias"
            for gate, blocks in a.gates().items():
                for part, value in blocks.parts().items():
                    got = getattr(b.gate(gate), part)
                    assert got.dtype == np.float32 or got.dtype == value.dtype
                    assert np.array_equal(got, value), (gate, part)
            h, c = run_lstm(
                {g: blocks.parts() for g, blocks in b.gates().items()},
                reference[f"{b.name}/x"],
                forget_bias=b.forget_bias,
                projection=b.projection,
                activation=expected["activation"],
                recurrent_activation=expected["recurrent_activation"],
                cell_clip=b.clips().get("cell_clip"),  # the export's 0-d L/cell_clip, L/proj_clip
                proj_clip=b.clips().get("proj_clip"),
            )
            assert b.clips() == pytest.approx(a.clips())
            np.testing.assert_allclose(h, reference[f"{b.name}/h"], atol=2e-5, rtol=1e-4)
            np.testing.assert_allclose(c, reference[f"{b.name}/c"], atol=2e-5, rtol=1e-4)


def test_export_summary_says_where_its_settings_come_from(tmp_path):
    out = export(FIXTURES / "tf1_peephole_proj" / "model.ckpt", tmp_path / "gates.npz")
    with lstm_inspect.load(out) as ckpt:
        (layer,) = ckpt.layers
        assert layer.spec.layout.key == "gates-export"
        assert layer.spec.peepholes and layer.spec.projection_size == 8
        # The export stores no activations: they are said to be unknown, never assumed.
        assert layer.spec.settings["activation"].value == "unknown"
    result = CliRunner().invoke(main, ["summary", str(out)])
    assert result.exit_code == 0, result.stderr
    assert "rnn/lstm_cell" in result.stdout and "(npz)" in result.stdout


def test_keras_layout_export_is_found_as_a_keras_layer_with_its_folded_forget_bias(tmp_path):
    out = export(FIXTURES / "tf1_basic" / "model.ckpt", tmp_path / "keras.npz", "--layout", "keras")
    with lstm_inspect.load(FIXTURES / "tf1_basic" / "model.ckpt") as tf1, lstm_inspect.load(out) as keras:
        (layer,) = keras.layers
        assert layer.spec.layout.key == "keras" and layer.forget_bias == 0.0
        forget = tf1.layer("rnn/basic_lstm_cell").gate("forget")
        np.testing.assert_array_equal(layer.gate("forget").bias, forget.bias + np.float32(1.0))


def test_an_npz_of_any_name_is_sniffed_and_keras_files_still_open_as_keras(tmp_path):
    out = export(FIXTURES / "keras3" / "model.keras", tmp_path / "gates.npz")
    renamed = tmp_path / "weights.bin"
    renamed.write_bytes(out.read_bytes())
    with open_store(renamed) as store:
        assert isinstance(store, NpzStore) and store.files() == [str(renamed)]
    with open_store(FIXTURES / "keras3" / "model.keras") as store:
        assert store.format == "keras-v3"
    with open_store(FIXTURES / "tf1_basic" / "model.ckpt") as store:
        assert store.format == "tf-checkpoint"


def test_compressed_fortran_order_and_big_endian_members_read_as_numpy_does(tmp_path):
    path = tmp_path / "arrays.npz"
    values = {
        "f": np.asfortranarray(np.arange(12, dtype=np.float64).reshape(3, 4)),
        "big": np.arange(5, dtype=">f4"),
        "ints": np.arange(6, dtype=np.int16).reshape(2, 3),
        "flags": np.array([True, False]),
        "empty": np.zeros((0, 3), np.float32),
    }
    np.savez_compressed(path, **values)
    with open_store(path) as store:
        assert {name: info.dtype for name, info in store.tensors().items()} == {
            "f": "float64",
            "big": "float32",
            "ints": "int16",
            "flags": "bool",
            "empty": "float32",
        }
        for name, value in values.items():
            got = store.read(name)
            assert got.shape == value.shape and got.dtype.isnative
            np.testing.assert_array_equal(got, value)


def test_settings_are_hidden_only_beside_a_layers_blocks(tmp_path):
    path = tmp_path / "arrays.npz"
    np.savez(path, **{"loose/forget_bias": np.array(1.0, np.float32), "x/y": np.ones(3)})
    with lstm_inspect.load(path) as ckpt:
        assert ckpt.layers == []
        assert sorted(v.info.name for v in ckpt.variables) == ["loose/forget_bias", "x/y"]


def test_encoded_member_names_are_decoded(tmp_path):
    with lstm_inspect.load(FIXTURES / "tf1_basic" / "model.ckpt") as ckpt:
        arrays = [(key.replace("rnn/", "../odd%name/"), value) for key, value in gate_arrays(ckpt)]
        out = tmp_path / "gates.npz"
        write_npz(str(out), arrays)
    assert any("%2E%2E" in name for name in zipfile.ZipFile(out).namelist())
    with lstm_inspect.load(out) as exported:
        (layer,) = exported.layers
        assert layer.name == "../odd%name/basic_lstm_cell" and layer.forget_bias == 1.0


# ---- hostile files ---------------------------------------------------------------------------------


def npy_bytes(header: bytes, data: bytes = b"", version: int = 1) -> bytes:
    length = struct.pack("<H" if version == 1 else "<I", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + length + header + data


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def header(descr: str, shape: tuple[int, ...]) -> bytes:
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"
    return (text + " " * (63 - len(text) % 64) + "\n").encode("latin1")


def assert_refused(path: Path, error: type, *fragments: str) -> None:
    with pytest.raises(error) as caught:
        with lstm_inspect.load(path) as ckpt:
            for layer in ckpt.layers:
                layer.gates()
            for variable in ckpt.variables:
                ckpt.store.read(variable.info.name)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    result = CliRunner().invoke(main, ["split", str(path)])
    assert result.exit_code != 0 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_an_object_array_is_refused_and_never_unpickled(tmp_path, monkeypatch):
    path = tmp_path / "pickled.npz"
    np.savez(path, ok=np.ones(2), objects=np.array([{"a": 1}, None], dtype=object))

    def no_unpickling(*args, **kwargs):
        raise AssertionError("unpickled")

    monkeypatch.setattr(pickle, "load", no_unpickling)
    monkeypatch.setattr(pickle, "loads", no_unpickling)
    assert_refused(path, UnsupportedFormat, "objects.npy", "pickle")


def test_a_crafted_header_is_parsed_as_a_literal_only(tmp_path):
    evil = b"{'descr': __import__('os').system('touch pwned'), 'fortran_order': False, 'shape': (1,)}\n"
    path = write_zip(tmp_path / "evil.npz", {"a.npy": npy_bytes(evil, b"\0" * 8)})
    assert_refused(path, CorruptFile, "a.npy", "header cannot be parsed")
    assert not (Path.cwd() / "pwned").exists()


def test_a_header_longer_than_numpy_allows_is_refused_before_it_is_read(tmp_path):
    path = write_zip(tmp_path / "long.npz", {"a.npy": npy_bytes(b" " * 20_000, version=2)})
    assert_refused(path, CorruptFile, "20,000-byte .npy header")


@pytest.mark.parametrize(
    ("member", "fragments"),
    [
        (npy_bytes(header("<f4", (1000, 1000)), b"\0" * 16), ("needs 4,000,000", "holds 16 bytes")),
        (npy_bytes(header("<f4", (2,)), b"\0" * 12), ("needs 8",)),
        (b"not an array at all", ("no \\x93NUMPY magic",)),
        (b"\x93NUMPY\x01\x00\xff", ("cut short",)),
        (npy_bytes(header("<f4", (2,)))[:20], ("cut short",)),
    ],
    ids=["shape-larger-than-data", "data-larger-than-shape", "no-magic", "no-length", "header-cut"],
)
def test_sizes_that_do_not_add_up_are_refused(member, fragments, tmp_path):
    path = write_zip(tmp_path / "bad.npz", {"a.npy": member})
    assert_refused(path, CorruptFile, "a.npy", *fragments)


@pytest.mark.parametrize(
    ("descr", "fragment"),
    [("<U5", "numbers only"), ("|V4", "numbers only"), ("<M8[s]", "numbers only")],
)
def test_non_numeric_dtypes_are_refused(descr, fragment, tmp_path):
    path = write_zip(tmp_path / "text.npz", {"a.npy": npy_bytes(header(descr, (1,)), b"\0" * 20)})
    with pytest.raises((UnsupportedFormat, CorruptFile), match=fragment):
        lstm_inspect.load(path)


def test_unsupported_npy_version_is_said(tmp_path):
    path = write_zip(tmp_path / "v9.npz", {"a.npy": b"\x93NUMPY\x09\x00" + b"\0" * 8})
    assert_refused(path, UnsupportedFormat, "version 9.0")


def test_a_member_that_is_not_npy_is_refused(tmp_path):
    path = write_zip(tmp_path / "mixed.npz", {"a.npy": np_member(np.ones(2)), "notes.txt": b"hello"})
    assert_refused(path, UnsupportedFormat, "notes.txt", "not an .npy array")


def np_member(value: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, value)
    return buffer.getvalue()


def test_a_damaged_value_fails_its_crc_when_read(tmp_path):
    out = export(FIXTURES / "tf1_basic" / "model.ckpt", tmp_path / "gates.npz")
    data = bytearray(out.read_bytes())
    info = zipfile.ZipFile(out).getinfo("rnn/basic_lstm_cell/forget/kernel.npy")
    local_header = 30 + len(info.filename) + len(info.extra)
    data[info.header_offset + local_header + 200] ^= 0xFF
    out.write_bytes(bytes(data))
    assert_refused(out, CorruptFile, "rnn/basic_lstm_cell/forget/kernel", "damaged")


@pytest.mark.parametrize("keep", [0.5, 0.97])
def test_a_truncated_npz_is_refused(keep, tmp_path):
    out = export(FIXTURES / "tf1_basic" / "model.ckpt", tmp_path / "gates.npz")
    data = out.read_bytes()
    out.write_bytes(data[: int(len(data) * keep)])
    assert_refused(out, CorruptFile, "damaged or truncated")


def test_a_file_named_npz_that_is_no_zip_is_refused(tmp_path):
    path = tmp_path / "plain.npz"
    path.write_bytes(b"just some text, long enough to be no Git LFS pointer\n" * 40)
    assert_refused(path, UnsupportedFormat, "not a zip archive")


def test_a_fifo_named_npz_is_refused_without_blocking(tmp_path):
    path = tmp_path / "pipe.npz"
    os.mkfifo(path)
    with pytest.raises(UnsupportedFormat, match="FIFO"):
        lstm_inspect.load(path)


def test_two_members_decoding_to_one_name_are_refused(tmp_path):
    path = write_zip(tmp_path / "twice.npz", {"A.npy": np_member(np.ones(2)), "%41.npy": np_member(np.ones(2))})
    assert_refused(path, CorruptFile, "two arrays are both named 'A'")
