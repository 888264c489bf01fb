"""The Keras reader: files made by tf_keras and Keras 3 in subprocesses, Keras 1 and Keras 2.1
files built with h5py exactly as those versions wrote them, and one test per error path."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from lstm_inspect.errors import CorruptFile, FileNotFound, UnknownName, UnsupportedFormat
from lstm_inspect.readers import open_store
from lstm_inspect.readers.keras import open_keras_h5, open_keras_zip

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
HAVE_FRAMEWORKS = all(importlib.util.find_spec(m) for m in ("tensorflow", "tf_keras", "keras"))
needs_frameworks = pytest.mark.skipif(not HAVE_FRAMEWORKS, reason="tensorflow, tf_keras and keras are needed")

# Each script saves every file the tests need plus `values.npz`: each layer's get_weights(),
# keyed "<layer name>.<index>", the reference every read() is compared with.
_SAVE_VALUES = """
def save_values(out, *models):
    values = {}
    for model in models:
        for layer in model.layers:
            for i, w in enumerate(layer.get_weights()):
                values[f"{layer.name}.{i}"] = w
    np.savez(f"{out}/values.npz", **values)


def step(model):
    # One eager optimizer step (much faster than fit) so that the optimizer state is saved too.
    variables = model.trainable_variables
    model.optimizer.apply_gradients([(tf.ones_like(v), v) for v in variables])
"""

KERAS2_SCRIPT = (
    """
import sys
import numpy as np
import tensorflow as tf
import tf_keras as keras
"""
    + _SAVE_VALUES
    + """
out = sys.argv[1]
keras.utils.set_random_seed(0)
inp = keras.Input((5, 3))
x = keras.layers.LSTM(4, name="enc", return_sequences=True)(inp)
x = keras.layers.Bidirectional(keras.layers.LSTM(2), name="bi")(x)
model = keras.Model(inp, keras.layers.Dense(3, name="dense")(x))
model.compile(optimizer="adam", loss="mse")
step(model)
model.save(f"{out}/full.h5")
model.save_weights(f"{out}/weights.h5")
model.save(f"{out}/model.keras")  # tf_keras' own .keras: no `name` attributes in its weights
model.save_weights(f"{out}/model.weights.h5")
sub = keras.Sequential([keras.layers.LSTM(4, name="enc2")], name="sub")
nested = keras.Sequential([keras.Input((5, 3)), sub, keras.layers.Dense(2, name="head")])
nested.save(f"{out}/nested.h5")
cudnn = keras.Sequential([keras.Input((5, 3)), tf.compat.v1.keras.layers.CuDNNLSTM(4, name="cud")])
cudnn.save(f"{out}/cudnn.h5")
save_values(out, model, nested, cudnn)
"""
)

KERAS3_SCRIPT = (
    """
import sys
import numpy as np
import keras
import tensorflow as tf
"""
    + _SAVE_VALUES
    + """
