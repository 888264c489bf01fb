"""The native TF checkpoint reader against TensorFlow's own, bit for bit, on checkpoints
TensorFlow writes; then one test per way a checkpoint can be broken."""

from __future__ import annotations

import os
import shutil
import struct
import tempfile

import ml_dtypes
import numpy as np
import pytest
from crc32c import crc32c
from hypothesis import given, settings
from hypothesis import strategies as st

from lstm_inspect.errors import CorruptFile, FileNotFound, UnknownName, UnsupportedFormat
from lstm_inspect.readers import open_store
from lstm_inspect.readers.tf_backend import open_with_tensorflow
from lstm_inspect.readers.tf_bundle import open_checkpoint, resolve_prefix

NUMERIC = [
    "float16", "float32", "float64", "bfloat16", "int8", "int16", "int32", "int64", "uint8", "uint16",
    "uint32", "uint64", "bool", "complex64", "complex128", "float8_e5m2", "float8_e4m3fn",
]  # fmt: skip


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


def make_value(dtype: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    if dtype == "string":
        pool = np.array([b"", b"a", b"\x00\xff", "größe".encode(), b"x" * 300], dtype=object)
        return np.array(pool[rng.integers(0, len(pool), shape)], dtype=object)
    if dtype == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    if dtype.startswith(("int", "uint")):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    values = rng.standard_normal(shape) * 100
    if dtype.startswith("complex"):
        values = values + 1j * rng.standard_normal(shape)
    numpy_dtype = getattr(ml_dtypes, dtype) if dtype in ("bfloat16", "float8_e5m2", "float8_e4m3fn") else dtype
    return values.astype(numpy_dtype)


def assert_identical(got: np.ndarray, want: object) -> None:
    # TF returns a scalar as a numpy scalar, or as bare bytes for a string.
    want = np.asarray(want, dtype=object if isinstance(want, bytes) else None)
    assert isinstance(got, np.ndarray)
    assert (got.dtype, got.shape) == (want.dtype, want.shape)
    if got.dtype == object:
        assert all(type(v) is bytes for v in got.flat) and got.tolist() == want.tolist()
    else:
        assert got.tobytes() == want.tobytes()


# TF reassembles partitioned tensors of these dtypes only (GetSliceValue in tensor_bundle.cc).
TF_SLICE_DTYPES = set("float32 float64 int32 uint8 int16 int8 complex64 complex128 int64 bool bfloat16".split())


def assert_matches_tensorflow(tf, path: str, partitioned: frozenset[str] = frozenset()) -> dict:
    """Native listing and values equal TensorFlow's; returns the native tensors()."""
    reader = tf.train.load_checkpoint(resolve_prefix(path))
    dtypes = reader.get_variable_to_dtype_map()
    with open_checkpoint(path) as ckpt:
        infos = ckpt.tensors()
        assert [(i.name, list(i.shape)) for i in infos.values()] == tf.train.list_variables(resolve_prefix(path))
        for name, info in infos.items():
            got = ckpt.read(name)
            if name not in partitioned or info.dtype in TF_SLICE_DTYPES:
                assert_identical(got, reader.get_tensor(name))
            assert info.source == name
            assert info.dtype == ("string" if dtypes[name] == tf.string else got.dtype.name)
    return infos


# --- checkpoints written by TensorFlow -------------------------------------------------------


@pytest.fixture(scope="module")
def tf2_checkpoint(tf, tmp_path_factory) -> tuple[str, dict[str, np.ndarray]]:
    """tf.train.Checkpoint of every numeric dtype and strings, in several shapes and names."""
    rng = np.random.default_rng(0)
    values = {}
    for dtype in [*NUMERIC, "string"]:
        for shape in [(), (0,), (3,), (2, 0, 4), (4, 3), (2, 3, 2, 2)]:
            values[f"{dtype}_{'x'.join(map(str, shape)) or 'scalar'}"] = make_value(dtype, shape, rng)
    values["größe/ünïcode"] = make_value("float32", (5,), rng)
    values["special_floats"] = np.array([np.nan, np.inf, -np.inf, -0.0, 1e-45], dtype=np.float32)
    variables = {
        name: tf.Variable(tf.constant(v, dtype=tf.string if v.dtype == object else None)) for name, v in values.items()
    }
    prefix = tf.train.Checkpoint(**variables).write(str(tmp_path_factory.mktemp("tf2") / "ckpt"))
    return prefix, values


def test_tf2_checkpoint_matches_tensorflow_bit_for_bit(tf, tf2_checkpoint):
    prefix, values = tf2_checkpoint
    infos = assert_matches_tensorflow(tf, prefix)
    assert "_CHECKPOINTABLE_OBJECT_GRAPH" in infos
    with open_checkpoint(prefix) as ckpt:
        for name, value in values.items():
            key = name.replace("/", ".S") + "/.ATTRIBUTES/VARIABLE_VALUE"  # TF2 escapes "/" in names
            assert_identical(ckpt.read(key), value)
            assert infos[key].shape == value.shape


def test_tensorflow_backend_lists_and_reads_the_same(tf2_checkpoint):
    prefix, _ = tf2_checkpoint
    with open_checkpoint(prefix) as native, open_with_tensorflow(prefix) as backend:
        assert native.tensors() == backend.tensors()
        for name in native.tensors():
            assert_identical(native.read(name), backend.read(name))
        assert native.format == backend.format == "tf-checkpoint"
        assert native.layer_configs() == backend.layer_configs() == {}


@pytest.fixture(scope="module")
def tf1_checkpoints(tf, tmp_path_factory) -> dict[str, str]:
    """Graph-mode Savers: partitioned variables, a two-device sharded save, and a V1 file."""
    v1 = tf.compat.v1
    root = tmp_path_factory.mktemp("tf1")
    graph = tf.Graph()
    with graph.as_default():
        with tf.device("/cpu:0"):
            v1.get_variable("rnn/lstm_cell/kernel", [7, 12], partitioner=v1.fixed_size_partitioner(3))
            v1.get_variable("rnn/lstm_cell/bias", [12], tf.float64, partitioner=v1.fixed_size_partitioner(2))
        with tf.device("/cpu:1"):
            v1.get_variable("wide", [300, 2], tf.bfloat16, partitioner=v1.fixed_size_partitioner(2, axis=0))
            v1.get_variable(
                "cols",
                [4, 9],
                tf.int32,
                v1.random_uniform_initializer(-1000, 1000, dtype=tf.int32),
                partitioner=v1.fixed_size_partitioner(3, axis=1),
            )
            plain = v1.get_variable("plain", [3], initializer=v1.ones_initializer())
        assert "rnn/lstm_cell/kernel/part_2:0" in [v.name for v in v1.global_variables()]
        paths = {}
        with v1.Session(graph=graph, config=v1.ConfigProto(device_count={"CPU": 2})) as sess:
            sess.run(v1.global_variables_initializer())
            for kind, saver in [
                ("single", v1.train.Saver()),
                ("sharded", v1.train.Saver(sharded=True)),
                ("v1", v1.train.Saver([plain], write_version=v1.train.SaverDef.V1)),
            ]:
                os.makedirs(root / kind)
                paths[kind] = saver.save(sess, str(root / kind / "model.ckpt"), write_meta_graph=False)
    return paths


def test_partitioned_variables_are_listed_once_and_reassembled(tf, tf1_checkpoints):
    infos = assert_matches_tensorflow(tf, tf1_checkpoints["single"])
    assert list(infos) == ["cols", "plain", "rnn/lstm_cell/bias", "rnn/lstm_cell/kernel", "wide"]
    assert infos["wide"].shape == (300, 2) and infos["wide"].dtype == "bfloat16"


def test_sharded_saver_with_partitioned_variables(tf, tf1_checkpoints):
    prefix = tf1_checkpoints["sharded"]
    assert os.path.exists(prefix + ".data-00001-of-00002")
    assert_matches_tensorflow(tf, prefix)


def test_max_shard_size_policy_spreads_tensors_over_shards(tf, tmp_path):
    variables = {f"v{i}": tf.Variable(np.arange(64, dtype=np.float32) * i) for i in range(6)}
    policy = tf.train.experimental.MaxShardSizePolicy(max_shard_size=300)
    options = tf.train.CheckpointOptions(experimental_sharding_callback=policy)
    prefix = tf.train.Checkpoint(**variables).write(str(tmp_path / "ckpt"), options=options)
    assert len([f for f in os.listdir(tmp_path) if ".data-" in f]) > 2
    assert len(assert_matches_tensorflow(tf, prefix)) == 7


@pytest.fixture(scope="module")
def many_tensors(tf, tmp_path_factory) -> str:
    prefix = str(tmp_path_factory.mktemp("many") / "ckpt")
    # Hash-like names defeat the index's prefix compression, so the index spans several blocks.
    names = [f"{(i * 2654435761) % 2**32:08x}/layer_{i}/" + "w" * 100 for i in range(6000)]
    tf.raw_ops.SaveV2(
        prefix=prefix,
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(np.arange(i % 5, dtype=np.int16) + i) for i in range(len(names))],
    )
    return prefix


