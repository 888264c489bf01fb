"""What every reader returns, whatever the file format.

A reader opens a file and lists its tensors (names, shapes, dtypes) without reading
their values; `read(name)` reads one tensor's bytes and nothing else. Layer detection
and everything after it see only this interface.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..records import frozen_record, record
from ..schema import Setting

if TYPE_CHECKING:
    import numpy as np

__all__ = ["LayerConfig", "LayerHint", "Origin", "Setting", "TensorFlowSource", "TensorInfo", "TensorStore"]


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which made building
# the infos of a 20,000-tensor index cost 4 times as much.
@dataclass(slots=True)
class TensorInfo:
    """One stored tensor, described without reading its values.

    name:   the logical name used by the rest of lstm-inspect ("rnn/basic_lstm_cell/kernel",
            "enc/kernel" for a Keras layer named "enc").
    shape:  the full shape (for a partitioned TF variable, the reassembled shape).
    dtype:  a numpy dtype name: "float32", "float16", "bfloat16", "int64", "bool", "string", ...
    source: where it sits in the file, for messages ("model_weights/enc/enc/lstm_cell/kernel:0");
            equal to name when the file's own name is used.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    source: str = ""

    @property
    def size(self) -> int:
        return math.prod(self.shape)  # in C: a summary asks it of 100,000 tensors


@record
class LayerConfig:
    """What a model config (Keras) says about one layer, keyed by the layer's logical scope.

    class_name: "LSTM", "CuDNNLSTM", ... ; config: the layer's config dict as stored
    (units, activation, recurrent_activation, unit_forget_bias, ...).
    keras_version: the version of Keras that wrote the file ("2.15.0", "3.15.1"), None when the
    file does not say: the same activation name may mean another function in another version.
    """

    class_name: str
    config: dict[str, Any] = field(default_factory=dict)
    keras_version: str | None = None


@record
class LayerHint:
    """What a reader found beside the weights about one layer (a TF graph, a Keras config).

    scope:    the layer's scope as tensors are named ("rnn/basic_lstm_cell", "enc").
    cell:     the cell class the file names ("BasicLSTMCell", "LSTMBlockCell"), or None.
    settings: by name: "forget_bias", "activation", "recurrent_activation", "cell_clip",
              "proj_clip", "use_peepholes", "num_proj", ... (only what the file says).
    conflicts: settings the file says differently in different places (two steps of a static
              graph with different forget biases): one Setting per value, each naming its node;
              such a setting is not in `settings`.
    """

    scope: str
    cell: str | None = None
    settings: dict[str, Setting] = field(default_factory=dict)
    conflicts: dict[str, tuple[Setting, ...]] = field(default_factory=dict)


@frozen_record
class Origin:
    """Which framework can load the original file itself, and how: what a cross-check such as
    `verify` runs the file through, declared by the reader so that nothing else tests formats.

    loader: "keras-model" (Keras' own load_model builds the model from the file's config: Keras 3,
            or tf_keras for a file Keras 2 wrote) or "tensorflow" (TensorFlow reads it itself:
            tf.train.load_checkpoint, tf.saved_model.load, a GraphDef import).
    keras_version: the version of Keras that wrote the file, None when it does not say.
    suffix: the name ending the loader picks its reader by (".keras", ".h5"): load_model reads a
            file by its suffix, so a path without it is loaded from a copy that has it; "" when
            any name will do.
    """

    loader: str
    keras_version: str | None = None
    suffix: str = ""


@frozen_record
class TensorFlowSource:
    """Where TensorFlow's own readers find a file's tensors (what verify's tf-cell check loads).

    kind: "checkpoint" (tf.train.load_checkpoint(path)), "graph" (a GraphDef, `.pbtxt` as text:
          each tensor a Const node) or "saved_model" (a saved_model.pb whose graph holds the Consts).
    keys: per logical tensor name, the name TensorFlow knows it by (a checkpoint key, a node name).
    """

    kind: str
    path: str
    keys: dict[str, str]


class TensorStore(Protocol):
    """An open file of tensors. Use as a context manager or call close().

    A store may also offer (api.Checkpoint asks with getattr): `trainable_variables()`, the names
    of the model's variables as the file declares them (a TF graph's collection; None when it does
    not say), which detection never takes for optimizer slots; and `unsaid()`, why the file says
    nothing beside the weights where it says nothing ("no graph beside the checkpoint"), which the
    source of every setting assumed for want of it names; `tensorflow_source()`, a
    TensorFlowSource, where TensorFlow itself would read the tensors; and `advise(names)`, told
    which tensors are about to be read (a layer's, when its first is), so that a remote file
    fetches the bytes of those that lie together at once.
    """

    path: str
    # A name for people ("tf-checkpoint", "keras-h5", "keras-v3", "keras-weights-h5",
    # "tf-frozen-graph", "saved-model"), shown by `summary`; never a thing to branch on: what the
    # rest of lstm-inspect needs to know of a format is in the attributes below.
    format: str

    @property
    def origin(self) -> Origin | None:
        """Which framework can load the original file and how; None when none can (a Keras weights
        file without a model config, a hand-made store)."""
        ...

    @property
    def checksums(self) -> bool:
        """Whether the file carries checksums of its values (a TF checkpoint's CRC-32C, a .keras
        zip's CRC-32 of its weights); False where a damaged value reads as any other (HDF5, a GraphDef)."""
        ...

    def tensors(self) -> dict[str, TensorInfo]:
        """All tensors, in file order, keyed by logical name. Reads no tensor data."""
        ...

    def read(self, name: str) -> np.ndarray:
        """The full value of one tensor. Reads only that tensor's bytes."""
        ...

    def layer_configs(self) -> dict[str, LayerConfig]:
        """Per logical layer scope, what the file's model config says; {} when it has none."""
        ...

    def layer_hints(self) -> dict[str, LayerHint]:
        """Per layer scope, what the file says beside the weights (a TF graph's forget bias and
        activations, ...); {} when it says nothing."""
        ...

    def files(self) -> list[str]:
        """The paths of the files this store reads or belongs with, which an output must never replace."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> TensorStore: ...

    def __exit__(self, *exc: object) -> None: ...