out = sys.argv[1]
keras.utils.set_random_seed(0)
L = keras.layers
inp = keras.Input((5, 3))
x = L.LSTM(4, name="enc", return_sequences=True)(inp)
x = L.Bidirectional(L.LSTM(2), name="bi")(x)
x = L.GRU(2, name="gru_user", return_sequences=True)(L.Reshape((4, 1))(x))
x = L.Flatten()(L.BatchNormalization(name="bn")(x))
model = keras.Model(inp, L.Dense(3, name="dense")(x))
model.compile(optimizer="adam", loss="mse")
step(model)
model.save(f"{out}/model.keras")
model.save_weights(f"{out}/model.weights.h5")
model.save(f"{out}/legacy.h5")
sub = keras.Sequential([keras.Input((5, 3)), L.LSTM(4, name="enc2")], name="sub")
nested = keras.Sequential([keras.Input((5, 3)), sub, L.Dense(2, name="head")])
nested.save(f"{out}/nested.keras")
nested.save(f"{out}/nested.h5")
save_values(out, model, nested)
"""
)


@pytest.fixture(scope="session")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not HAVE_FRAMEWORKS:
        pytest.skip("tensorflow, tf_keras and keras are needed to make sample files")
    # TF_USE_LEGACY_KERAS must be decided before TensorFlow is imported, hence one process per
    # framework; both run at once.
    running = {}
    for framework, script, legacy in (("keras2", KERAS2_SCRIPT, True), ("keras3", KERAS3_SCRIPT, False)):
        out = tmp_path_factory.mktemp(framework)
        env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
        env.update(TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", KERAS_BACKEND="tensorflow")
        if legacy:
            env["TF_USE_LEGACY_KERAS"] = "1"
        proc = subprocess.Popen(
            [sys.executable, "-c", script, str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        running[framework] = (proc, out)
    dirs = {}
    for framework, (proc, out) in running.items():
        log, _ = proc.communicate(timeout=600)
        if proc.returncode != 0:
            pytest.fail(f"making {framework} files failed:\n{log.decode(errors='replace')[-4000:]}")
        dirs[framework] = out
    return dirs


@pytest.fixture(scope="session")
def k2(made: dict[str, Path]) -> Path:
    return made["keras2"]


@pytest.fixture(scope="session")
def k3(made: dict[str, Path]) -> Path:
    return made["keras3"]


LSTM_PARTS = ["kernel", "recurrent_kernel", "bias"]
# logical names in get_weights() order, per layer
ENC = [f"enc/{p}" for p in LSTM_PARTS]
BI = [f"bi/{d}/{p}" for d in ("forward", "backward") for p in LSTM_PARTS]
DENSE = ["dense/kernel", "dense/bias"]
GRU = [f"gru_user/{p}" for p in LSTM_PARTS]
BN = [f"bn/{p}" for p in ("gamma", "beta", "moving_mean", "moving_variance")]
KERAS2_LAYERS = {"enc": ENC, "bi": BI, "dense": DENSE}
KERAS3_LAYERS = {"enc": ENC, "bi": BI, "gru_user": GRU, "bn": BN, "dense": DENSE}


def model_names(store) -> list[str]:
    return [n for n in store.tensors() if not n.startswith(("optimizer", "metrics"))]


def assert_values(store, directory: Path, layers: dict[str, list[str]]) -> None:
    values = np.load(directory / "values.npz")
    for layer, names in layers.items():
        for i, name in enumerate(names):
            got, want = store.read(name), values[f"{layer}.{i}"]
            assert got.dtype == want.dtype, name
            assert store.tensors()[name].shape == want.shape, name
            np.testing.assert_array_equal(got, want, err_msg=name)


# ---------------------------------------------------------------------------------------------
# tf_keras (Keras 2)


@needs_frameworks
def test_keras2_full_h5_names_shapes_and_sources(k2):
    with open_keras_h5(k2 / "full.h5") as store:
        assert store.format == "keras-h5"
        assert model_names(store) == ENC + BI + DENSE
        t = store.tensors()
        assert t["enc/kernel"].shape == (3, 16)
        assert t["enc/recurrent_kernel"].shape == (4, 16)
        assert t["bi/backward/bias"].shape == (8,)
        assert {t[n].dtype for n in model_names(store)} == {"float32"}
        assert t["enc/kernel"].source == "model_weights/enc/enc/lstm_cell/kernel:0"
        assert t["bi/forward/kernel"].source == "model_weights/bi/bi/forward_lstm/lstm_cell/kernel:0"
        assert t["dense/bias"].source == "model_weights/dense/dense/bias:0"


@needs_frameworks
def test_keras2_full_h5_values_equal_get_weights(k2):
    with open_keras_h5(k2 / "full.h5") as store:
        assert_values(store, k2, KERAS2_LAYERS)


@needs_frameworks
def test_keras2_optimizer_state_keeps_its_path(k2):
    with open_keras_h5(k2 / "full.h5") as store:
        optimizer = [n for n in store.tensors() if n.startswith("optimizer_weights/")]
        assert "optimizer_weights/Adam/m/enc/lstm_cell/kernel:0" in optimizer
        assert len(optimizer) == 1 + 2 * len(ENC + BI + DENSE)  # iteration, then m and v per weight
        iteration = store.read("optimizer_weights/iteration:0")
        assert iteration.shape == () and iteration.dtype == np.int64 and int(iteration) == 1
        assert store.tensors()["optimizer_weights/iteration:0"].source == "optimizer_weights/iteration:0"


@needs_frameworks
def test_keras2_layer_configs(k2):
    with open_keras_h5(k2 / "full.h5") as store:
        configs = store.layer_configs()
    assert list(configs) == ["enc", "bi/forward", "bi/backward", "dense"]
    enc = configs["enc"]
    assert enc.class_name == "LSTM"
    assert (enc.config["units"], enc.config["activation"], enc.config["recurrent_activation"]) == (4, "tanh", "sigmoid")
    assert configs["bi/forward"].class_name == "LSTM" and configs["bi/forward"].config["units"] == 2
    # tf_keras stores only the wrapped layer; the backward half is that config run backwards.
    assert configs["bi/forward"].config["go_backwards"] is False
    assert configs["bi/backward"].config["go_backwards"] is True
    assert configs["dense"].class_name == "Dense"


@needs_frameworks
def test_keras2_weights_only_h5(k2):
    with open_keras_h5(k2 / "weights.h5") as store:
        assert store.format == "keras-h5"
        assert list(store.tensors()) == ENC + BI + DENSE
        assert store.tensors()["enc/kernel"].source == "enc/enc/lstm_cell/kernel:0"
        assert store.layer_configs() == {}
        assert_values(store, k2, KERAS2_LAYERS)


@needs_frameworks
def test_keras2_cudnn_lstm_h5(k2):
    with open_keras_h5(k2 / "cudnn.h5") as store:
        assert list(store.tensors()) == ["cud/kernel", "cud/recurrent_kernel", "cud/bias"]
        assert store.tensors()["cud/bias"].shape == (32,)  # 8u: input-side then recurrent-side biases
        assert store.tensors()["cud/kernel"].source == "model_weights/cud/cud/kernel:0"
        cud = store.layer_configs()["cud"]
        assert cud.class_name == "CuDNNLSTM" and cud.config["units"] == 4
        assert_values(store, k2, {"cud": ["cud/kernel", "cud/recurrent_kernel", "cud/bias"]})


@needs_frameworks
def test_keras2_nested_model_h5(k2):
    with open_keras_h5(k2 / "nested.h5") as store:
        names = [f"sub/enc2/{p}" for p in LSTM_PARTS]
        assert list(store.tensors()) == names + ["head/kernel", "head/bias"]
        assert store.tensors()["sub/enc2/kernel"].source == "model_weights/sub/enc2/lstm_cell/kernel:0"
        assert list(store.layer_configs()) == ["sub/enc2", "head"]
        assert_values(store, k2, {"sub": names, "head": ["head/kernel", "head/bias"]})


@needs_frameworks
def test_tf_keras_dot_keras_maps_auto_names_through_config(k2):
    # tf_keras writes no `name` attribute: the user names come from config.json alone.
    with open_keras_zip(k2 / "model.keras") as store:
        assert store.format == "keras-v3"
        assert model_names(store) == ENC + BI + DENSE
        assert store.tensors()["enc/kernel"].source == "model.weights.h5:layers/lstm/cell/vars/0"
        assert store.tensors()["optimizer/vars/0"].source == "model.weights.h5:optimizer/vars/0"
        assert list(store.layer_configs()) == ["enc", "bi/forward", "bi/backward", "dense"]
        assert_values(store, k2, KERAS2_LAYERS)


@needs_frameworks
def test_bare_weights_h5_without_names_uses_auto_names(k2):
    with open_keras_h5(k2 / "model.weights.h5") as store:
        assert store.format == "keras-weights-h5"
        # In the order Keras saved the layers (their HDF5 object headers'), not by auto name.
        bidirectional = [f"bidirectional/{d}/{p}" for d in ("forward", "backward") for p in LSTM_PARTS]
        expected = [f"lstm/{p}" for p in LSTM_PARTS] + bidirectional + ["dense/kernel", "dense/bias"]
        assert model_names(store) == expected
        assert store.layer_configs() == {}
        assert_values(store, k2, {"enc": [f"lstm/{p}" for p in LSTM_PARTS], "bi": bidirectional})


# ---------------------------------------------------------------------------------------------
# Keras 3


@needs_frameworks
def test_keras3_dot_keras(k3):
    with open_keras_zip(k3 / "model.keras") as store:
        assert store.format == "keras-v3"
        assert model_names(store) == ENC + BI + GRU + BN + DENSE
        t = store.tensors()
        assert t["enc/kernel"].source == "model.weights.h5:layers/lstm/cell/vars/0"
        assert t["bi/backward/bias"].source == "model.weights.h5:layers/bidirectional/backward_layer/cell/vars/2"
        assert t["gru_user/bias"].shape == (2, 6)  # reset_after: input and recurrent biases
        assert store.read("optimizer/vars/0").dtype == np.int64
        assert_values(store, k3, KERAS3_LAYERS)


@needs_frameworks
def test_keras3_layer_configs(k3):
    with open_keras_zip(k3 / "model.keras") as store:
        configs = store.layer_configs()
    assert list(configs) == ["enc", "bi/forward", "bi/backward", "gru_user", "bn", "dense"]
    assert configs["enc"].class_name == "LSTM"
    assert configs["enc"].config["recurrent_activation"] == "sigmoid"
    assert configs["bi/backward"].config["name"] == "backward_lstm"
    assert configs["bi/backward"].config["go_backwards"] is True
    assert configs["gru_user"].class_name == "GRU" and configs["gru_user"].config["units"] == 2


@needs_frameworks
def test_keras3_weights_h5_names_layers_by_their_name_attribute(k3):
    with open_keras_zip(k3 / "model.keras") as zipped, open_keras_h5(k3 / "model.weights.h5") as store:
        assert store.format == "keras-weights-h5"
        assert sorted(model_names(store)) == sorted(model_names(zipped))
        assert store.tensors()["enc/kernel"].source == "layers/lstm/cell/vars/0"
        assert store.layer_configs() == {}
        assert_values(store, k3, KERAS3_LAYERS)


def _strip_name_attributes(h5_path: Path) -> None:
    """What Keras 3 files written before the `name` attribute look like."""
    with h5py.File(h5_path, "r+") as f:
        groups = []
        f.visititems(lambda _, obj: groups.append(obj) if isinstance(obj, h5py.Group) else None)
        for group in groups:
            if "name" in group.attrs:
                del group.attrs["name"]


def _rezip(source: Path, target: Path, compression: int, replace: dict[str, bytes] | None = None) -> None:
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", compression) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, (replace or {}).get(info.filename, src.read(info)))


@needs_frameworks
def test_keras3_weights_h5_without_name_attributes_uses_auto_names(k3, tmp_path):
    bare = tmp_path / "old.weights.h5"
    shutil.copy(k3 / "model.weights.h5", bare)
    _strip_name_attributes(bare)
    with open_keras_h5(bare) as store:
        names = model_names(store)
        for expected in ("lstm/kernel", "bidirectional/forward/recurrent_kernel", "gru/bias", "dense/kernel"):
            assert expected in names
        # BatchNormalization's four variables are named from the class word of its auto name.
        assert [n for n in names if n.startswith("batch_normalization/")] == [
            f"batch_normalization/{p}" for p in ("gamma", "beta", "moving_mean", "moving_variance")
        ]
        assert_values(store, k3, {"enc": [f"lstm/{p}" for p in LSTM_PARTS]})


@needs_frameworks
def test_keras3_dot_keras_without_name_attributes_maps_through_config(k3, tmp_path):
    weights = tmp_path / "model.weights.h5"
    with zipfile.ZipFile(k3 / "model.keras") as archive:
        weights.write_bytes(archive.read("model.weights.h5"))
    _strip_name_attributes(weights)
    old = tmp_path / "old.keras"
    _rezip(k3 / "model.keras", old, zipfile.ZIP_STORED, {"model.weights.h5": weights.read_bytes()})
    with open_keras_zip(old) as store:
        assert model_names(store) == ENC + BI + GRU + BN + DENSE
        assert_values(store, k3, KERAS3_LAYERS)


@needs_frameworks
def test_keras3_deflated_dot_keras_is_read_through_zipfile(k3, tmp_path):
    deflated = tmp_path / "deflated.keras"
    _rezip(k3 / "model.keras", deflated, zipfile.ZIP_DEFLATED)
    with open_keras_zip(deflated) as store:
        assert model_names(store) == ENC + BI + GRU + BN + DENSE
        assert_values(store, k3, KERAS3_LAYERS)


@needs_frameworks
def test_keras3_legacy_h5(k3):
    with open_keras_h5(k3 / "legacy.h5") as store:
        assert store.format == "keras-h5"
        assert model_names(store) == ENC + BI + GRU + BN + DENSE
        assert store.tensors()["enc/kernel"].source == "model_weights/enc/enc/lstm_cell/kernel"
        assert "optimizer_weights/adam/enc_lstm_cell_kernel_momentum" in store.tensors()
        assert list(store.layer_configs()) == ["enc", "bi/forward", "bi/backward", "gru_user", "bn", "dense"]
        assert_values(store, k3, KERAS3_LAYERS)


@needs_frameworks
@pytest.mark.parametrize("file_name", ["nested.keras", "nested.h5"])
def test_keras3_nested_model(k3, file_name):
    names = [f"sub/enc2/{p}" for p in LSTM_PARTS]
    with open_store(k3 / file_name) as store:
        # The legacy writer prefixes the head's variables with the model's name (sequential/head/...).
        assert list(store.tensors()) == names + ["head/kernel", "head/bias"]
        assert list(store.layer_configs()) == ["sub/enc2", "head"]
        assert store.layer_configs()["sub/enc2"].config["units"] == 4
        assert_values(store, k3, {"sub": names, "head": ["head/kernel", "head/bias"]})


@needs_frameworks
def test_open_store_dispatches_keras_files(k2, k3):
    for path, fmt in (
        (k2 / "full.h5", "keras-h5"),
        (k3 / "model.keras", "keras-v3"),
        (k3 / "model.weights.h5", "keras-weights-h5"),
    ):
        with open_store(path) as store:
            assert store.format == fmt
            assert store.path == str(path)


# ---------------------------------------------------------------------------------------------
# Keras 1 and Keras 2.0–2.2, which cannot be installed here: written with h5py as they wrote them


def _write_strings(obj: h5py.Group, name: str, values: list[str]) -> None:
    obj.attrs[name] = [v.encode("utf8") for v in values]


def _write_layer(group: h5py.Group, layer: str, weights: dict[str, np.ndarray]) -> None:
    g = group.create_group(layer)
    _write_strings(g, "weight_names", list(weights))
    for name, value in weights.items():
        g.create_dataset(name, data=value)


def write_keras1_h5(path: Path, *, full: bool, suffix: str = "") -> dict[str, np.ndarray]:
    """A Keras 1.2 file. Structure from keras-team/keras 1.2.2: keras/models.py save_model (root
    attrs keras_version, model_config = {"class_name", "config"}, the Sequential config being the
    list of layer configs; group model_weights) and keras/engine/topology.py
    Container.save_weights_to_hdf5_group (attr layer_names; per layer a group with attr
    weight_names = [w.name] and one dataset per name). LSTM.build (keras/layers/recurrent.py) names
    its 12 variables "<layer>_W_i" ... in the order i, c, f, o; Bidirectional (keras/layers/
    wrappers.py) renames its copies "forward_<layer>"/"backward_<layer>" before they build. Theano
    names carry no ":0"; `suffix` adds TensorFlow's."""
    rng = np.random.default_rng(1)
    values: dict[str, np.ndarray] = {}

    def lstm(layer: str, prefix: str, input_dim: int, units: int) -> dict[str, np.ndarray]:
        weights = {}
        for gate in "icfo":
            for part, shape in (("W", (input_dim, units)), ("U", (units, units)), ("b", (units,))):
                weights[f"{prefix}_{part}_{gate}{suffix}"] = value = rng.standard_normal(shape).astype(np.float32)
                values[f"{layer}/{part}_{gate}"] = value
        return weights

    def lstm_config(name: str, output_dim: int) -> dict:
        return {
            "class_name": "LSTM",
            "config": {
                "name": name,
                "output_dim": output_dim,
                "activation": "tanh",
                "inner_activation": "hard_sigmoid",
                "consume_less": "cpu",
                "go_backwards": False,
                "return_sequences": True,
            },
        }

    config = {
        "class_name": "Sequential",
        "config": [
            lstm_config("lstm_1", 4),
            {
                "class_name": "Bidirectional",
                "config": {"name": "bidirectional_1", "merge_mode": "concat", "layer": lstm_config("lstm_2", 2)},
            },
            {"class_name": "Dense", "config": {"name": "dense_1", "output_dim": 3, "activation": "linear"}},
        ],
    }
    layers = {
        "lstm_1": lstm("lstm_1", "lstm_1", 3, 4),
        "bidirectional_1": {
            **lstm("bidirectional_1/forward", "forward_lstm_2", 4, 2),
            **lstm("bidirectional_1/backward", "backward_lstm_2", 4, 2),
        },
        "dense_1": {
            f"dense_1_W{suffix}": rng.standard_normal((4, 3)).astype(np.float32),
            f"dense_1_b{suffix}": rng.standard_normal(3).astype(np.float32),
        },
    }
    values["dense_1/W"], values["dense_1/b"] = layers["dense_1"].values()
    with h5py.File(path, "w") as f:
        if full:
            f.attrs["keras_version"] = b"1.2.2"
            f.attrs["model_config"] = json.dumps(config).encode("utf8")
            group = f.create_group("model_weights")
        else:
            group = f
        _write_strings(group, "layer_names", list(layers))
        for layer, weights in layers.items():
            _write_layer(group, layer, weights)
    return values