def test_index_with_several_data_blocks(tf, many_tensors):
    # TF's table blocks hold about 256 KiB (tensorflow/core/lib/io/table_options.h).
    assert os.path.getsize(many_tensors + ".index") > 2 * 262144
    reader = tf.train.load_checkpoint(many_tensors)
    with open_checkpoint(many_tensors) as ckpt:
        infos = ckpt.tensors()
        assert sorted(infos) == sorted(reader.get_variable_to_shape_map())
        for name in list(infos)[::250]:
            assert_identical(ckpt.read(name), reader.get_tensor(name))


# --- random checkpoints --------------------------------------------------------------------


@st.composite
def tensor_specs(draw):
    """(dtype, shape, pieces): pieces are (slice spec per dimension, shard) tuples."""
    dtype = draw(st.sampled_from([*NUMERIC, "string"]))
    shape = tuple(draw(st.lists(st.integers(0, 4), max_size=3)))
    if shape and draw(st.booleans()):
        shape = (draw(st.integers(65, 300)),) + shape[1:]  # offsets past 64 take two bytes in slice keys
    pieces = [(None, draw(st.integers(0, 2)))]
    partition_axes = [axis for axis, dim in enumerate(shape) if dim >= 2]
    if partition_axes and draw(st.booleans()):
        axis = draw(st.sampled_from(partition_axes))
        cuts = sorted(draw(st.sets(st.integers(1, shape[axis] - 1), min_size=1, max_size=3)))
        pieces = []
        for start, stop in zip([0, *cuts], [*cuts, shape[axis]]):
            spec = ["-"] * len(shape)
            spec[axis] = f"{start},{stop - start}"
            pieces.append(((axis, start, stop, ":".join(spec)), draw(st.integers(0, 2))))
    return dtype, shape, pieces


