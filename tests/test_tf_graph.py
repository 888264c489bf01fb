"""What TensorFlow's graph says beside the weights (issue 11): the decoders, the structural LSTM
matcher and the frozen-graph store, against the graph fixtures TensorFlow made
(the manifest's entries with a `graph`), numerically and with hostile input."""

from __future__ import annotations

import math
import os
import shutil
import struct
import time

import numpy as np
import pytest

import lstm_inspect
from lstm_inspect.errors import CorruptFile, LstmInspectError, UnsupportedFormat
from lstm_inspect.numpy_lstm import run_lstm
from lstm_inspect.readers import open_store, prototext
from lstm_inspect.readers.frozen_graph import FrozenGraph, open_frozen_graph
from lstm_inspect.readers.protobuf import Malformed, decode, fields
from lstm_inspect.readers.tf_bundle import open_checkpoint
from lstm_inspect.readers.tf_graph import (
    graph_hints,
    layer_hints,
    read_graph_def,
    read_meta_graph,
    shortest_float32,
    tensor_array,
)
from lstm_inspect.readers.tf_protos import ENUMS, SCHEMA

from .conftest import FIXTURES

MANIFEST = __import__("json").loads((FIXTURES / "manifest.json").read_text())
# The fixtures whose settings only a graph or a SavedModel says (issue 11).
GRAPH_ENTRIES = [e for e in MANIFEST["fixtures"] if "graph" in e or e["format"] == "saved-model"]
WITH_GRAPH = [e for e in GRAPH_ENTRIES if e.get("graph")]
TF1_WITH_REFERENCE = [e for e in GRAPH_ENTRIES if e["format"] == "tf-checkpoint" and e["reference"]]
FROZEN = FIXTURES / "tf1_frozen"


def entry(name: str) -> dict:
    (found,) = [e for e in GRAPH_ENTRIES if e["name"] == name]
    return found


# --- a small protobuf encoder, for crafted inputs ------------------------------------------------


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, value: bytes | int | float) -> bytes:
    if isinstance(value, bytes):
        return varint(number << 3 | 2) + varint(len(value)) + value
    if isinstance(value, float):
        return varint(number << 3 | 5) + struct.pack("<f", value)
    return varint(number << 3) + varint(value)


def node_def(name: str, op: str, inputs: tuple[str, ...] = (), attrs: dict[str, bytes] | None = None) -> bytes:
    out = field(1, name.encode()) + field(2, op.encode())
    out += b"".join(field(3, ref.encode()) for ref in inputs)
    for key, value in (attrs or {}).items():
        out += field(5, field(1, key.encode()) + field(2, value))
    return out


def scalar_const(value: float) -> bytes:
    """AttrValue{tensor: TensorProto{dtype: DT_FLOAT, tensor_shape: {}, float_val: [value]}}."""
    return field(8, field(1, 1) + field(2, b"") + field(5, value))


def graph_def(nodes: list[bytes]) -> bytes:
    return b"".join(field(1, node) for node in nodes)


def renamed(node: bytes, prefix: bytes) -> bytes:
    """A NodeDef with `prefix` before its name and every input's node name."""
    out = bytearray()
    for number, value in fields(node):
        if number == 1:
            out += field(1, prefix + value)
        elif number == 3:
            out += field(3, (b"^" + prefix + value[1:]) if value.startswith(b"^") else prefix + value)
        else:
            out += field(number, value)
    return bytes(out)


def meta_graph_parts(path) -> list[tuple[int, bytes | int]]:
    return fields(path.read_bytes())


def graph_of(meta_path) -> bytes:
    return next(v for n, v in fields(meta_path.read_bytes()) if n == 2)


def with_graph(meta_path, graph: bytes) -> bytes:
    """The MetaGraphDef at `meta_path` with its graph_def replaced."""
    return b"".join(field(n, graph if n == 2 else v) for n, v in fields(meta_path.read_bytes()))


# --- the schema is TensorFlow's ------------------------------------------------------------------