def keras1_names(layer: str) -> list[str]:
    return [f"{layer}/{part}_{gate}" for gate in "icfo" for part in "WUb"]


KERAS1_NAMES = (
    keras1_names("lstm_1")
    + keras1_names("bidirectional_1/forward")
    + keras1_names("bidirectional_1/backward")
    + ["dense_1/W", "dense_1/b"]
)


@pytest.mark.parametrize("suffix", ["", ":0"], ids=["theano-names", "tensorflow-names"])
def test_keras1_full_h5(tmp_path, suffix):
    values = write_keras1_h5(tmp_path / "k1.h5", full=True, suffix=suffix)
    with open_keras_h5(tmp_path / "k1.h5") as store:
        assert store.format == "keras-h5"
        assert list(store.tensors()) == KERAS1_NAMES
        assert store.tensors()["lstm_1/U_f"].shape == (4, 4)
        assert store.tensors()["lstm_1/W_i"].source == f"model_weights/lstm_1/lstm_1_W_i{suffix}"
        for name, value in values.items():
            np.testing.assert_array_equal(store.read(name), value)
        configs = store.layer_configs()
    assert list(configs) == ["lstm_1", "bidirectional_1/forward", "bidirectional_1/backward", "dense_1"]
    lstm_1 = configs["lstm_1"]
    # As stored: Keras 1 names (output_dim, inner_activation), not Keras 2's.
    assert lstm_1.class_name == "LSTM"
    assert (lstm_1.config["output_dim"], lstm_1.config["inner_activation"]) == (4, "hard_sigmoid")
    assert "units" not in lstm_1.config
    assert configs["bidirectional_1/backward"].config["go_backwards"] is True


