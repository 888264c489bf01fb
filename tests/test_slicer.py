"""Gate slicing on hand-built tensors: each gate block lands where its layout says."""

from __future__ import annotations

import numpy as np

from lstm_inspect.api import Checkpoint
from lstm_inspect.readers.base import TensorInfo


class MemoryStore:
    """A TensorStore over a dict of arrays, recording what was read."""

    path = "memory"
    format = "memory"
    origin = None  # no framework loads it
    checksums = False

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays
        self.reads: list[str] = []

    def tensors(self):
        return {k: TensorInfo(k, v.shape, str(v.dtype), k) for k, v in self.arrays.items()}

    def read(self, name):
        self.reads.append(name)
        return self.arrays[name]

    def layer_configs(self):
        return {}

    def layer_hints(self):
        return {}

    def files(self):
        return []

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


rng = np.random.default_rng(0)
IN, U, P = 3, 4, 2


def blocks(rows: int) -> dict[str, np.ndarray]:
    return {g: rng.normal(size=(rows, U)).astype(np.float32) for g in ("input", "forget", "cell", "output")}


def test_tf1_fused_kernel_ijfo_with_projection_and_peepholes():
    wx, wh = blocks(IN), blocks(P)
    b = {g: rng.normal(size=U).astype(np.float32) for g in wx}
    order = ("input", "cell", "forget", "output")
    kernel = np.concatenate([np.concatenate([wx[g], wh[g]], axis=0) for g in order], axis=1)
    store = MemoryStore(
        {
            "rnn/lstm_cell/kernel": kernel,
            "rnn/lstm_cell/bias": np.concatenate([b[g] for g in order]),
            "rnn/lstm_cell/w_i_diag": np.full(U, 1.0, np.float32),
            "rnn/lstm_cell/w_f_diag": np.full(U, 2.0, np.float32),
            "rnn/lstm_cell/w_o_diag": np.full(U, 3.0, np.float32),
            "rnn/lstm_cell/projection/kernel": np.ones((U, P), np.float32),
            "other/kernel": np.zeros((2, 2), np.float32),
        }
    )
    layer = Checkpoint(store).layer("rnn/lstm_cell")
    for gate in order:
        got = layer.gate(gate)
        np.testing.assert_array_equal(got.kernel, wx[gate])
        np.testing.assert_array_equal(got.recurrent, wh[gate])
        np.testing.assert_array_equal(got.bias, b[gate])
    assert layer.gate("f").peephole[0] == 2.0 and layer.gate("cell").peephole is None
    sources = {(blk.gate, blk.part): blk.source for blk in layer.blocks()}
    assert sources["forget", "kernel"] == "rnn/lstm_cell/kernel[0:3, 8:12]"
    assert sources["forget", "recurrent"] == "rnn/lstm_cell/kernel[3:5, 8:12]"
    assert layer.projection.shape == (U, P)
    assert "other/kernel" not in store.reads


def test_keras_cudnn_bias_halves_and_kernel_conversion():
    kernel = rng.normal(size=(IN, 4 * U)).astype(np.float32)
    recurrent = rng.normal(size=(U, 4 * U)).astype(np.float32)
    bias = np.arange(8 * U, dtype=np.float32)
    layer = Checkpoint(MemoryStore({"c/kernel": kernel, "c/recurrent_kernel": recurrent, "c/bias": bias})).layer("c")
    forget = layer.gate("forget")  # second block in i, f, c, o
    np.testing.assert_array_equal(forget.bias, bias[U : 2 * U])
    np.testing.assert_array_equal(forget.recurrent_bias, bias[4 * U + U : 4 * U + 2 * U])
    np.testing.assert_array_equal(forget.recurrent, recurrent[:, U : 2 * U].T)
    block = kernel[:, U : 2 * U]
    np.testing.assert_array_equal(forget.kernel, block.T.reshape(block.shape, order="F"))


def test_a_view_is_the_block_read_without_a_copy():
    kernel = rng.normal(size=(IN + U, 4 * U)).astype(np.float32)
    store = MemoryStore({"rnn/lstm_cell/kernel": kernel, "rnn/lstm_cell/bias": np.arange(4 * U, dtype=np.float32)})
    layer = Checkpoint(store).layer("rnn/lstm_cell")
    for block in layer.blocks():
        view = layer.view(block)
        np.testing.assert_array_equal(view, layer.read(block))
        assert np.shares_memory(view, store.arrays[block.tensor]), block.key
    assert store.reads == ["rnn/lstm_cell/kernel", "rnn/lstm_cell/bias"]  # each tensor read once


def test_bfloat16_blocks_export_as_exact_float32(tmp_path):
    import ml_dtypes

    from lstm_inspect.export import gate_arrays
    from lstm_inspect.writers.npz import write_npz

    kernel = rng.normal(size=(IN + U, 4 * U)).astype(ml_dtypes.bfloat16)
    store = MemoryStore({"rnn/lstm_cell/kernel": kernel, "rnn/lstm_cell/bias": np.zeros(4 * U, ml_dtypes.bfloat16)})
    out = tmp_path / "g.npz"
    write_npz(str(out), gate_arrays(Checkpoint(store)))
    forget = np.load(out)["rnn/lstm_cell/forget/kernel"]
    assert forget.dtype == np.float32
    np.testing.assert_array_equal(forget, kernel[:IN, 2 * U : 3 * U].astype(np.float32))


def test_summary_of_many_layers_stays_plain_and_complete():
    import io

    from rich.console import Console

    from lstm_inspect.render import show
    from lstm_inspect.results import summarize

    arrays = {}
    for n in range(250):
        arrays[f"enc/cell_{n}/lstm_cell/kernel"] = np.zeros((IN + U, 4 * U), np.float32)
        arrays[f"enc/cell_{n}/lstm_cell/bias"] = np.zeros(4 * U, np.float32)
    for n in range(150):
        arrays[f"heads/h{n}/kernel"] = np.zeros((2, 3), np.float32)
    # Narrower than a row: each row still reaches the output whole, its last column included.
    console = Console(file=io.StringIO(), width=60)
    show(summarize(Checkpoint(MemoryStore(arrays))), console=console)
    text = console.file.getvalue()
    rows = [line for line in text.splitlines() if line.startswith("enc/cell_") and "LSTMCell" in line]
    assert [row.split()[0] for row in rows] == [f"enc/cell_{n}/lstm_cell" for n in range(250)]
    assert all(row.endswith(f"{(IN + U) * 4 * U + 4 * U:,}") for row in rows)
    assert "(the first 50 layers explained" in text
    assert "heads" in text and "150" in text and "heads/h7/kernel" not in text
    assert "Total model parameters: " + f"{250 * ((IN + U) * 4 * U + 4 * U) + 150 * 6:,}" in text


def test_names_print_as_stored(capsys, monkeypatch):
    from lstm_inspect.render import show
    from lstm_inspect.results import summarize

    monkeypatch.delenv("COLUMNS")
    scope = "enc[bold]x:fire:/lstm_cell"  # rich markup and an emoji code, in a name
    arrays = {f"{scope}/kernel": np.zeros((IN + U, 4 * U), np.float32), f"{scope}/bias": np.zeros(4 * U, np.float32)}
    arrays["head[red]/kernel"] = np.zeros((2, 3), np.float32)
    show(summarize(Checkpoint(MemoryStore(arrays))))
    out = capsys.readouterr().out
    assert f"│ {scope} " in out and "head[red]/kernel" in out
