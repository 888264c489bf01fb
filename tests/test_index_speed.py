"""How much work opening a TF checkpoint's index does, counted, never timed: the entries of a large
index are read in one loop over each block (tf_bundle._block_records), with no _Entry made until a
tensor is read, and read exactly as tf_bundle._parse_entry reads them."""

from __future__ import annotations

import random
import struct

import numpy as np

from lstm_inspect.readers import tf_bundle
from lstm_inspect.readers.protobuf import Malformed

from .test_detect_speed import Counted, _random_entry
from .test_tf_bundle import entry, write_bundle


def _block(items: list[tuple[bytes, bytes]]) -> bytes:
    """One table block of these (key, record) entries, with no prefix compression."""
    body = bytearray()
    for key, record in items:
        assert len(key) < 0x80 and len(record) < 0x80
        body += bytes([0, len(key), len(record)]) + key + record
    return bytes(body) + struct.pack("<II", 0, 1)


def _loop_outcome(record: bytes, index: tf_bundle._Index) -> tuple:
    """What _block_records reads of a record alone in its block, the heads of those before it kept."""
    index.infos, index.keys, index.needed_from_shard, index.partitioned = {}, {}, {}, []
    try:
        _, _, problem = tf_bundle._block_records(_block([(b"t", record)]), True, b"", index)
    except Malformed as e:
        return ("malformed", str(e))
    assert problem is None
    if index.partitioned:
        return ("partitioned",)
    (info,) = index.infos.values()
    return info.dtype, info.shape, index.needed_from_shard


def _parsed_outcome(record: bytes) -> tuple:
    try:
        parsed = tf_bundle._parse_entry(record)
    except Malformed as e:
        return ("malformed", str(e))
    if parsed.slices:
        return ("partitioned",)
    return tf_bundle.dtype_name(parsed.dtype), parsed.shape, {parsed.shard_id: parsed.offset + parsed.size}


def test_the_loop_reads_every_record_as_parse_entry_does(monkeypatch):
    """The records TF writes and those near them (tests/test_detect_speed.py: numbers of 1 to 11 bytes,
    0s left out, fields repeated, out of order or unknown, slices, cut short, damaged), in an order
    that meets the same heads with other sizes, offsets and shards: read alike, refused alike with
    the same message, and most read in the loop itself."""
    rng = random.Random(13)
    records = [_random_entry(rng) for _ in range(4000)]
    records = [record for record in records if len(record) < 0x80] * 2  # every head met again
    rng.shuffle(records)
    index = tf_bundle._Index("index", num_shards=1)
    called = Counted(tf_bundle._parse_entry)
    monkeypatch.setattr(tf_bundle, "_parse_entry", called)
    outcomes = [_loop_outcome(record, index) for record in records]
    monkeypatch.undo()
    assert outcomes == [_parsed_outcome(record) for record in records]
    read = sum(outcome[0] not in ("malformed", "partitioned") for outcome in outcomes)
    # Both ways are taken: records read in the loop itself, and by _parse_entry.
    assert read > 2000 and len(index.heads) > 100
    assert len(records) - called.calls > 500 and called.calls > 1000
    # An _Entry made later, from the record kept, is _parse_entry's.
    keys = [b"t%05d" % number for number in range(len(records))]
    entries = tf_bundle._Entries([_block([(b"", b""), *zip(keys, records)])], {})
    for key, record in zip(keys, records):
        if _parsed_outcome(record)[0] != "malformed":
            assert entries[key] == tf_bundle._parse_entry(record)


def test_opening_a_large_index_makes_no_entry_per_tensor(tmp_path, monkeypatch):
    """3,000 tensors of two shapes: the first record of each head is read by _parse_entry (to learn its
    head), the others in the loop; the _Entry of a tensor is made when it is read, and reads right."""
    values = np.arange(6, dtype=np.float32)
    data = values.tobytes()
    entries = {}
    for k in range(3000):
        shape = (2, 3) if k % 2 else (6,)
        entries[b"layer_%04d/kernel" % k] = entry(1, shape, 24, data, offset=0)
    prefix = str(tmp_path / "many.ckpt")
    write_bundle(prefix, entries, data)
    called = Counted(tf_bundle._parse_entry)
    monkeypatch.setattr(tf_bundle, "_parse_entry", called)
    with tf_bundle.open_checkpoint(prefix) as ckpt:
        assert called.calls == 2
        tensors = ckpt.tensors()
        assert len(tensors) == 3000 and tensors["layer_0001/kernel"].shape == (2, 3)
        assert tensors["layer_2998/kernel"].shape == (6,) and tensors["layer_2998/kernel"].dtype == "float32"
        assert called.calls == 2  # listing reads no record again
        np.testing.assert_array_equal(ckpt.read("layer_0003/kernel"), values.reshape(2, 3))
        assert called.calls == 3  # its _Entry, made now
        np.testing.assert_array_equal(ckpt.read("layer_0001/kernel"), values.reshape(2, 3))
        assert called.calls == 3  # read at open: the first of its head