def test_keras1_weights_only_h5(tmp_path):
    write_keras1_h5(tmp_path / "k1w.h5", full=False)
    with open_keras_h5(tmp_path / "k1w.h5") as store:
        # Without a config the Bidirectional copies' inner name is unknown: kept whole.
        assert list(store.tensors())[:12] == keras1_names("lstm_1")
        assert "bidirectional_1/forward_lstm_2_W_i" in store.tensors()
        assert store.layer_configs() == {}


def write_keras21_h5(path: Path) -> dict[str, np.ndarray]:
    """A Keras 2.1.6 file; returns the values by the logical name the reader should give them.

    Structure from keras-team/keras 2.1.6: keras/models.py save_model (root attrs keras_version,
    backend, model_config; Sequential.get_config still returned the bare list of layers;
    optimizer_weights with weight_names) and keras/engine/topology.py
    save_weights_to_hdf5_group(f, layers) (attrs layer_names, backend, keras_version; per layer
    weight_names = [w.name]). Variables are named in the layer's name scope with TF's ":0"; RNN
    cells had no scope of their own yet ("lstm_1/kernel:0"), and Bidirectional named its copies
    "forward_lstm_2"/"backward_lstm_2" (keras/layers/wrappers.py).
    """
    rng = np.random.default_rng(2)
    shapes = {"kernel": (4, 8), "recurrent_kernel": (2, 8), "bias": (8,)}
    layers: dict[str, dict[str, tuple[str, np.ndarray]]] = {  # layer -> weight name -> (logical, value)
        "lstm_1": {
            f"lstm_1/{p}:0": (f"lstm_1/{p}", rng.standard_normal(s).astype(np.float32))
            for p, s in (("kernel", (3, 16)), ("recurrent_kernel", (4, 16)), ("bias", (16,)))
        },
        "bidirectional_1": {
            f"bidirectional_1/{d}_lstm_2/{p}:0": (f"bidirectional_1/{d}/{p}", rng.standard_normal(s).astype(np.float32))
            for d in ("forward", "backward")
            for p, s in shapes.items()
        },
        "dense_1": {
            f"dense_1/{p}:0": (f"dense_1/{p}", rng.standard_normal(s).astype(np.float32))
            for p, s in (("kernel", (4, 3)), ("bias", (3,)))
        },
    }
    optimizer = {
        "Adam/iterations:0": np.array(7, dtype=np.int64),
        "training/Adam/Variable:0": np.ones((3, 16), np.float32),
    }
    lstm_2 = {"class_name": "LSTM", "config": {"name": "lstm_2", "units": 2, "go_backwards": False}}
    config = {
        "class_name": "Sequential",
        "config": [
            {
                "class_name": "LSTM",
                "config": {
                    "name": "lstm_1",
                    "units": 4,
                    "activation": "tanh",
                    "recurrent_activation": "hard_sigmoid",
                    "return_sequences": True,
                },
            },
            {
                "class_name": "Bidirectional",
                "config": {"name": "bidirectional_1", "layer": lstm_2, "merge_mode": "concat"},
            },
            {"class_name": "Dense", "config": {"name": "dense_1", "units": 3}},
        ],
    }
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.1.6"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(config).encode("utf8")
        group = f.create_group("model_weights")
        _write_strings(group, "layer_names", list(layers))
        group.attrs["backend"] = b"tensorflow"
        group.attrs["keras_version"] = b"2.1.6"
        for layer, weights in layers.items():
            _write_layer(group, layer, {name: value for name, (_, value) in weights.items()})
        opt = f.create_group("optimizer_weights")
        _write_strings(opt, "weight_names", list(optimizer))
        for name, value in optimizer.items():
            opt.create_dataset(name, data=value)
    expected = {logical: value for weights in layers.values() for logical, value in weights.values()}
    return expected | {f"optimizer_weights/{name}": value for name, value in optimizer.items()}