@settings(max_examples=25, deadline=None)
@given(specs=st.lists(tensor_specs(), min_size=1, max_size=4), seed=st.integers(0, 2**32 - 1))
def test_random_checkpoints_round_trip(tf, specs, seed):
    rng = np.random.default_rng(seed)
    names = ["weights/ä", "b", "a/b/c", "Z"]
    values = {names[i]: make_value(dtype, shape, rng) for i, (dtype, shape, _) in enumerate(specs)}
    shards: dict[int, tuple[list, list, list]] = {}
    for (name, value), (_, shape, pieces) in zip(values.items(), specs):
        for piece, shard in pieces:
            saved_names, slice_specs, tensors = shards.setdefault(shard, ([], [], []))
            part = value
            if piece is not None:
                axis, start, stop, spec = piece
                part = np.take(value, range(start, stop), axis=axis)
            saved_names.append(name)
            slice_specs.append("" if piece is None else " ".join(map(str, shape)) + " " + spec)
            tensors.append(tf.constant(part, dtype=tf.string if value.dtype == object else None))
    with tempfile.TemporaryDirectory() as tmp:
        parts = []
        for shard, (saved_names, slice_specs, tensors) in sorted(shards.items()):
            parts.append(os.path.join(tmp, f"part{shard}"))
            tf.raw_ops.SaveV2(prefix=parts[-1], tensor_names=saved_names, shape_and_slices=slice_specs, tensors=tensors)
        prefix = os.path.join(tmp, "merged")
        tf.raw_ops.MergeV2Checkpoints(checkpoint_prefixes=parts, destination_prefix=prefix)
        partitioned = frozenset(name for name, (_, _, pieces) in zip(values, specs) if len(pieces) > 1)
        infos = assert_matches_tensorflow(tf, prefix, partitioned)
        assert sorted(infos) == sorted(values)
        with open_checkpoint(prefix) as ckpt:
            for name, value in values.items():
                assert_identical(ckpt.read(name), value)


