"""The layout schema on its own: sizes solved from shapes, blocks located where each framework's
source says they are, and every layout's pack and unpack exact inverses of each other."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_inspect import schema, slicer

IN, U, P = 3, 4, 2
rng = np.random.default_rng(7)


def canonical_blocks(*, projection: bool, peepholes: bool, recurrent_bias: bool) -> dict:
    recurrent = P if projection else U
    blocks = {}
    for gate in schema.LSTM.gates:
        blocks[(gate, "kernel")] = rng.normal(size=(IN, U))
        blocks[(gate, "recurrent")] = rng.normal(size=(recurrent, U))
        blocks[(gate, "bias")] = rng.normal(size=U)
        if recurrent_bias:
            blocks[(gate, "recurrent_bias")] = rng.normal(size=U)
        if peepholes and gate in schema.LSTM.peephole_gates:
            blocks[(gate, "peephole")] = rng.normal(size=U)
    if projection:
        blocks[(None, "projection")] = rng.normal(size=(U, P))
    return blocks


def sizes(projection: bool) -> dict[str, int]:
    out = {"input": IN, "units": U, "recurrent": P if projection else U}
    if projection:
        out["projection"] = P
    return out


# What each layout can hold: (projection, peepholes, two biases, directions per layer).
CAPABLE = {
    "tf1": (True, True, False, 1),
    "tf1-cudnn-compatible": (False, False, False, 1),
    "keras": (False, False, False, 1),
    "keras1": (False, False, False, 1),
    "pytorch": (True, False, True, 2),
    "onnx": (False, True, True, 2),
}


@pytest.mark.parametrize("key", sorted(CAPABLE))
def test_pack_and_unpack_are_inverse_for_every_layout(key):
    layout = schema.LAYOUTS[key]
    projection, peepholes, two_biases, directions = CAPABLE[key]
    given = [
        canonical_blocks(projection=projection, peepholes=peepholes, recurrent_bias=two_biases)
        for _ in range(directions)
    ]
    arrays = slicer.pack(layout, given, sizes(projection))
    for role in layout.roles:
        assert role.key in arrays or role.optional
    back = slicer.unpack(layout, arrays)
    assert len(back) == directions
    for got, expected in zip(back, given):
        assert set(got) == set(expected)
        for key_ in expected:
            assert np.array_equal(got[key_], expected[key_]), key_


def test_solve_reads_sizes_from_shapes_and_refuses_what_does_not_fit():
    tf1 = schema.LAYOUTS["tf1"]
    assert schema.solve(tf1, {"kernel": (76, 256), "bias": (256,)}) == {"units": 64, "recurrent": 64, "input": 12}
    projected = schema.solve(tf1, {"kernel": (20, 64), "bias": (64,), "projection/kernel": (16, 8)})
    assert projected == {"units": 16, "projection": 8, "recurrent": 8, "input": 12}
    assert schema.solve(tf1, {"kernel": (76, 255), "bias": (255,)}) is None  # 255 is no 4 gates
    assert schema.solve(tf1, {"kernel": (76, 256), "bias": (128,)}) is None  # bias of another layer
    assert schema.solve(tf1, {"kernel": (64, 256), "bias": (256,)}) is None  # no input rows
    cudnn = schema.LAYOUTS["keras-cudnn"]
    shapes = {"kernel": (12, 64), "recurrent_kernel": (16, 64)}
    assert schema.solve(cudnn, {**shapes, "bias": (128,)}) == {"input": 12, "units": 16, "recurrent": 16}
    assert schema.solve(cudnn, {**shapes, "bias": (64,)}) is None  # one bias: a plain Keras LSTM


def test_blocks_sit_where_the_frameworks_put_them():
    """TF splits its columns i, j, f, o (rnn_cell_impl.py), Keras i, f, c, o, PyTorch's rows i, f, g, o,
    ONNX's i, o, f, c (onnx/defs/rnn/defs.cc); the forget gate's columns or rows follow."""
    s = {"input": 12, "units": 64, "recurrent": 64}
    expected = {"tf1": 2, "keras": 1, "pytorch": 1, "onnx": 2}
    for key, position in expected.items():
        layout = schema.LAYOUTS[key]
        role = layout.roles[0]
        location = schema.locate(layout, role, "forget", "kernel", s)
        gate_axis = next(i for i, axis in enumerate(role.axes) if isinstance(axis, schema.Gates))
        assert location.region[gate_axis] == (position * 64, (position + 1) * 64), key
    tf1 = schema.LAYOUTS["tf1"]
    recurrent = schema.locate(tf1, tf1.role("kernel"), "forget", "recurrent", s)
    assert recurrent.region == ((12, 76), (128, 192))


def test_explanations_say_what_each_shape_is_made_of():
    tf1 = schema.LAYOUTS["tf1"]
    s = {"input": 12, "units": 16, "recurrent": 8, "projection": 8}
    assert schema.explain(tf1, tf1.role("kernel"), s) == "[12 input + 8 projected recurrent, 4 gates × 16 units]"
    assert schema.explain(tf1, tf1.role("w_f_diag"), s) == "[16 units]: forget-gate peephole"
    cudnn = schema.LAYOUTS["keras-cudnn"]
    s = {"input": 12, "units": 16, "recurrent": 16}
    assert schema.explain(cudnn, cudnn.role("bias"), s) == "[2 (input-side, recurrent-side) × 4 gates × 16 units]"


def test_every_layout_letter_names_a_gate_and_every_gate_is_stored():
    for layout in schema.LAYOUTS.values():
        assert sorted(layout.order) == sorted(layout.cell.gates), layout.key
        for role in layout.roles:
            for part in role.parts():
                assert part in schema.PARTS, (layout.key, role.key)