def test_keras21_h5(tmp_path):
    expected = write_keras21_h5(tmp_path / "k21.h5")
    with open_keras_h5(tmp_path / "k21.h5") as store:
        assert list(store.tensors()) == list(expected)
        assert store.tensors()["lstm_1/kernel"].source == "model_weights/lstm_1/lstm_1/kernel:0"
        assert store.tensors()["bidirectional_1/backward/bias"].source == (
            "model_weights/bidirectional_1/bidirectional_1/backward_lstm_2/bias:0"
        )
        for name, value in expected.items():
            np.testing.assert_array_equal(store.read(name), value)
        configs = store.layer_configs()
    assert list(configs) == ["lstm_1", "bidirectional_1/forward", "bidirectional_1/backward", "dense_1"]
    assert configs["lstm_1"].config["recurrent_activation"] == "hard_sigmoid"


def test_chunked_layer_names_attribute(tmp_path):
    # Keras splits attributes over 64 KiB into layer_names0, layer_names1, ... (hdf5_format.py
    # save_attributes_to_hdf5_group).
    with h5py.File(tmp_path / "chunked.h5", "w") as f:
        _write_strings(f, "layer_names0", ["a"])
        _write_strings(f, "layer_names1", ["b"])
        _write_layer(f, "a", {"a/kernel:0": np.ones((2, 2), np.float32)})
        _write_layer(f, "b", {"b/bias:0": np.zeros(2, np.float16)})
    with open_keras_h5(tmp_path / "chunked.h5") as store:
        assert list(store.tensors()) == ["a/kernel", "b/bias"]
        assert store.tensors()["b/bias"].dtype == "float16"


