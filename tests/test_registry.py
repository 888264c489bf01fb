"""The format registry (readers/formats/): every plugin asked in order, and a file no reader takes
refused in one line that names what it looks like and what to give instead.

Each "not a format we read" case is a real file of that format (made by torch, numpy, onnx, or
written as its format says) run through `summary`; near misses name the path to give instead.
The facts each store declares for the rest of lstm-inspect (origin, checksums, files) are checked
on the fixtures.
"""

from __future__ import annotations

import json
import pickle
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lstm_inspect.errors import UnsupportedFormat
from lstm_inspect.readers import Origin, open_store, reads
from lstm_inspect.readers import formats as formats_package
from lstm_inspect.readers.formats import READERS, plugins

from .conftest import FIXTURES
from .test_cli import assert_clean_error
from .test_cli import run as cli

READS = "lstm-inspect reads SavedModel directories, TensorFlow checkpoints"
KERAS = "Keras files (.keras, .h5, .weights.h5)"
NPZ = "NumPy archives of arrays (.npz, such as lstm-inspect export writes)"
LFS_POINTER = b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"0" * 64 + b"\nsize 12\n"


def copy_fixture(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


# ---- formats lstm-inspect does not read ---------------------------------------------------------


def torch_zip(tmp_path: Path) -> Path:
    import torch

    path = tmp_path / "model.pt"
    torch.save({"weight_ih_l0": torch.zeros(8, 3)}, path)
    return path


def torch_legacy(tmp_path: Path) -> Path:
    import torch

    path = tmp_path / "model.pth"
    torch.save({"weight_ih_l0": torch.zeros(8, 3)}, path, _use_new_zipfile_serialization=False)
    return path


def torchscript(tmp_path: Path) -> Path:
    import warnings

    import torch

    path = tmp_path / "scripted.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 deprecates torch.jit for torch.export
        torch.jit.save(torch.jit.script(torch.nn.LSTM(3, 2)), path)
    return path


def python_pickle(tmp_path: Path) -> Path:
    path = tmp_path / "weights.pkl"
    path.write_bytes(pickle.dumps({"kernel": [1.0, 2.0]}, protocol=4))
    return path


def numpy_npz(tmp_path: Path) -> Path:
    path = tmp_path / "arrays.npz"
    np.savez(path, kernel=np.zeros((3, 8), np.float32))
    return path


def numpy_npy(tmp_path: Path) -> Path:
    path = tmp_path / "kernel.npy"
    np.save(path, np.zeros((3, 8), np.float32))
    return path


def zip_of_other_files(tmp_path: Path) -> Path:
    path = tmp_path / "bundle.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("README.txt", "hello")
        archive.writestr("data.csv", "1,2\n")
    return path


def onnx_model(tmp_path: Path) -> Path:
    import onnx
    from onnx import helper

    path = tmp_path / "model.onnx"
    graph = helper.make_graph([], "empty", [], [])
    onnx.save(helper.make_model(graph), str(path))
    return path


def _safetensors_bytes() -> bytes:
    # An 8-byte little-endian header length, the JSON header, then the data (safetensors README).
    header = json.dumps({"kernel": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    return struct.pack("<Q", len(header)) + header + np.zeros(2, np.float32).tobytes()


def safetensors_named(tmp_path: Path) -> Path:
    path = tmp_path / "model.safetensors"
    path.write_bytes(_safetensors_bytes())
    return path


def safetensors_unnamed(tmp_path: Path) -> Path:
    path = tmp_path / "weights.bin"
    path.write_bytes(_safetensors_bytes())
    return path


def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("the weights are in the other folder\n")
    return path


def json_file(tmp_path: Path) -> Path:
    path = tmp_path / "settings.json"
    path.write_text('{"units": 64, "layers": 2}\n')
    return path


def binary_of_no_known_format(tmp_path: Path) -> Path:
    path = tmp_path / "blob.bin"
    path.write_bytes(np.random.default_rng(0).bytes(300).replace(b"\x80", b"\x81"))
    return path


NOT_READ = {
    torch_zip: "a PyTorch file (torch.save: a zip holding data.pkl), which lstm-inspect does not read",
    torch_legacy: "a PyTorch file in torch.save's legacy format (a pickle), which lstm-inspect does not read",
    torchscript: "a PyTorch file (torch.save: a zip holding data.pkl), which lstm-inspect does not read",
    python_pickle: "a Python pickle, which lstm-inspect never reads (unpickling runs code)",
    numpy_npy: "a NumPy array file (.npy), which holds one array without names",
    zip_of_other_files: "a zip archive (2 members) that is neither a Keras .keras file nor a NumPy .npz",
    onnx_model: "an ONNX model, which lstm-inspect writes (export --layout onnx) but does not read",
    safetensors_named: "a SafeTensors file, which lstm-inspect does not read",
    safetensors_unnamed: "a SafeTensors file, which lstm-inspect does not read",
    text_file: "a text file, not a TensorFlow checkpoint or a Keras file",
    json_file: "a JSON text file, not a TensorFlow checkpoint or a Keras file",
    binary_of_no_known_format: (
        "not a TensorFlow checkpoint (no {path}.index next to it) nor any other file lstm-inspect reads"
    ),
}


@pytest.mark.parametrize("make", list(NOT_READ), ids=[make.__name__ for make in NOT_READ])
def test_a_format_not_read_is_named_in_one_line_with_what_is_read(make, tmp_path):
    path = make(tmp_path)
    result = cli("summary", str(path))
    assert_clean_error(result, f"{path}: {NOT_READ[make].format(path=path)}; {READS}", KERAS)


@pytest.mark.parametrize("make", list(NOT_READ), ids=[make.__name__ for make in NOT_READ])
def test_the_library_refuses_it_as_unsupported(make, tmp_path):
    with pytest.raises(UnsupportedFormat, match="lstm-inspect reads"):
        open_store(make(tmp_path))


# ---- near misses: what the file is, and the path to give instead ------------------------------------


@pytest.mark.parametrize("name", ["weights.bin", "model.keras", "model.h5", "model.ckpt.meta"])
def test_an_empty_file_is_said_to_be_empty(name, tmp_path):
    (tmp_path / name).write_bytes(b"")
    assert_clean_error(cli("summary", str(tmp_path / name)), f"{tmp_path / name}: an empty file (0 bytes)")


@pytest.mark.parametrize("name", ["weights.bin", "model.pbtxt", "model.weights.h5"])
def test_a_git_lfs_pointer_says_so_whatever_its_name(name, tmp_path):
    (tmp_path / name).write_bytes(LFS_POINTER)
    assert_clean_error(cli("summary", str(tmp_path / name)), f"{name}: this is a Git LFS pointer", "git lfs pull")


def test_a_pbtxt_that_is_not_a_graph_def(tmp_path):
    path = tmp_path / "state.pbtxt"
    path.write_text('model_checkpoint_path: "model.ckpt"\n')
    assert_clean_error(
        cli("summary", str(path)),
        f"{path}: a text file that is not a TensorFlow GraphDef (a text GraphDef starts with `node`",
    )


def test_a_meta_graph_given_as_path_opens_the_checkpoint_beside_it(tmp_path):
    # Saver.save's .meta opens the checkpoint it was written beside (issue 11); one in text format,
    # which Saver never writes, is a graph lstm-inspect cannot read: one warning, and the weights.
    run = copy_fixture("tf1_basic", tmp_path)
    (run / "model.ckpt.meta").write_text("meta_info_def {\n  stripped_op_list {\n  }\n}\n")
    result = cli("summary", str(run / "model.ckpt.meta"))
    assert result.exit_code == 0 and "rnn/basic_lstm_cell" in result.stdout
    (warning,) = [line for line in result.stderr.splitlines() if line]
    assert warning.startswith("Warning: ") and "model.ckpt.meta" in warning


def test_a_data_shard_without_its_index_names_the_prefix(tmp_path):
    run = copy_fixture("tf1_basic", tmp_path)
    (run / "model.ckpt.index").unlink()
    shard = run / "model.ckpt.data-00000-of-00001"
    prefix = run / "model.ckpt"
    assert_clean_error(
        cli("summary", str(shard)),
        f"{shard}: a data shard of the checkpoint {prefix}, whose index {prefix}.index is not beside it",
        f"give the prefix {prefix}",
    )


@pytest.mark.parametrize("slash", ["", "/"])
def test_the_variables_directory_of_a_saved_model_points_at_the_saved_model(slash, tmp_path):
    saved = copy_fixture("keras2_saved_model", tmp_path) / "saved_model"
    result = cli("summary", f"{saved / 'variables'}{slash}")
    assert_clean_error(result, f"the variables directory of the SavedModel {saved}; give that directory")
    assert cli("summary", str(saved)).exit_code == 0


def test_the_text_graph_of_a_saved_model_points_at_the_saved_model(tmp_path):
    saved = tmp_path / "exported"
    saved.mkdir()
    (saved / "saved_model.pbtxt").write_text("saved_model_schema_version: 1\n")
    graph = saved / "saved_model.pbtxt"
    assert_clean_error(cli("summary", str(graph)), f"{graph}: the graph of the SavedModel {saved}; give that directory")


@pytest.mark.parametrize(
    "config",
    [
        {"module": "keras", "class_name": "Sequential", "config": {"name": "seq", "layers": []}},  # Keras 3
        {"class_name": "Sequential", "config": {"name": "seq", "layers": []}, "keras_version": "2.15.0"},  # to_json
    ],
)
def test_a_keras_model_config_on_its_own_says_the_weights_are_elsewhere(config, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    assert_clean_error(cli("summary", str(path)), f"{path}: a Keras model config, which holds no weights")


# ---- what a file is told by, whatever its name ------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "renamed"), [("keras3/model.keras", "model.zip"), ("keras2_h5/model.h5", "weights")]
)
def test_a_keras_file_is_known_by_its_content(fixture, renamed, tmp_path):
    path = tmp_path / renamed
    shutil.copy(FIXTURES / fixture, path)
    with open_store(path) as renamed_store, open_store(FIXTURES / fixture) as original:
        assert renamed_store.format == original.format
        assert list(renamed_store.tensors()) == list(original.tensors())


def test_a_keras_archive_that_is_a_pytorch_zip_inside_says_what_keras_misses(tmp_path):
    # Named .keras, so the Keras reader says what the archive lacks.
    path = tmp_path / "model.keras"
    shutil.copy(torch_zip(tmp_path), path)
    assert_clean_error(cli("summary", str(path)), "this .keras archive has no model.weights.h5")


# ---- the registry ------------------------------------------------------------------------------------


def test_every_registered_reader_is_asked_in_order(tmp_path, monkeypatch):
    asked: list[str] = []
    for plugin in plugins():
        name = plugin.__name__.rsplit(".", 1)[1]
        monkeypatch.setattr(plugin, "accept", lambda probe, name=name: asked.append(name) or False)
    path = text_file(tmp_path)
    with pytest.raises(UnsupportedFormat, match="a text file"):
        open_store(path)
    assert asked == list(READERS) == ["saved_model", "tf_checkpoint", "frozen_graph", "keras", "npz"]


def test_the_first_reader_that_accepts_opens_and_no_later_one_is_asked(monkeypatch):
    asked: list[str] = []
    for plugin in plugins():
        name = plugin.__name__.rsplit(".", 1)[1]
        real = plugin.accept
        monkeypatch.setattr(plugin, "accept", lambda probe, name=name, real=real: asked.append(name) or real(probe))
    with open_store(FIXTURES / "tf1_basic" / "model.ckpt") as store:
        assert store.format == "tf-checkpoint"
    assert asked == ["saved_model", "tf_checkpoint"]


def test_a_plugin_added_to_the_registry_is_asked_and_named(tmp_path, monkeypatch):
    # What a new format takes: one plugin module and its line in READERS.
    import sys
    import types

    plugin = types.ModuleType(f"{formats_package.__name__}.tiny")
    plugin.READS = "tiny files (.tiny)"  # type: ignore[attr-defined]
    plugin.accept = lambda probe: probe.name.endswith(".tiny")  # type: ignore[attr-defined]
    plugin.open_path = lambda probe, verify: open_store(FIXTURES / "tf1_basic" / "model.ckpt")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, plugin.__name__, plugin)
    monkeypatch.setattr(formats_package, "READERS", (*READERS, "tiny"))
    (tmp_path / "a.tiny").write_bytes(b"tiny")
    with open_store(tmp_path / "a.tiny") as store:
        assert "rnn/basic_lstm_cell/kernel" in store.tensors()
    assert reads().endswith(f"{KERAS}, {NPZ} and tiny files (.tiny)")
    assert_clean_error(cli("summary", str(text_file(tmp_path))), "and tiny files (.tiny)")


def test_reads_names_every_plugin_in_order():
    said = reads()
    positions = [said.index(plugin.READS) for plugin in plugins()]
    assert positions == sorted(positions) and len(positions) == len(READERS)


def test_a_checkpoint_data_shard_is_claimed_by_name_without_reading_it(tmp_path, monkeypatch):
    # A remote shard must not be fetched to be sniffed; locally, the same rule: no read of its bytes.
    from lstm_inspect.readers.formats import probe as probe_module

    def no_read(self):
        raise AssertionError(f"{self.path} was read to decide its format")

    monkeypatch.setattr(probe_module.Probe, "_opened", no_read)
    with open_store(FIXTURES / "tf1_basic" / "model.ckpt.data-00000-of-00001") as store:
        assert "rnn/basic_lstm_cell/kernel" in store.tensors()


# ---- what each store declares ------------------------------------------------------------------------

FACTS = {
    "keras3/model.keras": (Origin("keras-model", "3.15.1", ".keras"), True),
    "keras3/model.h5": (Origin("keras-model", "3.15.1", ".h5"), False),
    "keras3/model.weights.h5": (None, False),
    "keras2_h5/model.h5": (Origin("keras-model", "2.21.0", ".h5"), False),
    "tf1_basic/model.ckpt": (Origin("tensorflow"), True),
    "tf2_object": (Origin("tensorflow"), True),
    "tf1_frozen/frozen.pb": (Origin("tensorflow"), False),
    "tf1_frozen/frozen.pbtxt": (Origin("tensorflow"), False),
    "tf1_frozen/frozen_saved_model": (Origin("tensorflow"), False),
    "keras2_saved_model/saved_model": (Origin("tensorflow"), True),
}


@pytest.mark.parametrize("fixture", list(FACTS))
def test_each_store_says_who_loads_the_file_and_whether_it_has_checksums(fixture):
    origin, checksums = FACTS[fixture]
    with open_store(FIXTURES / fixture) as store:
        assert (store.origin, store.checksums) == (origin, checksums)


def test_a_keras_h5_weights_only_save_has_no_loader(tmp_path):
    import h5py

    path = tmp_path / "weights.h5"
    shutil.copy(FIXTURES / "keras2_h5" / "model.h5", path)
    with h5py.File(path, "r+") as f:
        del f.attrs["model_config"]
    with open_store(path) as store:
        assert store.origin is None and not store.checksums


def test_the_tensorflow_backend_declares_the_same_facts():
    pytest.importorskip("tensorflow")
    with open_store(FIXTURES / "tf1_basic" / "model.ckpt", backend="tensorflow") as store:
        assert (store.origin, store.checksums) == (Origin("tensorflow"), True)


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("tf1_frozen/frozen.pb", ["tf1_frozen/frozen.pb"]),
        ("tf1_frozen/frozen_saved_model", ["tf1_frozen/frozen_saved_model/saved_model.pb"]),
        (
            "keras2_saved_model/saved_model",
            [
                "keras2_saved_model/saved_model/variables/variables.index",
                "keras2_saved_model/saved_model/variables/variables.data-00000-of-00001",
                "keras2_saved_model/saved_model/saved_model.pb",
                "keras2_saved_model/saved_model/keras_metadata.pb",
                "keras2_saved_model/saved_model/fingerprint.pb",
            ],
        ),
    ],
)
def test_graph_and_saved_model_stores_name_their_files(fixture, expected):
    with open_store(FIXTURES / fixture) as store:
        assert store.files() == [str(FIXTURES / name) for name in expected]


