"""Layer detection from names and shapes alone (no file involved)."""

from __future__ import annotations

import pytest

from lstm_inspect.detect import categorize, detect
from lstm_inspect.readers.base import LayerConfig, TensorInfo


def infos(*items: tuple[str, tuple[int, ...]]) -> dict[str, TensorInfo]:
    return {name: TensorInfo(name, shape, "float32", name) for name, shape in items}


def test_tf1_basic_cell_and_dense_variables():
    d = detect(
        infos(
            ("rnn/basic_lstm_cell/kernel", (76, 256)),
            ("rnn/basic_lstm_cell/bias", (256,)),
            ("Variable", (64, 2)),
            ("Variable_1", (2,)),
        )
    )
    (layer,) = d.layers
    assert (layer.name, layer.input_size, layer.units, layer.recurrent_size) == ("rnn/basic_lstm_cell", 12, 64, 64)
    assert layer.layout.letters == "ijfo" and layer.forget_bias == 1.0 and layer.params == 19712
    assert [v.info.name for v in d.variables] == ["Variable", "Variable_1"]


@pytest.mark.parametrize(
    ("kernel", "bias", "scope"),
    [
        ("rnn/basic_lstm_cell/weights", "rnn/basic_lstm_cell/biases", "rnn/basic_lstm_cell"),
        ("RNN/BasicLSTMCell/Linear/Matrix", "RNN/BasicLSTMCell/Linear/Bias", "RNN/BasicLSTMCell"),
        ("rnn/LSTMCell/W_0", "rnn/LSTMCell/B", "rnn/LSTMCell"),
    ],
)
def test_legacy_names(kernel, bias, scope):
    (layer,) = detect(infos((kernel, (20, 32)), (bias, (32,)))).layers
    assert (layer.name, layer.input_size, layer.units) == (scope, 12, 8)


def test_peepholes_and_projection():
    d = detect(
        infos(
            ("enc/lstm_cell/kernel", (10 + 4, 32)),
            ("enc/lstm_cell/bias", (32,)),
            ("enc/lstm_cell/w_i_diag", (8,)),
            ("enc/lstm_cell/w_f_diag", (8,)),
            ("enc/lstm_cell/w_o_diag", (8,)),
            ("enc/lstm_cell/projection/kernel", (8, 4)),
        )
    )
    (layer,) = d.layers
    assert (layer.input_size, layer.units, layer.recurrent_size, layer.projection_size) == (10, 8, 4, 4)
    assert layer.peepholes and layer.cell == "LSTMCell" and not d.variables


def test_dense_layer_shaped_like_a_cell_is_not_an_lstm():
    d = detect(infos(("dense/kernel", (64, 8)), ("dense/bias", (8,))))
    assert d.layers == [] and len(d.variables) == 2


def test_gru_is_not_an_lstm():
    d = detect(
        infos(
            ("rnn/gru_cell/gates/kernel", (20, 16)),
            ("rnn/gru_cell/gates/bias", (16,)),
            ("rnn/gru_cell/candidate/kernel", (20, 8)),
            ("rnn/gru_cell/candidate/bias", (8,)),
        )
    )
    # A GRU since issue 17, and never an LSTM: its gates/ scope alone would fit [rows, 4u] for even u.
    (layer,) = d.layers
    assert (layer.name, layer.layout.cell.name, layer.units) == ("rnn/gru_cell", "GRU", 8)


def test_keras_lstm_cudnn_and_gru_by_shape():
    d = detect(
        infos(
            ("enc/kernel", (12, 32)),
            ("enc/recurrent_kernel", (8, 32)),
            ("enc/bias", (32,)),
            ("cud/kernel", (12, 32)),
            ("cud/recurrent_kernel", (8, 32)),
            ("cud/bias", (64,)),
            ("gru/kernel", (12, 24)),
            ("gru/recurrent_kernel", (8, 24)),
            ("gru/bias", (2, 24)),
        )
    )
    names = {layer.name: layer for layer in d.layers}
    assert set(names) == {"enc", "cud", "gru"}
    assert names["enc"].layout.key == "keras" and names["enc"].activation == "unknown"
    assert names["cud"].layout.key == "keras-cudnn" and names["cud"].recurrent_activation == "sigmoid"
    assert names["gru"].layout.key == "keras-gru" and names["gru"].units == 8  # a GRU since issue 17


def test_keras_config_gives_activations_and_excludes_other_classes():
    tensors = infos(("enc/kernel", (12, 32)), ("enc/recurrent_kernel", (8, 32)), ("enc/bias", (32,)))
    configs = {"enc": LayerConfig("LSTM", {"activation": "tanh", "recurrent_activation": "hard_sigmoid"})}
    (layer,) = detect(tensors, configs).layers
    assert (layer.recurrent_activation, layer.activation_source) == ("hard_sigmoid", "config")
    assert detect(tensors, {"enc": LayerConfig("SimpleRNN", {})}).layers == []


