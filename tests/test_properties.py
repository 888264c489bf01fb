"""Random checkpoints at scale, read bit for bit as tf.train.load_checkpoint reads them.

tests/test_tf_bundle.py checks every dtype, rank and partitioning on a few tensors at a time. Here
each example is one checkpoint of 8,000 to 12,000 tensors, so that its index spans several table
blocks, with unicode, slashes and shared prefixes in the names, scalars and 0-sized tensors among
them, some variables partitioned, and everything spread over one to four data shards.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from lstm_inspect.readers.tf_bundle import open_checkpoint

from .test_tf_bundle import NUMERIC, assert_identical, assert_matches_tensorflow, make_value

# Name parts: 2-, 3- and 4-byte UTF-8, TF2's escapes, separators, digits that sort unlike numbers.
NAME_PARTS = [
    "größe",
    "重み",
    "ñ",
    "𝔘",
    "🙂",
    "kernel",
    "bias",
    "lstm_cell",
    ".S",
    ".ATTRIBUTES",
    "_",
    "-",
    "0",
    "12",
    "9",
]
TABLE_BLOCK = 262144  # TF's table block size (tensorflow/core/lib/io/table_options.h)


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


def random_names(rng: np.random.Generator, count: int) -> list[str]:
    """Unique names: a scope shared by many (so keys share prefixes across block boundaries),
    one to three slash-separated parts, sometimes a name that is a prefix of another."""
    scopes = [f"{rng.integers(1 << 32):08x}" for _ in range(max(1, count // 50))]
    names: set[str] = set()
    while len(names) < count:
        parts = ["".join(rng.choice(NAME_PARTS, rng.integers(1, 4))) for _ in range(rng.integers(1, 4))]
        name = "/".join([str(rng.choice(scopes)), *parts]) + "w" * int(rng.integers(30, 90))
        names.add(name)
        if rng.random() < 0.05:
            names.add(name + "/" + str(rng.choice(NAME_PARTS)))
    return sorted(names)[:count]


# Shrinking a seed is of no use; a failure reports the seed, count and shards that reproduce it.
@settings(
    max_examples=4,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 2**32 - 1),
    count=st.integers(8000, 12000),
    shards=st.integers(1, 4),
    partitioned_share=st.sampled_from([0.01, 0.05]),
)
def test_large_random_checkpoints_read_like_tensorflow(tf, seed, count, shards, partitioned_share):
    rng = np.random.default_rng(seed)
    names = random_names(rng, count)
    values, partitioned = {}, set()
    # (name, slice spec, value) per shard; a partitioned variable's pieces may land in different shards.
    saves: list[list[tuple[str, str, np.ndarray]]] = [[] for _ in range(shards)]
    for name in names:
        dtype = "string" if rng.random() < 0.02 else str(rng.choice(NUMERIC))
        if rng.random() < partitioned_share:
            shape = tuple(int(d) for d in rng.integers(2, 7, rng.integers(1, 4)))
            values[name] = value = make_value(dtype, shape, rng)
            axis = int(rng.integers(len(shape)))
            cuts = sorted({int(c) for c in rng.integers(1, shape[axis], rng.integers(1, 3))})
            for start, stop in zip([0, *cuts], [*cuts, shape[axis]]):
                spec = ["-"] * len(shape)
                spec[axis] = f"{start},{stop - start}"
                full_and_spec = " ".join(map(str, shape)) + " " + ":".join(spec)
                piece = np.take(value, range(start, stop), axis=axis)
                saves[int(rng.integers(shards))].append((name, full_and_spec, piece))
            partitioned.add(name)
            continue
        rank = int(rng.choice([0, 1, 1, 2, 2, 3]))
        shape = tuple(int(d) for d in rng.integers(0, 5, rank))
        if rng.random() < 0.001:
            shape = (int(rng.integers(5000, 20000)),)
        values[name] = value = make_value(dtype, shape, rng)
        saves[int(rng.integers(shards))].append((name, "", value))

    with tempfile.TemporaryDirectory() as tmp:
        parts = []
        for i, save in enumerate(s for s in saves if s):
            parts.append(os.path.join(tmp, f"part{i}"))
            tf.raw_ops.SaveV2(
                prefix=parts[-1],
                tensor_names=[name for name, _, _ in save],
                shape_and_slices=[spec for _, spec, _ in save],
                tensors=[tf.constant(v, dtype=tf.string if v.dtype == object else None) for _, _, v in save],
            )
        prefix = os.path.join(tmp, "merged")
        tf.raw_ops.MergeV2Checkpoints(checkpoint_prefixes=parts, destination_prefix=prefix)
        assert os.path.getsize(prefix + ".index") > 2 * TABLE_BLOCK  # several data blocks
        assert len([f for f in os.listdir(tmp) if f.startswith("merged.data-")]) == len(parts)

        infos = assert_matches_tensorflow(tf, prefix, frozenset(partitioned))
        assert list(infos) == names
        with open_checkpoint(prefix) as ckpt:
            for name, value in values.items():
                assert_identical(ckpt.read(name), value)