# --- how the checkpoint is named ------------------------------------------------------------


@pytest.fixture
def small_checkpoint(tf, tmp_path) -> str:
    """A directory with a `checkpoint` state file, as tf.train.CheckpointManager leaves it."""
    ckpt = tf.train.Checkpoint(kernel=tf.Variable(np.arange(12, dtype=np.float32).reshape(3, 4)), step=tf.Variable(7))
    return tf.train.CheckpointManager(ckpt, str(tmp_path / "run"), max_to_keep=1, checkpoint_name="mödel").save()


def test_path_may_be_prefix_index_data_file_or_directory(small_checkpoint):
    directory = os.path.dirname(small_checkpoint)
    for path in [small_checkpoint, small_checkpoint + ".index", small_checkpoint + ".data-00000-of-00001", directory]:
        with open_store(path) as ckpt:
            assert ckpt.path == small_checkpoint
            assert ckpt.read("kernel/.ATTRIBUTES/VARIABLE_VALUE").sum() == 66


def test_state_file_with_escaped_or_absolute_paths(small_checkpoint, tmp_path):
    directory = os.path.dirname(small_checkpoint)
    state = os.path.join(directory, "checkpoint")
    # Text-format protos may escape non-ASCII bytes as octal; "ö" is \303\266 in UTF-8.
    with open(state, "w") as f:
        f.write('model_checkpoint_path: "m\\303\\266del-1"\n')
    assert resolve_prefix(directory) == small_checkpoint
    # A moved directory still names where it was written; the file next to the state file wins.
    moved = shutil.copytree(directory, tmp_path / "moved")
    with open(moved / "checkpoint", "w") as f:
        f.write(f'model_checkpoint_path: "{small_checkpoint}"\n')
    shutil.rmtree(directory)
    assert resolve_prefix(moved) == str(moved / "mödel-1")


def test_missing_path(tmp_path):
    with pytest.raises(FileNotFound, match="no such file or checkpoint prefix"):
        open_checkpoint(tmp_path / "nothing")


def test_directory_without_state_file_lists_prefixes(small_checkpoint):
    directory = os.path.dirname(small_checkpoint)
    os.remove(os.path.join(directory, "checkpoint"))
    with pytest.raises(FileNotFound, match="no `checkpoint` state file.*mödel-1"):
        open_checkpoint(directory)


def test_state_file_naming_a_missing_prefix(small_checkpoint):
    directory = os.path.dirname(small_checkpoint)
    with open(os.path.join(directory, "checkpoint"), "w") as f:
        f.write('model_checkpoint_path: "gone-3"\n')
    with pytest.raises(FileNotFound, match="names checkpoint 'gone-3'"):
        open_checkpoint(directory)


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(UnsupportedFormat, match="not a TensorFlow checkpoint"):
        open_store(path)


def test_v1_checkpoint_is_refused_clearly(tf1_checkpoints):
    with pytest.raises(UnsupportedFormat, match="V1 TensorFlow checkpoint"):
        open_checkpoint(os.path.dirname(tf1_checkpoints["v1"]))


def test_unknown_tensor_name(small_checkpoint):
    with open_checkpoint(small_checkpoint) as ckpt, pytest.raises(UnknownName, match="no tensor named 'kernel'"):
        ckpt.read("kernel")


# --- damaged files -----------------------------------------------------------------------------