def test_tf2_object_keys_and_optimizer_slots():
    suffix = "/.ATTRIBUTES/VARIABLE_VALUE"
    d = detect(
        infos(
            ("model/layer_with_weights-0/cell/kernel" + suffix, (5, 16)),
            ("model/layer_with_weights-0/cell/recurrent_kernel" + suffix, (4, 16)),
            ("model/layer_with_weights-0/cell/bias" + suffix, (16,)),
            ("model/layer_with_weights-0/cell/kernel/.OPTIMIZER_SLOT/optimizer/m" + suffix, (5, 16)),
            ("save_counter" + suffix, ()),
        )
    )
    (layer,) = d.layers
    assert layer.name == "model/layer_with_weights-0"
    assert [v.category for v in d.variables] == ["optimizer", "bookkeeping"]


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("rnn/basic_lstm_cell/kernel/Adam", "optimizer"),
        ("rnn/basic_lstm_cell/kernel/Adam_1", "optimizer"),
        ("optimizer_weights/Adam/iterations:0", "optimizer"),
        ("global_step", "bookkeeping"),
        ("beta1_power", "bookkeeping"),
        ("dense/kernel", "model"),
    ],
)
def test_categories(name, category):
    assert categorize(name, "float32") == category


def test_keras1_per_gate_arrays():
    items = []
    for g in "icfo":
        items += [(f"lstm_1/W_{g}", (12, 8)), (f"lstm_1/U_{g}", (8, 8)), (f"lstm_1/b_{g}", (8,))]
    (layer,) = detect(infos(*items)).layers
    assert layer.layout.key == "keras1" and layer.params == 4 * (96 + 64 + 8)


def test_bidirectional_pairs():
    d = detect(
        infos(
            ("bidirectional_rnn/fw/basic_lstm_cell/kernel", (20, 32)),
            ("bidirectional_rnn/fw/basic_lstm_cell/bias", (32,)),
            ("bidirectional_rnn/bw/basic_lstm_cell/kernel", (20, 32)),
            ("bidirectional_rnn/bw/basic_lstm_cell/bias", (32,)),
            ("bi/forward/kernel", (3, 8)),
            ("bi/forward/recurrent_kernel", (2, 8)),
            ("bi/backward/kernel", (3, 8)),
            ("bi/backward/recurrent_kernel", (2, 8)),
        )
    )
    pairs = {layer.name: (layer.pair, layer.direction) for layer in d.layers}
    assert pairs == {
        "bidirectional_rnn/fw/basic_lstm_cell": ("bidirectional_rnn", "forward"),
        "bidirectional_rnn/bw/basic_lstm_cell": ("bidirectional_rnn", "backward"),
        "bi/forward": ("bi", "forward"),
        "bi/backward": ("bi", "backward"),
    }


def test_forget_bias_override():
    tensors = infos(("rnn/lstm_cell/kernel", (20, 32)), ("rnn/lstm_cell/bias", (32,)))
    assert detect(tensors, forget_bias=0.5).layers[0].forget_bias == 0.5


KERAS_LSTM = (("enc/kernel", (12, 32)), ("enc/recurrent_kernel", (8, 32)), ("enc/bias", (32,)))


@pytest.mark.parametrize(
    ("keras_version", "expected"),
    [
        # Keras 1/2 and tf_keras: clip(0.2x + 0.5, 0, 1); a file that names no version is taken for one.
        ("2.15.0", "hard_sigmoid"),
        ("2.2.4-tf", "hard_sigmoid"),
        (None, "hard_sigmoid"),
        # Keras 3: relu6(x + 3) / 6, another function under the same name.
        ("3.15.1", "hard_sigmoid_keras3"),
    ],
)
def test_hard_sigmoid_means_what_the_writing_keras_version_meant(keras_version, expected):
    config = {"activation": "hard_sigmoid", "recurrent_activation": "hard_sigmoid"}
    (layer,) = detect(infos(*KERAS_LSTM), {"enc": LayerConfig("LSTM", config, keras_version)}).layers
    assert (layer.activation, layer.recurrent_activation, layer.activation_source) == (expected, expected, "config")


def test_keras3_keeps_the_names_it_did_not_redefine():
    config = {"activation": "tanh", "recurrent_activation": "sigmoid"}
    (layer,) = detect(infos(*KERAS_LSTM), {"enc": LayerConfig("LSTM", config, "3.15.1")}).layers
    assert (layer.activation, layer.recurrent_activation) == ("tanh", "sigmoid")
    (layer,) = detect(infos(*KERAS_LSTM), {"enc": LayerConfig("LSTM", {}, "3.15.1")}).layers
    assert (layer.activation, layer.recurrent_activation) == ("tanh", "sigmoid")


def test_keras1_inner_activation_defaults_to_keras1_hard_sigmoid():
    items = []
    for g in "icfo":
        items += [(f"lstm_1/W_{g}", (12, 8)), (f"lstm_1/U_{g}", (8, 8)), (f"lstm_1/b_{g}", (8,))]
    (layer,) = detect(infos(*items), {"lstm_1": LayerConfig("LSTM", {"output_dim": 8}, "1.2.2")}).layers
    assert layer.recurrent_activation == "hard_sigmoid"