def test_schema_field_numbers_are_tensorflows():
    tf_protos = pytest.importorskip("tensorflow.core.protobuf.meta_graph_pb2")
    from tensorflow.core.framework import (
        attr_value_pb2,
        function_pb2,
        graph_pb2,
        node_def_pb2,
        op_def_pb2,
        tensor_pb2,
        tensor_shape_pb2,
        variable_pb2,
        versions_pb2,
    )
    from tensorflow.core.protobuf import saved_model_pb2, saved_object_graph_pb2, trackable_object_graph_pb2

    trackable = trackable_object_graph_pb2.TrackableObjectGraph.TrackableObject
    messages = {
        "GraphDef": graph_pb2.GraphDef, "NodeDef": node_def_pb2.NodeDef, "AttrValue": attr_value_pb2.AttrValue,
        "ListValue": attr_value_pb2.AttrValue.ListValue, "NameAttrList": attr_value_pb2.NameAttrList,
        "TensorProto": tensor_pb2.TensorProto, "TensorShapeProto": tensor_shape_pb2.TensorShapeProto,
        "Dim": tensor_shape_pb2.TensorShapeProto.Dim, "FunctionDefLibrary": function_pb2.FunctionDefLibrary,
        "FunctionDef": function_pb2.FunctionDef, "OpDef": op_def_pb2.OpDef, "ArgDef": op_def_pb2.OpDef.ArgDef,
        "VersionDef": versions_pb2.VersionDef, "MetaGraphDef": tf_protos.MetaGraphDef,
        "MetaInfoDef": tf_protos.MetaGraphDef.MetaInfoDef, "CollectionDef": tf_protos.CollectionDef,
        "NodeList": tf_protos.CollectionDef.NodeList, "BytesList": tf_protos.CollectionDef.BytesList,
        "VariableDef": variable_pb2.VariableDef, "SaveSliceInfoDef": variable_pb2.SaveSliceInfoDef,
        "SavedModel": saved_model_pb2.SavedModel, "SavedObjectGraph": saved_object_graph_pb2.SavedObjectGraph,
        "SavedObject": saved_object_graph_pb2.SavedObject, "SavedUserObject": saved_object_graph_pb2.SavedUserObject,
        "SavedVariable": saved_object_graph_pb2.SavedVariable, "ObjectReference": trackable.ObjectReference,
        "TrackableObjectGraph": trackable_object_graph_pb2.TrackableObjectGraph, "TrackableObject": trackable,
        "SerializedTensor": trackable.SerializedTensor, "SlotVariableReference": trackable.SlotVariableReference,
        "SavedConcreteFunction": saved_object_graph_pb2.SavedConcreteFunction,
    }  # fmt: skip
    map_entries = {"AttrEntry", "StringEntry", "CollectionEntry", "ConcreteFunctionEntry"}
    assert set(SCHEMA) - set(messages) - map_entries == {"SavedMetadata", "KerasObject"}
    for name, message in messages.items():
        numbers = {f.number: f.name for f in message.DESCRIPTOR.fields}
        for number, declared in SCHEMA[name].items():
            assert numbers.get(number) == declared.name, (name, number, declared.name)


def test_text_and_binary_frozen_graph_decode_alike():
    binary = decode((FROZEN / "frozen.pb").read_bytes(), "GraphDef", SCHEMA)
    text = prototext.decode(prototext.parse((FROZEN / "frozen.pbtxt").read_bytes()), "GraphDef", SCHEMA, ENUMS)

    def plain(value):
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)) or type(value).__name__ == "array":
            return [plain(v) for v in value]
        return value

    assert plain(binary) == plain(text)
    kernel = next(n for n in binary["node"] if n["name"] == "rnn/lstm_cell/kernel")
    assert kernel["op"] == "Const" and len(kernel["attr"]["value"]["tensor"]["tensor_content"]) == 28 * 64 * 4


# --- hints: what the manifest says (read from the TF cells) ---------------------------------------


def expected_source(layer: dict) -> str:
    first = layer["forget_bias_nodes"][0]
    where = first["node"] if first["function"] is None else f"{first['node']} in function {first['function']}"
    if layer["cell"] in ("LSTMBlockCell", "LSTMBlockFusedCell"):
        return f"op attribute: {where} forget_bias"
    return f"graph: {where}"