def patch(path: str, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def flip(path: str, offset: int) -> None:
    with open(path, "rb") as f:
        f.seek(offset)
        byte = f.read(1)[0]
    patch(path, offset, bytes([byte ^ 0x40]))


def test_missing_shard_still_lists_and_names_the_file(tf, tmp_path):
    variables = {f"v{i}": tf.Variable(np.full(64, i, dtype=np.float32)) for i in range(4)}
    options = tf.train.CheckpointOptions(
        experimental_sharding_callback=tf.train.experimental.MaxShardSizePolicy(max_shard_size=300)
    )
    prefix = tf.train.Checkpoint(**variables).write(str(tmp_path / "ckpt"), options=options)
    shards = sorted(f for f in os.listdir(tmp_path) if ".data-" in f)
    os.remove(tmp_path / shards[1])
    with open_checkpoint(prefix) as ckpt:
        assert len(ckpt.tensors()) == 5
        outcomes = []
        for name in ckpt.tensors():
            try:
                ckpt.read(name)
                outcomes.append("read")
            except FileNotFound as e:
                assert shards[1] in str(e) and "copy every" in str(e)
                outcomes.append("missing")
    assert "read" in outcomes and "missing" in outcomes


def test_truncated_index(small_checkpoint):
    index = small_checkpoint + ".index"
    os.truncate(index, os.path.getsize(index) - 10)
    with pytest.raises(CorruptFile, match="truncated"):
        open_checkpoint(small_checkpoint)


def test_wrong_magic(small_checkpoint):
    flip(small_checkpoint + ".index", os.path.getsize(small_checkpoint + ".index") - 1)
    with pytest.raises(CorruptFile, match="bad magic"):
        open_checkpoint(small_checkpoint)


def test_flipped_byte_in_index_block(small_checkpoint):
    flip(small_checkpoint + ".index", 20)
    with pytest.raises(CorruptFile, match="CRC-32C"):
        open_checkpoint(small_checkpoint)


def test_flipped_byte_in_data(small_checkpoint):
    name = "kernel/.ATTRIBUTES/VARIABLE_VALUE"
    data = small_checkpoint + ".data-00000-of-00001"
    with open(data, "rb") as f:
        flip(data, f.read().index(np.arange(12, dtype=np.float32).tobytes()) + 5)
    with open_checkpoint(small_checkpoint) as ckpt, pytest.raises(CorruptFile, match="fails its CRC-32C"):
        ckpt.read(name)
    with open_checkpoint(small_checkpoint, verify=False) as ckpt:
        changed = ckpt.read(name) != np.arange(12, dtype=np.float32).reshape(3, 4)
        assert changed.sum() == 1


def test_truncated_data_file(small_checkpoint):
    os.truncate(small_checkpoint + ".data-00000-of-00001", 10)
    with open_checkpoint(small_checkpoint, verify=False) as ckpt, pytest.raises(CorruptFile, match="-byte file"):
        for name in ckpt.tensors():
            ckpt.read(name)


def test_flipped_string_length_checksum(tf, tmp_path):
    prefix = str(tmp_path / "s")
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=["s"], shape_and_slices=[""], tensors=[tf.constant([b"ab", b"c"])])
    flip(prefix + ".data-00000-of-00001", 2)  # two one-byte varint lengths, then their checksum
    with open_checkpoint(prefix) as ckpt, pytest.raises(CorruptFile, match="string lengths fail"):
        ckpt.read("s")
    with open_checkpoint(prefix, verify=False) as ckpt:
        assert ckpt.read("s").tolist() == [b"ab", b"c"]


# --- hand-made index files, for what TensorFlow never writes ------------------------------------

MAGIC = 0xDB4775248B80FB57


def varint(n: int) -> bytes:
    n &= 2**64 - 1
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def pb(number: int, value: int | bytes) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    return varint(number << 3 | 2) + varint(len(value)) + value


def mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def entry(dtype: int, shape: tuple[int, ...], size: int, data: bytes = b"", **fields: int) -> bytes:
    dims = b"".join(pb(2, pb(1, d)) for d in shape)
    out = pb(1, dtype) + pb(2, dims) + pb(3, fields.get("shard_id", 0)) + pb(4, fields.get("offset", 0))
    return out + pb(5, size) + varint(6 << 3 | 5) + struct.pack("<I", mask(crc32c(data)))


def write_bundle(prefix: str, entries: dict[bytes, bytes], data: bytes = b"", compression: int = 0, **header: int):
    """One data block, no prefix compression, one restart point: the simplest valid table."""
    head = pb(1, header.get("num_shards", 1)) + pb(2, header.get("endianness", 0)) + pb(3, pb(1, 1))
    records = [(b"", head), *sorted(entries.items())]
    out = bytearray()

    def block(items: list[tuple[bytes, bytes]]) -> bytes:
        body = b"".join(varint(0) + varint(len(k)) + varint(len(v)) + k + v for k, v in items)
        contents = body + struct.pack("<II", 0, 1) + bytes([compression])
        handle = varint(len(out)) + varint(len(contents) - 1)
        out.extend(contents + struct.pack("<I", mask(crc32c(contents))))
        return handle

    data_handle = block(records)
    handles = block([]) + block([(b"\xff", data_handle)])  # the index key is a separator, not a name
    out.extend(handles.ljust(40, b"\0") + struct.pack("<Q", MAGIC))
    with open(prefix + ".index", "wb") as f:
        f.write(out)
    with open(prefix + ".data-00000-of-00001", "wb") as f:
        f.write(data)


