"""SavedModel directories and object-graph names (issue 11): tf_keras `model.save(dir)`, Keras 3
`model.export(dir)`, `tf.saved_model.save` of a tf.Module, a TF1 SavedModel without variables,
and the positional keys of TF2 checkpoints, against the fixtures TensorFlow made."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

import lstm_inspect
from lstm_inspect.errors import CorruptFile, LstmInspectError, UnsupportedFormat
from lstm_inspect.numpy_lstm import run_lstm
from lstm_inspect.readers import open_store
from lstm_inspect.readers.protobuf import fields
from lstm_inspect.readers.saved_model import canonical_paths, with_object_paths
from lstm_inspect.readers.tf_bundle import TFCheckpoint
from lstm_inspect.results import summarize

from .conftest import FIXTURES
from .test_tf_graph import field

MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
SAVED_MODELS = [e for e in MANIFEST["fixtures"] if e["format"] == "saved-model"]
KERAS2 = FIXTURES / "keras2_saved_model"


def entry(name: str) -> dict:
    (found,) = [e for e in MANIFEST["fixtures"] if e["name"] == name]
    return found


@pytest.mark.parametrize("fixture", SAVED_MODELS, ids=[e["name"] for e in SAVED_MODELS])
def test_saved_model_layers_match_what_the_framework_built(fixture):
    reference = np.load(FIXTURES / fixture["reference"])
    with lstm_inspect.load(FIXTURES / fixture["path"]) as model:
        assert model.format == "saved-model"
        summary = summarize(model)
        # Each variable once: Keras 3 stores each twice (variables/N and _all_variables/N).
        assert summary.total_params == fixture["total_params"]
        assert sorted(layer.name for layer in model.layers) == sorted(layer["name"] for layer in fixture["layers"])
        for expected in fixture["layers"]:
            layer = model.layer(expected["name"])
            assert (layer.input_size, layer.units, layer.params) == (
                expected["input_size"],
                expected["units"],
                expected["params"],
            )
            assert layer.spec.tensors["kernel"].source == expected["kernel_key"]
            h, c = run_lstm(
                layer.gates(),
                reference[f"{expected['reference_key']}/x"],
                forget_bias=expected["forget_bias"],
                activation=expected["activation"],
                recurrent_activation=expected["recurrent_activation"],
            )
            np.testing.assert_allclose(h, reference[f"{expected['reference_key']}/h"], atol=2e-5, rtol=1e-4)
            np.testing.assert_allclose(c, reference[f"{expected['reference_key']}/c"], atol=2e-5, rtol=1e-4)


def test_tf_keras_saved_model_reads_as_the_same_models_h5():
    with open_store(KERAS2 / "saved_model") as saved, open_store(KERAS2 / "model.h5") as h5:
        ours = {n: i for n, i in saved.tensors().items() if "/" in n and not n.startswith("optimizer/")}
        assert {n: (i.shape, i.dtype) for n, i in ours.items()} == {
            n: (i.shape, i.dtype) for n, i in h5.tensors().items()
        }
        for name in ours:
            assert saved.read(name).tobytes() == h5.read(name).tobytes(), name
        configs, expected = saved.layer_configs(), h5.layer_configs()
        assert sorted(configs) == sorted(expected) == ["bi/backward", "bi/forward", "enc", "head"]
        for scope, config in configs.items():
            assert (config.class_name, config.keras_version) == (expected[scope].class_name, "2.21.0")
            for key in ("units", "activation", "recurrent_activation", "unit_forget_bias", "go_backwards"):
                assert config.config.get(key) == expected[scope].config.get(key), (scope, key)
    with lstm_inspect.load(KERAS2 / "saved_model") as saved, lstm_inspect.load(KERAS2 / "model.h5") as h5:
        for layer in h5.layers:
            twin = saved.layer(layer.name)
            assert (twin.cell, twin.activation, twin.activation_source, twin.pair, twin.direction) == (
                layer.cell,
                layer.activation,
                layer.activation_source,
                layer.pair,
                layer.direction,
            )


def test_keras3_export_lists_each_variable_once():
    fixture = entry("keras3_export")
    directory = FIXTURES / fixture["path"]
    checkpoint = TFCheckpoint(str(directory / "variables" / "variables"))
    keys = [k for k in checkpoint.tensors() if k.startswith(("variables/", "_all_variables/"))]
    with open_store(directory) as saved:
        names = [n for n in saved.tensors() if n != "_CHECKPOINTABLE_OBJECT_GRAPH"]
        assert len(keys) == 11 + 14 and len(names) == 14  # 11 weights twice, 3 seed states once
        assert sorted(n for n in names if n.startswith("bi/")) == [
            f"bi/{d}/{w}" for d in ("backward", "forward") for w in ("bias", "kernel", "recurrent_kernel")
        ]
        for name, info in saved.tensors().items():
            if info.dtype != "string":
                assert saved.read(name).tobytes() == checkpoint.read(info.source).tobytes()


def test_module_saved_model_names_variables_by_object_path():
    with open_store(FIXTURES / "tf2_module_saved_model" / "saved_model") as saved:
        assert {n: i.source for n, i in saved.tensors().items()} == {
            "_CHECKPOINTABLE_OBJECT_GRAPH": "_CHECKPOINTABLE_OBJECT_GRAPH",
            "enc/cell/kernel": "enc/variables/0/.ATTRIBUTES/VARIABLE_VALUE",
            "enc/cell/recurrent_kernel": "enc/variables/1/.ATTRIBUTES/VARIABLE_VALUE",
            "enc/cell/bias": "enc/variables/2/.ATTRIBUTES/VARIABLE_VALUE",
            "head": "head/.ATTRIBUTES/VARIABLE_VALUE",
        }
        assert saved.layer_configs() == {} and saved.layer_hints() == {}


def test_positional_checkpoint_keys_are_named_by_the_object_graph():
    # The hook tf_bundle.open_checkpoint calls: the SavedModel's variables as a plain checkpoint.
    prefix = FIXTURES / "tf2_module_saved_model" / "saved_model" / "variables" / "variables"
    with open_store(prefix) as checkpoint:
        assert sorted(checkpoint.tensors()) == [
            "_CHECKPOINTABLE_OBJECT_GRAPH",
            "enc/cell/bias/.ATTRIBUTES/VARIABLE_VALUE",
            "enc/cell/kernel/.ATTRIBUTES/VARIABLE_VALUE",
            "enc/cell/recurrent_kernel/.ATTRIBUTES/VARIABLE_VALUE",
            "head/.ATTRIBUTES/VARIABLE_VALUE",
        ]
    with lstm_inspect.load(prefix) as model:
        assert [layer.name for layer in model.layers] == ["enc"]
    # Keys that name every variable by attribute stay as they are, the object graph unread.
    tf2 = FIXTURES / "tf2_object" / "ckpt-1"
    assert type(with_object_paths(TFCheckpoint(str(tf2)))) is TFCheckpoint


def test_a_tf1_saved_model_without_variables_is_read_from_its_graph():
    with open_store(FIXTURES / "tf1_frozen" / "frozen_saved_model") as saved:
        assert saved.format == "saved-model"
        assert saved.layer_hints()["rnn/lstm_cell"].settings["forget_bias"].value == 2.0
    with open_store(FIXTURES / "tf1_frozen" / "frozen_saved_model" / "saved_model.pb") as saved:
        assert saved.format == "saved-model" and "rnn/lstm_cell/kernel" in saved.tensors()


def test_a_keras_saved_model_without_variables_is_refused(tmp_path):
    shutil.copytree(KERAS2 / "saved_model", tmp_path / "model", ignore=shutil.ignore_patterns("variables"))
    with pytest.raises(UnsupportedFormat, match="without variables/.*copy the variables/ directory") as caught:
        open_store(tmp_path / "model")
    assert "\n" not in str(caught.value)


def test_saved_user_object_metadata_names_layers_before_tf_2_5(tmp_path):
    # TF < 2.5 kept each Keras object's metadata in saved_model.pb (SavedUserObject.metadata, field
    # 3) and wrote no keras_metadata.pb: move it there and the names and configs are the same.
    from lstm_inspect.readers.protobuf import decode
    from lstm_inspect.readers.tf_protos import SCHEMA

    source = KERAS2 / "saved_model"
    metadata = {
        node.get("node_id", 0): node["metadata"]
        for node in decode((source / "keras_metadata.pb").read_bytes(), "SavedMetadata", SCHEMA)["nodes"]
    }

    def with_metadata(object_graph: bytes) -> bytes:
        out = bytearray()
        for node_id, (number, node) in enumerate((n, v) for n, v in fields(object_graph) if n == 1):
            parts = []
            for inner, value in fields(node):
                if inner == 4 and node_id in metadata:
                    value = value + field(3, metadata[node_id].encode())
                parts.append(field(inner, value))
            out += field(number, b"".join(parts))
        return bytes(out)

    saved_model = bytearray()
    for number, value in fields((source / "saved_model.pb").read_bytes()):
        if number == 2:
            value = b"".join(field(n, with_metadata(v) if n == 7 else v) for n, v in fields(value))
        saved_model += field(number, value)
    shutil.copytree(source, tmp_path / "old", ignore=shutil.ignore_patterns("keras_metadata.pb"))
    (tmp_path / "old" / "saved_model.pb").write_bytes(bytes(saved_model))
    with open_store(tmp_path / "old") as old, open_store(source) as new:
        assert old.tensors() == new.tensors()
        assert old.layer_configs() == new.layer_configs()


def test_saved_model_text_format_reads_as_the_binary(tmp_path):
    text_format = pytest.importorskip("google.protobuf.text_format")
    saved_model_pb2 = pytest.importorskip("tensorflow.core.protobuf.saved_model_pb2")
    source = FIXTURES / "tf2_module_saved_model" / "saved_model"
    message = saved_model_pb2.SavedModel.FromString((source / "saved_model.pb").read_bytes())
    shutil.copytree(source, tmp_path / "text", ignore=shutil.ignore_patterns("saved_model.pb"))
    (tmp_path / "text" / "saved_model.pbtxt").write_text(text_format.MessageToString(message))
    with open_store(tmp_path / "text") as text, open_store(source) as binary:
        assert text.tensors() == binary.tensors()


# --- the canonical path ---------------------------------------------------------------------------


def graph(*children: list[tuple[int, str]]) -> list[dict]:
    return [{"children": [{"node_id": n, "local_name": name} for n, name in edges]} for edges in children]


def test_canonical_paths_prefer_named_steps_and_are_deterministic():
    nodes = graph(
        [(1, "variables"), (2, "enc")],  # 0: root
        [(3, "0")],  # 1: a tracking list
        [(4, "cell"), (1, "variables")],  # 2: the layer
        [],  # 3: the kernel
        [(3, "kernel"), (3, "alias")],  # 4: the cell
    )
    paths = canonical_paths(nodes)
    assert [step for step, _ in paths[3]] == ["enc", "cell", "alias"]  # fewest positional, then by name
    assert canonical_paths(list(reversed(list(reversed(nodes))))) == paths


def test_cycles_and_dangling_references_in_an_object_graph_end():
    nodes = graph([(1, "a"), (7, "dangling"), (-3, "negative")], [(0, "back"), (1, "self"), (2, "b")], [(1, "up")])
    paths = canonical_paths(nodes)
    assert sorted(paths) == [0, 1, 2]
    assert [step for step, _ in paths[2]] == ["a", "b"]


# --- hostile input --------------------------------------------------------------------------------


def copy_keras2(tmp_path):
    target = tmp_path / "model"
    shutil.copytree(KERAS2 / "saved_model", target)
    return target


@pytest.mark.parametrize(
    ("file", "content"),
    [
        ("saved_model.pb", b"\x08\x01\x12\xff\xff\xff\x0f"),
        ("saved_model.pb", b"\x08\x01"),
        ("saved_model.pb", b"garbage, no protobuf at all"),
        ("keras_metadata.pb", b"\x0a\x05\x10"),
        ("keras_metadata.pb", field(1, field(3, b"root.layer_with_weights-0") + field(5, b"{not json"))),
        ("keras_metadata.pb", field(1, field(3, b"root.layer_with_weights-0") + field(5, b"[" * 100000))),
    ],
    ids=["cut meta graph", "no meta graph", "garbage", "cut metadata", "bad json", "deep json"],
)
def test_damaged_saved_model_files_are_one_clear_error(tmp_path, file, content):
    directory = copy_keras2(tmp_path)
    (directory / file).write_bytes(content)
    with pytest.raises((CorruptFile, UnsupportedFormat)) as caught:
        open_store(directory)
    assert "\n" not in str(caught.value) and str(directory) in str(caught.value)


def test_every_cut_of_saved_model_pb_is_an_error_or_opens(tmp_path):
    directory = copy_keras2(tmp_path)
    data = (KERAS2 / "saved_model" / "saved_model.pb").read_bytes()
    for cut in range(0, len(data), max(1, len(data) // 150)):
        (directory / "saved_model.pb").write_bytes(data[:cut])
        try:
            open_store(directory).close()
        except LstmInspectError as e:
            assert "\n" not in str(e)


def test_a_damaged_object_graph_fails_its_checksum(tmp_path):
    directory = copy_keras2(tmp_path)
    checkpoint = TFCheckpoint(str(directory / "variables" / "variables"))
    entry = checkpoint._entries[checkpoint._keys["_CHECKPOINTABLE_OBJECT_GRAPH"]]
    shard = directory / "variables" / "variables.data-00000-of-00001"
    data = bytearray(shard.read_bytes())
    data[entry.offset + entry.size - 3] ^= 0x20
    shard.write_bytes(bytes(data))
    with pytest.raises(CorruptFile, match="object graph fails its CRC-32C check"):
        open_store(directory)


def test_summary_of_graphs_and_saved_models_imports_neither_numpy_nor_tensorflow():
    for path in (
        KERAS2 / "saved_model",
        FIXTURES / "tf1_frozen" / "frozen.pb",
        FIXTURES / "keras3_export" / "saved_model",
    ):
        code = (
            "import sys\nfrom lstm_inspect.cli import main\n"
            f"try:\n    main(['summary', {str(path)!r}])\nexcept SystemExit:\n    pass\n"
            "print('HEAVY', [m for m in ('numpy', 'h5py', 'tensorflow') if m in sys.modules])"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        assert "LSTM" in out and "HEAVY []" in out, out


def test_object_graph_names_of_attribute_keys_are_the_keys_themselves():
    # tf2_object's keys already name each variable (and each optimizer slot) by a path: the
    # object graph, read whole, gives the same names, slots under `.OPTIMIZER_SLOT` included.
    from lstm_inspect.readers.saved_model import _name_keys, read_object_graph

    checkpoint = TFCheckpoint(str(FIXTURES / "tf2_object" / "ckpt-1"))
    names = _name_keys(read_object_graph(checkpoint), {}, {}, only_positional=False).names
    suffix = "/.ATTRIBUTES/VARIABLE_VALUE"
    assert {key: key[: -len(suffix)] for key in checkpoint.tensors() if key.endswith(suffix)} == names
    assert sum(".OPTIMIZER_SLOT/optimizer/m" in name for name in names.values()) == 11