def test_reader_imports_no_framework(tmp_path):
    write_keras1_h5(tmp_path / "k1.h5", full=True)
    code = (
        "import sys\nfrom lstm_inspect.readers.keras import open_keras_h5\n"
        f"with open_keras_h5({str(tmp_path / 'k1.h5')!r}) as s: s.read('lstm_1/W_i')\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'tf_keras') if m in sys.modules))"
    )
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------
# Error paths


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFound, match="no such file"):
        open_keras_h5(tmp_path / "nope.h5")
    with pytest.raises(FileNotFound, match="no such file"):
        open_keras_zip(tmp_path / "nope.keras")


def test_hdf5_without_keras_weights(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=np.zeros((2, 2)))
    with pytest.raises(UnsupportedFormat, match=r"other\.h5: an HDF5 file without Keras weights"):
        open_keras_h5(path)


def test_not_hdf5(tmp_path):
    path = tmp_path / "text.h5"
    path.write_text("hello")
    with pytest.raises(UnsupportedFormat, match="not an HDF5 file"):
        open_keras_h5(path)


def test_truncated_hdf5(tmp_path):
    path = tmp_path / "cut.h5"
    write_keras1_h5(path, full=True)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFile, match=r"cut\.h5: the HDF5 file is truncated or damaged \(it is shorter than"):
        open_keras_h5(path)


def test_hdf5_signature_then_garbage(tmp_path):
    path = tmp_path / "garbage.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 8)
    with pytest.raises(CorruptFile, match="garbage.h5: the HDF5 file is truncated or damaged"):
        open_keras_h5(path)


def test_damaged_tensor_data_fails_on_read(tmp_path):
    path = tmp_path / "damaged.h5"
    with h5py.File(path, "w") as f:
        _write_strings(f, "layer_names", ["enc"])
        g = f.create_group("enc")
        _write_strings(g, "weight_names", ["enc/kernel:0"])
        ds = g.create_dataset(
            "enc/kernel:0", data=np.arange(4096, dtype=np.float32).reshape(64, 64), chunks=(64, 64), compression="gzip"
        )
        chunk = ds.id.get_chunk_info(0)
    with open(path, "r+b") as f:
        f.seek(chunk.byte_offset)
        f.write(b"\xff" * chunk.size)
    with open_keras_h5(path) as store:
        assert store.tensors()["enc/kernel"].shape == (64, 64)
        with pytest.raises(CorruptFile, match=r"cannot read tensor 'enc/kernel' \(enc/enc/kernel:0\)"):
            store.read("enc/kernel")


