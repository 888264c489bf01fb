"""Every framework's LSTM weight layout, declared once, as data.

The project's canonical gate names are input, forget, cell (the candidate: TF's j, Keras'
c, PyTorch's g) and output. A layout says in which order a framework stores the four
gate blocks, whether input and recurrent weights share one fused kernel, how many bias
vectors it keeps and what it adds at run time. Adding a framework is adding an entry.
Sources are named per entry; ../shared/LAYOUTS.md collects them.
"""

from __future__ import annotations

from dataclasses import dataclass

GATES: tuple[str, ...] = ("input", "forget", "cell", "output")
PARTS: tuple[str, ...] = ("kernel", "recurrent", "bias", "recurrent_bias", "peephole")
# Peepholes exist for these gates only (LSTMCell w_i_diag, w_f_diag, w_o_diag).
PEEPHOLE_GATES: tuple[str, ...] = ("input", "forget", "output")

GATE_ALIASES: dict[str, str] = {
    "input": "input",
    "i": "input",
    "forget": "forget",
    "f": "forget",
    "cell": "cell",
    "c": "cell",
    "j": "cell",
    "g": "cell",
    "candidate": "cell",
    "output": "output",
    "o": "output",
}


@dataclass(frozen=True)
class Layout:
    """How one framework stores an LSTM layer.

    letters:  the framework's own gate letters in stored column order ("ijfo").
    order:    the same order in canonical gate names.
    fused_kernel: input and recurrent weights are one kernel, rows = [input; recurrent]
              (TF1 cells compute concat([x, h]) @ kernel).
    biases:   1, or 2 when an input-side and a recurrent-side bias are both stored (cuDNN).
    cudnn_kernel: each input-kernel gate block is stored in cuDNN memory order and must be
              converted (Keras 2 CuDNNLSTM, see slicer).
    per_gate: one array per gate and part, no fused tensor (Keras 1).
    forget_bias: what the cell adds to the forget gate at run time; never stored.
    """

    key: str
    framework: str
    letters: str
    fused_kernel: bool = False
    biases: int = 1
    cudnn_kernel: bool = False
    per_gate: bool = False
    forget_bias: float = 0.0

    @property
    def order(self) -> tuple[str, ...]:
        return tuple(GATE_ALIASES[letter] for letter in self.letters)

    def column(self, gate: str) -> int:
        """Position of a canonical gate among the stored blocks."""
        return self.order.index(gate)


LAYOUTS: dict[str, Layout] = {
    layout.key: layout
    for layout in (
        # rnn_cell_impl.py BasicLSTMCell/LSTMCell.call: i, j, f, o = split(concat([x, h]) @ kernel + bias);
        # forget_bias=1.0 is added in call(). LSTMBlockCell/LSTMBlockFusedCell (lstm_ops.py) match.
        Layout("tf1", "tensorflow", "ijfo", fused_kernel=True, forget_bias=1.0),
        # cudnn_rnn_ops.py CudnnCompatibleLSTMCell: the same kernel layout, forget_bias=0.0.
        Layout("tf1-cudnn-compatible", "tensorflow", "ijfo", fused_kernel=True, forget_bias=0.0),
        # keras/src/layers/rnn/lstm.py and tf_keras: i, f, c, o; unit_forget_bias only initialises.
        Layout("keras", "keras", "ifco"),
        # tf_keras cudnn_recurrent.py CuDNNLSTM: bias = input-side + recurrent-side (8u);
        # kernels in cuDNN order (hdf5_format.py _convert_rnn_weights).
        Layout("keras-cudnn", "keras", "ifco", biases=2, cudnn_kernel=True),
        # Keras 1 recurrent.py LSTM: W_i, U_i, b_i, W_c, ... one array per gate; listed i, c, f, o.
        Layout("keras1", "keras", "icfo", per_gate=True),
        # torch/nn/modules/rnn.py: weight_ih (4H, in) rows i, f, g, o; bias_ih + bias_hh.
        Layout("pytorch", "pytorch", "ifgo", biases=2),
        # onnx/defs/rnn/defs.cc LSTM: W [dirs, 4H, in] in i, o, f, c; B = [Wb, Rb].
        Layout("onnx", "onnx", "iofc", biases=2),
    )
}


def canonical_gate(name: str) -> str | None:
    """The canonical name for a gate name or alias (case-insensitive), or None."""
    return GATE_ALIASES.get(name.strip().lower())