FLOATS = np.array([1.5, -2.0, 3.25], dtype=np.float32).tobytes()


def test_hand_made_bundle_reads(tmp_path):
    prefix = str(tmp_path / "h")
    write_bundle(prefix, {b"w": entry(1, (3,), 12, FLOATS), b"ref": entry(101, (3,), 12, FLOATS)}, FLOATS)
    with open_checkpoint(prefix) as ckpt:
        assert [(i.name, i.shape, i.dtype) for i in ckpt.tensors().values()] == [
            ("ref", (3,), "float32"),
            ("w", (3,), "float32"),
        ]
        assert ckpt.read("w").tolist() == ckpt.read("ref").tolist() == [1.5, -2.0, 3.25]


def test_size_disagreeing_with_dtype_and_shape(tmp_path):
    write_bundle(str(tmp_path / "h"), {b"w": entry(1, (4,), 12, FLOATS)}, FLOATS)
    with open_checkpoint(tmp_path / "h") as ckpt, pytest.raises(CorruptFile, match="stored as 12 bytes.*needs 16"):
        ckpt.read("w")


def test_unknown_dtype_lists_but_does_not_read(tmp_path):
    write_bundle(str(tmp_path / "h"), {b"w": entry(99, (3,), 12, FLOATS)}, FLOATS)
    with open_checkpoint(tmp_path / "h") as ckpt:
        assert ckpt.tensors()["w"].dtype == "unknown-99"
        with pytest.raises(UnsupportedFormat, match="dtype unknown-99"):
            ckpt.read("w")


def test_big_endian_bundle_is_refused(tmp_path):
    write_bundle(str(tmp_path / "h"), {}, endianness=1)
    with pytest.raises(UnsupportedFormat, match="big-endian"):
        open_checkpoint(tmp_path / "h")


def test_snappy_blocks_are_refused(tmp_path):
    write_bundle(str(tmp_path / "h"), {}, compression=1)
    with pytest.raises(UnsupportedFormat, match="Snappy"):
        open_checkpoint(tmp_path / "h")


@pytest.mark.parametrize(
    "entries, problem",
    [
        ({b"w": entry(1, (3,), 12, offset=8)}, "needs bytes 8..20 of a 12-byte file"),
        ({b"w": entry(1, (3,), 12, shard_id=2)}, "shard 2, past the last one"),
        ({b"w": entry(1, (3,), 0) + pb(7, pb(1, pb(1, 0) + pb(2, 1)))}, "piece 'w \\[0,1\\]' .* is missing"),
    ],
)
def test_inconsistent_entries(tmp_path, entries, problem):
    write_bundle(str(tmp_path / "h"), entries, FLOATS)
    with open_checkpoint(tmp_path / "h") as ckpt, pytest.raises(CorruptFile, match=problem):
        ckpt.read("w")


def test_unknown_rank_is_corrupt(tmp_path):
    write_bundle(str(tmp_path / "h"), {b"w": pb(1, 1) + pb(2, pb(3, 1))})
    with pytest.raises(CorruptFile, match="unknown rank"):
        open_checkpoint(tmp_path / "h")


@pytest.mark.parametrize("size", [0, 1, 7, 4096, 32 * 1024, 32 * 1024 + 1, 100_000])
def test_python_and_c_crc32c_agree(size):
    # Small index blocks are checked by the Python CRC-32C, everything else by the C package.
    from lstm_inspect.readers.tf_bundle import _crc32c

    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    for small_index in (True, False):
        assert _crc32c(data, small_index=small_index) == crc32c(data)
        half = size // 2
        assert _crc32c(data[half:], _crc32c(data[:half], small_index=small_index), small_index=small_index) == crc32c(
            data
        )