def test_listed_layer_without_group(tmp_path):
    path = tmp_path / "nolayer.h5"
    with h5py.File(path, "w") as f:
        _write_strings(f, "layer_names", ["enc"])
    with pytest.raises(CorruptFile, match="layer 'enc' is listed in `layer_names` but has no group"):
        open_keras_h5(path)


def test_listed_weight_without_dataset(tmp_path):
    path = tmp_path / "noweight.h5"
    with h5py.File(path, "w") as f:
        _write_strings(f, "layer_names", ["enc"])
        _write_strings(f.create_group("enc"), "weight_names", ["enc/kernel:0"])
    with pytest.raises(CorruptFile, match="enc lists weight 'enc/kernel:0' but the file has no such dataset"):
        open_keras_h5(path)


def test_broken_model_config_attribute(tmp_path):
    path = tmp_path / "badconfig.h5"
    write_keras1_h5(path, full=True)
    with h5py.File(path, "r+") as f:
        f.attrs["model_config"] = b'{"class_name": "Sequential", '
    with pytest.raises(CorruptFile, match="`model_config` attribute is not valid JSON"):
        open_keras_h5(path)


def test_unknown_tensor_name(tmp_path):
    write_keras1_h5(tmp_path / "k1.h5", full=True)
    with open_keras_h5(tmp_path / "k1.h5") as store:
        with pytest.raises(UnknownName, match="no tensor named 'lstm_1/kernel'.*lstm_1/W_i"):
            store.read("lstm_1/kernel")


def _keras_zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _tiny_weights_h5(tmp_path: Path) -> bytes:
    path = tmp_path / "tiny.weights.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("layers/dense/vars/0", data=np.ones((2, 3), np.float32))
        f.create_dataset("layers/dense/vars/1", data=np.zeros(3, np.float32))
    return path.read_bytes()


TINY_CONFIG = json.dumps(
    {
        "class_name": "Sequential",
        "config": {"name": "s", "layers": [{"class_name": "Dense", "config": {"name": "out", "units": 3}}]},
    }
).encode()


def test_tiny_synthetic_dot_keras(tmp_path):
    path = tmp_path / "tiny.keras"
    _keras_zip(path, {"config.json": TINY_CONFIG, "model.weights.h5": _tiny_weights_h5(tmp_path)})
    with open_keras_zip(path) as store:
        assert list(store.tensors()) == ["out/kernel", "out/bias"]
        assert store.layer_configs()["out"].config["units"] == 3


def test_dot_keras_without_weights(tmp_path):
    path = tmp_path / "noweights.keras"
    _keras_zip(path, {"config.json": TINY_CONFIG, "metadata.json": b"{}"})
    with pytest.raises(CorruptFile, match=r"noweights\.keras: this \.keras archive has no model\.weights\.h5"):
        open_keras_zip(path)


def test_dot_keras_with_npz_weights(tmp_path):
    path = tmp_path / "npz.keras"
    _keras_zip(path, {"config.json": TINY_CONFIG, "model.weights.npz": b"PK"})
    with pytest.raises(UnsupportedFormat, match="weights were saved as npz"):
        open_keras_zip(path)


def test_dot_keras_without_config(tmp_path):
    path = tmp_path / "noconfig.keras"
    _keras_zip(path, {"model.weights.h5": _tiny_weights_h5(tmp_path)})
    with pytest.raises(CorruptFile, match="has no config.json"):
        open_keras_zip(path)


@pytest.mark.parametrize(
    "config", [b'{"class_name": ', b"[1, 2]", b"\xff\xfe"], ids=["truncated", "not-object", "not-utf8"]
)
def test_dot_keras_with_broken_config(tmp_path, config):
    path = tmp_path / "badconfig.keras"
    _keras_zip(path, {"config.json": config, "model.weights.h5": _tiny_weights_h5(tmp_path)})
    with pytest.raises(CorruptFile, match=r"badconfig\.keras: config\.json is not"):
        open_keras_zip(path)