@pytest.mark.parametrize("fixture", WITH_GRAPH, ids=[e["name"] for e in WITH_GRAPH])
def test_graph_hints_match_the_cells_tensorflow_built(fixture):
    checkpoint = open_checkpoint(FIXTURES / fixture["path"])
    found = graph_hints(FIXTURES / fixture["graph"], checkpoint.tensors())
    assert found.belongs, found.problems
    assert found.trainable_variables == fixture["trainable_variables"]
    assert sorted(found.hints) == sorted(layer["name"] for layer in fixture["layers"])
    for layer in fixture["layers"]:
        hint = found.hints[layer["name"]]
        settings = {name: setting.value for name, setting in hint.settings.items()}
        assert hint.conflicts == {}
        assert hint.cell == layer["cell"]
        assert settings["forget_bias"] == layer["forget_bias"]
        assert hint.settings["forget_bias"].source == expected_source(layer)
        assert not any(s.assumed for s in hint.settings.values())
        assert settings["activation"] == layer["activation"]
        assert settings["recurrent_activation"] == layer["recurrent_activation"]
        assert settings["cell_clip"] == layer["cell_clip"]
        assert settings.get("proj_clip") == layer["proj_clip"]
        assert settings["use_peepholes"] == layer["peepholes"]
        assert settings["num_proj"] == layer["projection"]