@pytest.mark.parametrize("fixture", ["tf1_frozen/frozen.pb", "keras2_saved_model/saved_model"])
def test_export_of_a_graph_or_saved_model_writes_and_refuses_to_replace_its_input(fixture, tmp_path):
    # FrozenGraph and RenamedStore had no files(): export raised AttributeError.
    source = tmp_path / "source"
    shutil.copytree(FIXTURES / fixture.split("/")[0], source)
    given = source / fixture.split("/", 1)[1]
    out = tmp_path / "gates.npz"
    result = cli("export", str(given), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    with np.load(out) as npz:
        assert any(key.endswith("/forget/kernel") for key in npz.files)
    graph = given if given.is_file() else given / "saved_model.pb"
    before = graph.read_bytes()
    assert cli("export", str(given), "-o", str(graph), "--force").exit_code != 0
    assert graph.read_bytes() == before


# ---- the same over a URL --------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path, monkeypatch):
    """An HTTP server over a folder holding a PyTorch file, a text file, a frozen graph and a copy
    of tf1_basic without its index."""
    from .servers import HTTPFileServer

    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(torch_zip(tmp_path), root / "model.pt")
    (root / "notes.txt").write_text("hello\n")
    shutil.copy(FIXTURES / "tf1_frozen" / "frozen.pb", root / "frozen.pb")
    shutil.copy(FIXTURES / "tf1_basic" / "model.ckpt.data-00000-of-00001", root / "model.ckpt.data-00000-of-00001")
    monkeypatch.setenv("LSTM_INSPECT_TIMEOUT", "5")
    monkeypatch.setenv("LSTM_INSPECT_RETRIES", "0")
    with HTTPFileServer(root) as server:
        yield server


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("model.pt", "a PyTorch file (torch.save: a zip holding data.pkl)"),
        ("notes.txt", "a text file, not a TensorFlow checkpoint or a Keras file"),
        ("frozen.pb", "a TensorFlow graph file, which lstm-inspect reads from local files only"),
        ("model.ckpt.data-00000-of-00001", "a data shard of the checkpoint"),
    ],
)
def test_a_url_no_reader_takes_is_named_the_same_way(served, name, said):
    url = f"{served.url}/{name}"
    assert_clean_error(cli("summary", url), f"{url}: {said}")
    if name.startswith("model.ckpt.data"):
        assert served.log.bytes(name) == 0  # claimed by its name: not one byte of the shard fetched


def test_an_npz_of_any_arrays_is_read_and_summarised(tmp_path):
    # Any .npz of numeric arrays opens (readers/npz.py); one that holds no LSTM says so.
    result = cli("summary", str(numpy_npz(tmp_path)))
    assert result.exit_code == 0, result.stderr
    assert "No LSTM or GRU layers found." in result.stdout and "kernel" in result.stdout