def test_dot_keras_with_damaged_weights_member(tmp_path):
    path = tmp_path / "cut.keras"
    weights = _tiny_weights_h5(tmp_path)
    _keras_zip(path, {"config.json": TINY_CONFIG, "model.weights.h5": weights[: len(weights) // 2]})
    with pytest.raises(CorruptFile, match=r"cut\.keras \(model\.weights\.h5\): the HDF5 file is truncated or damaged"):
        open_keras_zip(path)


def _set_declared_size(path: Path, member: str, size: int) -> None:
    """Overwrite a member's sizes in the zip's central directory (APPNOTE 4.3.12: compressed
    size at +20, uncompressed size at +24 of each `PK\\x01\\x02` record, name at +46)."""
    data = bytearray(path.read_bytes())
    pos = data.find(b"PK\x01\x02")
    while pos != -1:
        name_length = int.from_bytes(data[pos + 28 : pos + 30], "little")
        if data[pos + 46 : pos + 46 + name_length] == member.encode():
            data[pos + 20 : pos + 24] = size.to_bytes(4, "little")
            data[pos + 24 : pos + 28] = size.to_bytes(4, "little")
        pos = data.find(b"PK\x01\x02", pos + 4)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("member", ["model.weights.h5", "config.json"])
def test_dot_keras_member_larger_than_the_file(tmp_path, member):
    path = tmp_path / "huge.keras"
    _keras_zip(path, {"config.json": TINY_CONFIG, "model.weights.h5": _tiny_weights_h5(tmp_path)})
    _set_declared_size(path, member, 0xFFFF_FFF0)
    with pytest.raises(CorruptFile, match=rf"the zip entry {member} declares 4294967280 bytes"):
        open_keras_zip(path)


def test_dot_keras_member_claiming_impossible_expansion(tmp_path):
    path = tmp_path / "bomb.keras"
    _keras_zip(path, {"config.json": TINY_CONFIG, "model.weights.h5": _tiny_weights_h5(tmp_path)}, zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    # Uncompressed size only, in the central directory record of config.json (the first one).
    pos = data.find(b"PK\x01\x02")
    data[pos + 24 : pos + 28] = (0xFFFF_FFF0).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptFile, match="the zip entry config.json declares 4294967280 bytes"):
        open_keras_zip(path)


def test_not_a_zip(tmp_path):
    path = tmp_path / "plain.keras"
    path.write_bytes(b"not a zip at all")
    with pytest.raises(UnsupportedFormat, match="not a zip archive"):
        open_keras_zip(path)


def test_truncated_zip(tmp_path):
    path = tmp_path / "cut.keras"
    _keras_zip(path, {"config.json": TINY_CONFIG, "model.weights.h5": _tiny_weights_h5(tmp_path)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 30])
    with pytest.raises(CorruptFile, match="zip archive is damaged or truncated"):
        open_keras_zip(path)


# ---------------------------------------------------------------------------------------------
# The shipped fixtures, when present: every LSTM the manifest lists is where it says


def _keras_fixture_entries() -> list[dict]:
    manifest = FIXTURES / "manifest.json"
    if not manifest.exists():
        return []
    entries = json.loads(manifest.read_text())["fixtures"]
    return [e for e in entries if e["format"] in ("keras-h5", "keras-v3", "keras-weights-h5")]


@pytest.mark.parametrize("entry", _keras_fixture_entries(), ids=lambda e: e["name"])
def test_shipped_keras_fixtures(entry):
    with open_store(FIXTURES / entry["path"]) as store:
        assert store.format == entry["format"]
        tensors = store.tensors()
        for layer in entry["layers"]:
            kernel = tensors[f"{layer['name']}/kernel"]
            assert kernel.source in (layer["kernel_key"], f"model.weights.h5:{layer['kernel_key']}")
            assert kernel.shape == (layer["input_size"], 4 * layer["units"])
            assert store.read(f"{layer['name']}/kernel").shape == kernel.shape
            assert f"{layer['name']}/recurrent_kernel" in tensors and f"{layer['name']}/bias" in tensors


def test_bfloat16_tensor(tmp_path):
    # Keras 3 writes bfloat16 as 2-byte opaque values tagged attrs["dtype"] = "bfloat16"
    # (saving_lib.py H5IOStore.__setitem__).
    ml_dtypes = pytest.importorskip("ml_dtypes")
    value = np.arange(6, dtype=np.float32).reshape(2, 3).astype(ml_dtypes.bfloat16)
    with h5py.File(tmp_path / "bf16.weights.h5", "w") as f:
        f.create_group("layers/embedding/vars").create_dataset("0", data=value).attrs["dtype"] = "bfloat16"
    with open_keras_h5(tmp_path / "bf16.weights.h5") as store:
        assert store.tensors()["embedding/embeddings"].dtype == "bfloat16"
        got = store.read("embedding/embeddings")
        assert got.dtype == value.dtype and np.array_equal(got, value)


# ---------------------------------------------------------------------------------------------
# Which Keras wrote the file: Keras 3 redefined hard_sigmoid, so detection needs to know


FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.mark.parametrize(
    ("path", "version"),
    [
        ("keras3_hard_sigmoid/model.keras", "3.15.1"),  # metadata.json
        ("keras3_hard_sigmoid/model.h5", "3.15.1"),  # root attribute keras_version
        ("keras3/model.h5", "3.15.1"),
        ("keras2_old_hard_sigmoid/model.h5", "2.21.0"),
        ("keras2_h5/model.h5", "2.21.0"),
    ],
)
def test_layer_configs_carry_the_keras_version_that_wrote_the_file(path, version):
    with open_store(FIXTURES / path) as store:
        configs = store.layer_configs()
    assert configs and {config.keras_version for config in configs.values()} == {version}


def test_a_dot_keras_without_metadata_names_no_version(tmp_path):
    source, stripped = FIXTURES / "keras3_hard_sigmoid" / "model.keras", tmp_path / "model.keras"
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(stripped, "w") as copy:
        for info in original.infolist():
            if info.filename != "metadata.json":
                copy.writestr(info, original.read(info))
    with open_keras_zip(stripped) as store:
        assert store.layer_configs()["enc"].keras_version is None


def test_an_h5_without_a_root_version_takes_the_weights_group_one(tmp_path):
    path = tmp_path / "model.h5"
    shutil.copyfile(FIXTURES / "keras3_hard_sigmoid" / "model.h5", path)
    with h5py.File(path, "r+") as f:
        del f.attrs["keras_version"]
        assert f["model_weights"].attrs["keras_version"] == "3.15.1"
    with open_keras_h5(path) as store:
        assert store.layer_configs()["enc"].keras_version == "3.15.1"