@pytest.mark.parametrize("fixture", TF1_WITH_REFERENCE, ids=[e["name"] for e in TF1_WITH_REFERENCE])
def test_hinted_settings_reproduce_tensorflows_outputs(fixture):
    reference = np.load(FIXTURES / fixture["reference"])
    meta = FIXTURES / (fixture["graph"] or entry("tf1_forget0")["graph"])
    with lstm_inspect.load(FIXTURES / fixture["path"]) as ckpt:
        hints = graph_hints(meta, ckpt.store.tensors()).hints
        for layer in fixture["layers"]:
            settings = {name: s.value for name, s in hints[layer["name"]].settings.items()}
            model = ckpt.layer(layer["name"])
            x = reference[f"{layer['name']}/x"]
            h, c = run_lstm(
                model.gates(),
                x,
                forget_bias=settings["forget_bias"],
                projection=model.projection,
                activation=settings["activation"],
                recurrent_activation=settings["recurrent_activation"],
                cell_clip=settings["cell_clip"],
                proj_clip=settings.get("proj_clip"),
            )
            np.testing.assert_allclose(h, reference[f"{layer['name']}/h"], atol=2e-5, rtol=1e-4)
            np.testing.assert_allclose(c, reference[f"{layer['name']}/c"], atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize(
    ("name", "wrong"),
    [
        ("tf1_forget0", {"forget_bias": 1.0}),
        ("tf1_relu", {"forget_bias": 1.0}),
        ("tf1_relu", {"activation": "tanh"}),
        ("tf1_clips", {"cell_clip": None}),
        ("tf1_clips", {"proj_clip": None}),
        ("tf1_block", {"cell_clip": None}),
    ],
)
def test_the_defaults_do_not_reproduce_these_fixtures(name, wrong):
    # The graph's settings matter: with the TF1 default in place of one of them, the outputs differ.
    fixture = entry(name)
    reference = np.load(FIXTURES / fixture["reference"])
    layer = fixture["layers"][0]
    settings = {
        "forget_bias": layer["forget_bias"],
        "activation": layer["activation"],
        "cell_clip": layer["cell_clip"],
        "proj_clip": layer["proj_clip"],
    }
    settings.update(wrong)
    with lstm_inspect.load(FIXTURES / fixture["path"]) as ckpt:
        model = ckpt.layer(layer["name"])
        h, _ = run_lstm(model.gates(), reference[f"{layer['name']}/x"], projection=model.projection, **settings)
    assert np.abs(h - reference[f"{layer['name']}/h"]).max() > 1e-3


def test_without_its_meta_the_checkpoint_is_the_same_and_says_nothing():
    fixture, original = entry("tf1_forget0_no_meta"), entry("tf1_forget0")
    assert fixture["graph"] is None and not (FIXTURES / (fixture["path"] + ".meta")).exists()
    with open_checkpoint(FIXTURES / fixture["path"]) as bare, open_checkpoint(FIXTURES / original["path"]) as full:
        assert bare.tensors() == full.tensors()
        assert bare.layer_hints() == {}
        for name in bare.tensors():
            assert bare.read(name).tobytes() == full.read(name).tobytes()


def test_a_static_graph_reads_every_step():
    # tf1_relu repeats the cell 5 times: one forget-bias Const per step, all 3.0.
    fixture = entry("tf1_relu")
    assert len(fixture["layers"][0]["forget_bias_nodes"]) == 5
    meta = read_meta_graph((FIXTURES / fixture["graph"]).read_bytes(), "tf1_relu")
    splits = [i for i, op in enumerate(meta.graph.top.ops) if op == "Split"]
    assert len(splits) == 5


def test_two_forget_biases_in_one_scope_are_a_conflict_naming_both(tmp_path):
    # Step 3 of tf1_relu's static graph given another forget bias (rnn/lstm_cell/add_4/y: 3.0 -> 1.0).
    fixture = entry("tf1_relu")
    meta_path = FIXTURES / fixture["graph"]
    graph = graph_of(meta_path)
    nodes = [v for n, v in fields(graph) if n == 1]
    patched = []
    for node in nodes:
        if node.startswith(field(1, b"rnn/lstm_cell/add_4/y")):
            three, one = struct.pack("<f", 3.0), struct.pack("<f", 1.0)
            assert node.count(three) == 1
            node = node.replace(three, one)
        patched.append(node)
    path = tmp_path / "model.ckpt.meta"
    path.write_bytes(with_graph(meta_path, graph_def(patched)))
    hint = graph_hints(path, open_checkpoint(FIXTURES / fixture["path"]).tensors()).hints["rnn/lstm_cell"]
    assert "forget_bias" not in hint.settings
    assert [(s.value, s.source) for s in hint.conflicts["forget_bias"]] == [
        (3.0, "graph: rnn/lstm_cell/add/y"),
        (1.0, "graph: rnn/lstm_cell/add_4/y"),
    ]
    assert hint.settings["activation"].value == "relu"  # the rest still agrees


# --- a graph that is not its checkpoint's ---------------------------------------------------------


def test_a_meta_of_another_model_is_detected():
    relu, clips, forget0 = entry("tf1_relu"), entry("tf1_clips"), entry("tf1_forget0")
    # Same variable names, other shapes: tf1_relu's kernel is [28, 64], tf1_clips' [20, 64].
    found = graph_hints(FIXTURES / relu["graph"], open_checkpoint(FIXTURES / clips["path"]).tensors())
    assert not found.belongs
    assert any("'rnn/lstm_cell/kernel' is [28, 64] in the graph but [20, 64]" in p for p in found.problems)
    # Other variables altogether.
    found = graph_hints(FIXTURES / forget0["graph"], open_checkpoint(FIXTURES / relu["path"]).tensors())
    assert not found.belongs and "declares none of the checkpoint's variables" in found.problems[0]
    assert found.variables["rnn/basic_lstm_cell/kernel"].shape == (28, 64)


def test_a_partitioned_variable_is_declared_by_its_full_name():
    checkpoint = open_checkpoint(FIXTURES / "tf1_partitioned" / "model.ckpt")
    found = graph_hints(FIXTURES / "tf1_partitioned" / "model.ckpt.meta", checkpoint.tensors())
    assert found.belongs, found.problems
    assert found.variables["rnn/basic_lstm_cell/kernel"].shape == (28, 64)
    assert found.trainable_variables == ["rnn/basic_lstm_cell/kernel", "rnn/basic_lstm_cell/bias"]
    assert found.hints["rnn/basic_lstm_cell"].settings["forget_bias"].value == 1.0


def test_named_optimizer_slots_are_not_trainable_variables():
    fixture = entry("tf1_named_optimizer")
    checkpoint = open_checkpoint(FIXTURES / fixture["path"])
    stored = set(checkpoint.tensors())
    assert {"rnn/lstm_cell/kernel/train_op", "rnn/lstm_cell/kernel/train_op_1", "head/kernel/head_opt"} <= stored
    found = graph_hints(FIXTURES / fixture["graph"], checkpoint.tensors())
    assert found.trainable_variables == ["rnn/lstm_cell/kernel", "rnn/lstm_cell/bias", "head/kernel", "head/bias"]
    model = sum(math.prod(checkpoint.tensors()[name].shape) for name in found.trainable_variables)
    assert model == fixture["total_params"]


# --- the frozen graph store -----------------------------------------------------------------------


@pytest.mark.parametrize("file", ["frozen.pb", "frozen.pbtxt", "frozen_saved_model"])
def test_frozen_weights_are_the_checkpoints_bit_for_bit(file):
    with open_store(FROZEN / file) as frozen, open_checkpoint(FROZEN / "model.ckpt") as checkpoint:
        stored = {n: i for n, i in checkpoint.tensors().items() if "/" in n}
        assert {n: (i.shape, i.dtype) for n, i in frozen.tensors().items()} == {
            n: (i.shape, i.dtype) for n, i in stored.items()
        }
        for name in stored:
            assert frozen.read(name).tobytes() == checkpoint.read(name).tobytes(), name


@pytest.mark.parametrize("file", ["frozen.pb", "frozen.pbtxt"])
def test_a_frozen_graph_runs_like_tensorflow_with_its_own_hints(file):
    fixture = entry("tf1_frozen")
    reference = np.load(FIXTURES / fixture["reference"])
    with lstm_inspect.load(FROZEN / file) as graph:
        assert graph.format == "tf-frozen-graph"
        hints = graph.store.layer_hints()
        meta = graph_hints(FIXTURES / fixture["graph"], {}).hints
        assert {k: h.settings for k, h in hints.items()}.keys() == meta.keys()
        layer = graph.layer("rnn/lstm_cell")
        settings = {name: s.value for name, s in hints["rnn/lstm_cell"].settings.items()}
        assert settings["forget_bias"] == 2.0 and settings["use_peepholes"] is True
        h, c = run_lstm(layer.gates(), reference["rnn/lstm_cell/x"], forget_bias=settings["forget_bias"])
        np.testing.assert_allclose(h, reference["rnn/lstm_cell/h"], atol=2e-5, rtol=1e-4)
        np.testing.assert_allclose(c, reference["rnn/lstm_cell/c"], atol=2e-5, rtol=1e-4)


def test_legacy_weight_names_in_a_frozen_graph_are_detected(tmp_path):
    # TF 1.0-1.2 named the kernel `…/weights`: a frozen graph keeps the name, detection reads it.
    data = (FROZEN / "frozen.pb").read_bytes()
    old, new = b"rnn/lstm_cell/kernel", b"rnn/lstm_cell/weights"
    graph = bytearray()
    for number, value in fields(data):
        if number == 1:
            value = b"".join(
                field(n, v.replace(old, new) if n in (1, 3) else v) if isinstance(v, bytes) else field(n, v)
                for n, v in fields(value)
            )
        graph += field(number, value)
    path = tmp_path / "legacy.pb"
    path.write_bytes(bytes(graph))
    with lstm_inspect.load(path) as frozen:
        assert "rnn/lstm_cell/weights" in frozen.store.tensors()
        assert [layer.name for layer in frozen.layers] == ["rnn/lstm_cell"]
        assert frozen.store.layer_hints()["rnn/lstm_cell"].settings["forget_bias"].value == 2.0


def test_a_graph_without_weights_is_refused(tmp_path):
    path = tmp_path / "graph.pb"
    path.write_bytes(graph_of(FIXTURES / "tf1_relu" / "model.ckpt.meta"))  # variables, not Consts
    with pytest.raises(UnsupportedFormat, match="without weights.*not frozen"):
        open_store(path)


# --- hostile input --------------------------------------------------------------------------------


def one_line_error(path) -> str:
    with pytest.raises(LstmInspectError) as caught:
        store = open_store(path)
        for name in store.tensors():
            store.read(name)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    return message


@pytest.mark.parametrize(
    "content",
    [b"\x0a\xff\xff\xff\xff\x0f", b"\x0a\x05abc", b"\xff" * 100, b"\x0b" * 50, b"\x0a\x02\x0a\x80"],
    ids=["huge length", "cut node", "0xff", "bad wire type", "cut varint"],
)
def test_garbage_pb_is_one_clear_error(tmp_path, content):
    path = tmp_path / "frozen.pb"
    path.write_bytes(content)
    assert one_line_error(path)


@pytest.mark.parametrize(
    "content",
    [
        b"node { name: 'x' op: 'Const' ",
        b"node { name: 'x' \x00 }",
        b'node { name: "unterminated }',
        b"node { attr { key: 'value' value { tensor { dtype: DT_NOPE } } } }",
        b"node { name: 1.5 }",
        b"node: 5",
        b"{ " * 5000 + b"}" * 5000,
        b"node " + b"{ library " * 100 + b"}" * 100,
        b"node { name: 'a\\q' }",
    ],
    ids=["cut", "nul", "open string", "bad enum", "number for string", "value for message", "deep", "deep2", "escape"],
)
def test_garbage_pbtxt_is_one_clear_error(tmp_path, content):
    path = tmp_path / "frozen.pbtxt"
    path.write_bytes(content)
    assert one_line_error(path)


def node_ends(data: bytes) -> list[int]:
    """Where each top-level field of a message ends."""
    from lstm_inspect.readers.protobuf import varint as read_varint

    ends, pos = [], 0
    while pos < len(data):
        _, pos = read_varint(data, pos)
        length, pos = read_varint(data, pos)
        pos += length
        ends.append(pos)
    return ends


def test_every_cut_of_a_frozen_graph_is_an_error_or_a_smaller_graph(tmp_path):
    # A GraphDef has no overall length: cut at a node boundary it is a valid smaller graph (here,
    # once the weights and their readers are in, one with those weights); anywhere else, an error.
    data = (FROZEN / "frozen.pb").read_bytes()
    path = tmp_path / "frozen.pb"
    boundaries = node_ends(data)
    opened_at = []
    for cut in sorted({*range(1, 300), *range(1, len(data), 61), *boundaries}):
        path.write_bytes(data[:cut])
        try:
            with open_store(path) as store:
                for name in store.tensors():
                    store.read(name)
            opened_at.append(cut)
        except LstmInspectError as e:
            assert "\n" not in str(e)
    assert set(opened_at) <= set(boundaries)
    assert boundaries[-2] in opened_at  # all but the last node


def test_random_byte_damage_never_escapes_as_another_exception(tmp_path):
    data = bytearray((FROZEN / "frozen.pb").read_bytes())
    rng = np.random.default_rng(11)
    path = tmp_path / "frozen.pb"
    for _ in range(150):
        damaged = bytearray(data)
        for at in rng.integers(0, len(data), 4):
            damaged[at] = int(rng.integers(0, 256))
        path.write_bytes(bytes(damaged))
        try:
            with open_store(path) as store:
                for name in store.tensors():
                    store.read(name)
                store.layer_hints()
        except LstmInspectError as e:
            assert "\n" not in str(e)


def test_a_truncated_meta_is_one_clear_error(tmp_path):
    meta = (FIXTURES / "tf1_relu" / "model.ckpt.meta").read_bytes()
    checkpoint = open_checkpoint(FIXTURES / "tf1_relu" / "model.ckpt")
    path = tmp_path / "model.ckpt.meta"
    for cut in (1, 10, len(meta) // 3, len(meta) - 5):
        path.write_bytes(meta[:cut])
        with pytest.raises((CorruptFile, UnsupportedFormat)) as caught:
            graph_hints(path, checkpoint.tensors())
        assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_a_const_claiming_a_huge_shape_is_refused_on_read(tmp_path):
    huge = field(8, field(1, 1) + field(2, field(2, field(1, 1 << 40))) + field(5, 0.5))
    lying = field(8, field(1, 1) + field(2, field(2, field(1, 8))) + field(4, b"\x00" * 12))
    nodes = [
        node_def("w", "Const", attrs={"value": huge}),
        node_def("w/read", "Identity", ("w",)),
        node_def("v", "Const", attrs={"value": lying}),
        node_def("v/read", "Identity", ("v",)),
    ]
    path = tmp_path / "huge.pb"
    path.write_bytes(graph_def(nodes))
    with open_store(path) as store:
        assert store.tensors()["w"].shape == (1 << 40,)
        with pytest.raises(CorruptFile, match="made from 1 values"):
            store.read("w")
        with pytest.raises(CorruptFile, match="12 bytes of content for float32 \\[8\\]"):
            store.read("v")


def test_cycles_and_deep_nesting_are_bounded(tmp_path):
    # An Identity cycle feeding the MatMul, a Split whose value is its own output, and an
    # AttrValue nested past the limit: the matcher and the decoder stop, no RecursionError.
    nested = scalar_const(1.0)
    for _ in range(200):
        nested = field(10, field(2, field(1, b"k") + field(2, nested)))  # func.attr -> AttrValue
    nodes = [
        node_def("a", "Identity", ("b",)),
        node_def("b", "Identity", ("a",)),
        node_def("x", "Placeholder"),
        node_def("m", "MatMul", ("x", "a")),
        node_def("s", "Split", ("dim", "m"), {"num_split": field(3, 4)}),
        node_def("loop", "Split", ("dim", "loop:1"), {"num_split": field(3, 4)}),
    ]
    path = tmp_path / "cycle.pb"
    path.write_bytes(graph_def(nodes))
    assert layer_hints(read_graph_def(path.read_bytes(), str(path))) == {}
    path.write_bytes(
        graph_def([node_def("deep", "Const", attrs={"value": nested}), node_def("deep/read", "Identity", ("deep",))])
    )
    with pytest.raises(CorruptFile, match="nested more than"):
        open_store(path)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "graph.pb"
    os.mkfifo(fifo)
    with pytest.raises(UnsupportedFormat, match="FIFO"):
        open_store(fifo)


# --- the text format ------------------------------------------------------------------------------


def test_text_format_syntax():
    text = b"""
    # a comment
    node < name: "a\\tb\\001" 'c' op: "Const" > ;
    node { name: "x" input: ["a", 'b:1'] attr { key: "f" value { f: -inf } }
           attr { key: "l" value { list { i: [1, -2, 0x10] b: true b: f } } } }
    versions { producer: 27 }
    """
    graph = prototext.decode(prototext.parse(text), "GraphDef", SCHEMA, ENUMS)
    assert graph["node"][0]["name"] == "a\tb\x01c"
    assert graph["node"][1]["input"] == ["a", "b:1"]
    assert graph["node"][1]["attr"]["f"]["f"] == -math.inf
    assert graph["node"][1]["attr"]["l"]["list"] == {"i": [1, -2, 16], "b": [True, False]}
    assert graph["versions"] == {"producer": 27}


def test_scalars_and_arrays_of_tensor_protos():
    assert shortest_float32(struct.unpack("<f", struct.pack("<f", 0.3))[0]) == 0.3
    half = {"dtype": 19, "tensor_shape": {"dim": [{"size": 3}]}, "half_val": [0x3C00, 0xC000]}
    np.testing.assert_array_equal(tensor_array(half, "h"), np.array([1.0, -2.0, -2.0], np.float16))
    empty = {"dtype": 3, "tensor_shape": {"dim": [{"size": 2}, {"size": 2}]}}
    np.testing.assert_array_equal(tensor_array(empty, "z"), np.zeros((2, 2), np.int32))
    with pytest.raises(Malformed):
        tensor_array({"dtype": 1, "tensor_shape": {"dim": [{"size": -1}]}}, "unknown")


# --- cost: a 10 MB graph --------------------------------------------------------------------------


def big_meta(tmp_path, size: int = 10_000_000):
    """tf1_named_optimizer's training graph (an LSTMCell unrolled 5 steps, two optimizers) copied
    under new scopes until the MetaGraphDef is `size` bytes: ~50,000 nodes, ~90 LSTM cells."""
    meta_path = FIXTURES / "tf1_named_optimizer" / "model.ckpt.meta"
    graph = graph_of(meta_path)
    nodes = [v for n, v in fields(graph) if n == 1]
    copies = size // len(graph) + 1
    big = graph_def([renamed(node, b"copy%d/" % k if k else b"") for k in range(copies) for node in nodes])
    path = tmp_path / "big.meta"
    path.write_bytes(with_graph(meta_path, big))
    return path, copies


def test_a_10_mb_meta_decodes_little_of_itself(tmp_path):
    # Work, not time, is bounded here (CI is a busy machine): opening decodes names and ops; the
    # analysis decodes whole only the few nodes it reads attributes of.
    path, copies = big_meta(tmp_path)
    checkpoint = open_checkpoint(FIXTURES / "tf1_named_optimizer" / "model.ckpt")
    started = time.process_time()
    found = graph_hints(path, checkpoint.tensors())
    cpu = time.process_time() - started
    meta = read_meta_graph(path.read_bytes(), str(path))
    hints = layer_hints(meta.graph)
    table = meta.graph.top
    assert len(found.hints) == len(hints) == copies
    assert len(table.names) > 45_000
    assert len(table._nodes) < len(table.names) // 20, (len(table._nodes), len(table.names))
    print(f"\n10 MB .meta ({path.stat().st_size:,} bytes, {len(table.names):,} nodes, {copies} cells): {cpu:.3f} s CPU")


def test_copying_a_fixture_keeps_its_graph(tmp_path):
    # A .meta travels with its checkpoint: copied elsewhere it still says the same.
    shutil.copytree(FIXTURES / "tf1_forget0", tmp_path / "copy")
    found = graph_hints(
        tmp_path / "copy" / "model.ckpt.meta", open_checkpoint(tmp_path / "copy" / "model.ckpt").tensors()
    )
    assert found.hints["rnn/basic_lstm_cell"].settings["forget_bias"].value == 0.0
    assert isinstance(open_frozen_graph(FROZEN / "frozen.pb"), FrozenGraph)
