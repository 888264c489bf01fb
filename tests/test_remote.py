"""Remote inputs against real servers on 127.0.0.1 (tests/servers.py), started and stopped here:
moto's S3 API and a plain HTTP server, each counting from its own side the requests and bytes it
served. A multi-shard TF checkpoint (TF's sharded Saver), a Keras .keras and .h5 sit on both.

What is checked: the same results as from the local files; only the bytes a command needs cross
the network (server-side counts); errors (missing, denied, expired credentials, a server ignoring
Range, a cut connection, a 500, a stall) are one line, after a bounded number of tries, with no
output file left; a URL's secrets never show; local files need no fsspec.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import lstm_inspect
from lstm_inspect.cli import main
from lstm_inspect.errors import FileNotFound, RemoteError
from lstm_inspect.readers import remote, urls

from .conftest import FIXTURES
from .servers import Faults, HTTPFileServer, S3Server, aws_environment

BUCKET = "models"
BIG = "big/lstm_cell"  # a 9 MB kernel: larger than remote._DIRECT, so read as parallel parts
MiB = 1 << 20


def cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def assert_clean_error(result, *fragments: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1 and result.stdout == "", result.output
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def without_path(data: dict) -> dict:
    return {k: v for k, v in data.items() if k not in ("path", "stats")}


# --- the files, made once -------------------------------------------------------------------


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """ckpt/: a two-shard TF1 checkpoint (three small LSTMs with Adam slots, one 9 MB LSTM, one
    partitioned LSTM, a dense head) with its `checkpoint` state file; keras/: a .keras and an .h5."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    v1, rng = tf.compat.v1, np.random.default_rng(0)
    root = tmp_path_factory.mktemp("remote")
    (root / "ckpt").mkdir()
    with tf.Graph().as_default():
        variables = []

        def variable(name: str, shape: tuple[int, ...], device: int, **kwargs) -> None:
            with tf.device(f"/cpu:{device}"):
                init = v1.constant_initializer(rng.standard_normal(shape).astype(np.float32) * 0.1)
                variables.append(v1.get_variable(name, shape, initializer=init, **kwargs))

        for k in range(3):
            for suffix in ("", "/Adam", "/Adam_1"):
                variable(f"small_{k}/lstm_cell/kernel{suffix}", (64, 128), k % 2)
                variable(f"small_{k}/lstm_cell/bias{suffix}", (128,), k % 2)
        variable(f"{BIG}/kernel", (1100, 2048), 1)
        variable(f"{BIG}/bias", (2048,), 1)
        with tf.device("/cpu:0"), v1.variable_scope("part/lstm_cell", partitioner=v1.fixed_size_partitioner(3)):
            variables += list(v1.get_variable("kernel", (48, 64)))
            variables.append(v1.get_variable("bias", (64,), partitioner=None))
        variable("head/dense/kernel", (512, 10), 0)
        saver = v1.train.Saver(sharded=True)
        with v1.Session(config=v1.ConfigProto(device_count={"CPU": 2})) as sess:
            sess.run(v1.global_variables_initializer())
            saver.save(sess, str(root / "ckpt" / "model.ckpt"), write_meta_graph=False)
    assert len(list((root / "ckpt").glob("model.ckpt.data-*"))) == 2
    # An index of several table blocks: hash-like names defeat its prefix compression.
    (root / "many").mkdir()
    names = [f"{(i * 2654435761) % 2**32:08x}/layer_{i}/" + "w" * 100 for i in range(4000)]
    tensors = [tf.constant(np.arange(i % 5, dtype=np.int16)) for i in range(len(names))]
    tf.raw_ops.SaveV2(
        prefix=str(root / "many" / "ckpt"), tensor_names=names, shape_and_slices=[""] * 4000, tensors=tensors
    )
    (root / "keras").mkdir()
    for name in ("model.keras", "model.h5"):
        shutil.copy(FIXTURES / "keras3" / name, root / "keras" / name)
    make_large_keras(root / "large")
    shutil.copytree(FIXTURES / "keras2_saved_model" / "saved_model", root / "sm")
    shutil.copytree(FIXTURES / "tf1_forget0", root / "forget0")  # a TF1 checkpoint whose .meta sets forget_bias=0
    return root


PADDING = 40 * MiB


def padded_h5(source, out, pad: int) -> None:
    """source's HDF5 groups and attributes, with `pad` bytes of other weights (standing for large
    Dense layers or optimizer state) written after its first layer's: the LSTM weights lie at
    both ends of a file of tens of MB."""
    import h5py

    with h5py.File(source) as src, h5py.File(out, "w") as dst:
        dst.attrs.update(dict(src.attrs))
        weights = "model_weights" if "model_weights" in src else "layers"  # Keras' .h5, a .keras's weights
        group = dst.create_group(weights)
        group.attrs.update(dict(src[weights].attrs))
        for i, child in enumerate(src[weights]):
            src.copy(src[weights][child], group, name=child)
            if i == 0:
                dst.create_dataset("padding", data=np.full(pad // 4, 0.5, np.float32))
        for name in src:
            if name != weights:
                src.copy(src[name], dst, name=name)


def make_large_keras(out: Path) -> None:
    """The keras3 fixture's .h5 and .keras (four small LSTMs), each made 40 MB larger (padded_h5);
    the .keras's members stored, as Keras stores them (keras/src/saving/saving_lib.py)."""
    import io
    import zipfile

    out.mkdir()
    padded_h5(FIXTURES / "keras3" / "model.h5", out / "model.h5", PADDING)
    with (
        zipfile.ZipFile(FIXTURES / "keras3" / "model.keras") as src,
        zipfile.ZipFile(out / "model.keras", "w", zipfile.ZIP_STORED) as dst,
    ):
        for info in src.infolist():
            if info.filename == "model.weights.h5":
                padded_h5(io.BytesIO(src.read(info)), out / "weights.h5", PADDING)
                dst.write(out / "weights.h5", info.filename)
                (out / "weights.h5").unlink()
            else:
                dst.writestr(info, src.read(info))


@pytest.fixture(scope="module")
def s3(root):
    """moto's S3 on 127.0.0.1 holding root/ under s3://models/, and the AWS_* variables every
    client here finds its endpoint and (fake) credentials in; nothing may reach further."""
    with pytest.MonkeyPatch.context() as env, S3Server() as server:
        aws_environment(env, server.url)
        import boto3

        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            client.put_object(Bucket=BUCKET, Key=str(path.relative_to(root)), Body=path.read_bytes())
        _fresh_s3fs()
        yield server
        _fresh_s3fs()


def _fresh_s3fs() -> None:
    # s3fs keeps one instance, and its credentials, per set of options (fsspec's instance cache).
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture
def s3_log(s3):
    s3.log.clear()
    s3.denied = ()
    yield s3.log
    s3.denied = ()


@pytest.fixture(scope="module")
def http_server(root):
    with HTTPFileServer(root) as server:
        yield server


@pytest.fixture
def http(http_server, monkeypatch):
    """The HTTP server with no faults and an empty log; requests bounded to 5 s, 2 retries."""
    http_server.faults = Faults()
    http_server.log.clear()
    http_server.most_in_flight = 0
    monkeypatch.setenv("LSTM_INSPECT_TIMEOUT", "5")
    monkeypatch.setenv("LSTM_INSPECT_RETRIES", "2")
    yield http_server
    http_server.faults = Faults()


def shard_bytes(log, root: Path) -> int:
    return sum(log.bytes(p.name) for p in (root / "ckpt").glob("model.ckpt.data-*"))


def layer_bytes(root: Path, layer: str, path: str = "ckpt/model.ckpt") -> int:
    with lstm_inspect.load(root / path) as ckpt:
        return sum(4 * info.size for info in ckpt.layer(layer).spec.tensors.values())


def layer_spans(root: Path) -> tuple[int, int]:
    """How many requests of the data shards an export of every layer takes: one per span of each
    layer's tensors (a partitioned one's pieces) lying together, across gaps of up to
    remote._MAX_GAP (the layer's tensors are advised together when its first is read); and how
    many tensors (or pieces) they hold."""
    from lstm_inspect.readers.tf_bundle import _slice_key

    spans = tensors = 0
    with lstm_inspect.load(root / "ckpt" / "model.ckpt") as ckpt:
        store = ckpt.store
        for layer in ckpt.layers:
            ranges = []
            for name in {block.tensor for block in layer.blocks()}:
                key = store._keys[name]
                entry = store._entries[key]
                pieces = [store._entries[_slice_key(key, e)] for e in entry.slices] or [entry]
                ranges += [(p.shard_id, p.offset, p.offset + p.size) for p in pieces]
            tensors += len(ranges)
            last = (-1, 0)
            for shard, start, end in sorted(ranges):
                if shard != last[0] or start - last[1] > remote._MAX_GAP:
                    spans += 1
                last = (shard, max(end, last[1]) if shard == last[0] else end)
    return spans, tensors


# --- S3 --------------------------------------------------------------------------------------


def test_s3_summary_fetches_the_index_and_nothing_of_the_data(root, s3_log):
    local = json.loads(cli("summary", str(root / "ckpt" / "model.ckpt"), "--json").stdout)
    result = cli("summary", f"s3://{BUCKET}/ckpt/model.ckpt", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    stats = data.pop("stats")
    assert without_path(data) == without_path(local) and data["path"] == f"s3://{BUCKET}/ckpt/model.ckpt"
    index_size = (root / "ckpt" / "model.ckpt.index").stat().st_size
    object_gets = [r for r in s3_log.of(method="GET") if r.path != f"/{BUCKET}"]  # not s3fs's listings
    assert [r.path for r in object_gets] == [f"/{BUCKET}/ckpt/model.ckpt.index"]
    assert index_size <= s3_log.bytes(".index") < 2 * index_size
    assert shard_bytes(s3_log, root) == 0 and s3_log.of(".data-00000-of-00002", "HEAD")  # sized, never read
    # What the client counted is what the server served.
    assert stats["reads"] == len(object_gets) and stats["bytes"] == sum(r.bytes for r in object_gets)


def test_s3_split_of_one_layer_fetches_that_layer_only(root, s3_log):
    local = json.loads(cli("split", str(root / "ckpt"), "--layer", BIG, "--json").stdout)
    result = cli("split", f"s3://{BUCKET}/ckpt/", "--layer", BIG, "--json")  # the directory: its state file
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert without_path(data) == without_path(local)
    needed = layer_bytes(root, BIG)
    assert needed <= shard_bytes(s3_log, root) < needed + MiB
    assert data["stats"]["bytes"] == sum(r.bytes for r in s3_log.of(method="GET") if r.path != f"/{BUCKET}")


def test_s3_export_equals_the_local_export(root, s3_log, tmp_path):
    for source, out in ((str(root / "ckpt" / "model.ckpt"), "local.npz"), (f"s3://{BUCKET}/ckpt", "remote.npz")):
        result = cli("export", source, "-o", str(tmp_path / out), "--layout", "pytorch")
        assert result.exit_code == 0, result.output
    local, remote_npz = np.load(tmp_path / "local.npz"), np.load(tmp_path / "remote.npz")
    assert sorted(local.files) == sorted(remote_npz.files) and len(local.files) > 10
    for key in local.files:
        np.testing.assert_array_equal(local[key], remote_npz[key])
    # Every LSTM tensor once, the optimizer slots never.
    lstm = sum(layer_bytes(root, name) for name in ("small_0/lstm_cell", "small_1/lstm_cell", "small_2/lstm_cell"))
    lstm += layer_bytes(root, BIG) + layer_bytes(root, "part/lstm_cell")
    assert lstm <= shard_bytes(s3_log, root) < lstm + 2 * MiB
    # One streaming GET per span of a layer's tensors lying together (a bias, the Adam slots of
    # the bias, then the kernel: one span), not one per tensor or per 8 MiB part: each GET costs a
    # round trip (and moto as it comes reads the whole object for each: tests/moto_ranges.py).
    shard_gets = [r for r in s3_log.of(method="GET") if ".data-" in r.path]
    spans, tensors = layer_spans(root)
    assert len(shard_gets) == spans < tensors


def test_s3_damaged_shard_fails_its_crc_and_writes_nothing(root, s3, s3_log, tmp_path):
    import boto3

    damaged = bytearray((root / "ckpt" / "model.ckpt.data-00001-of-00002").read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    client = boto3.client("s3")
    for path in (root / "ckpt").iterdir():
        body = bytes(damaged) if path.name.endswith("00001-of-00002") else path.read_bytes()
        client.put_object(Bucket=BUCKET, Key=f"damaged/{path.name}", Body=body)
    result = cli("export", f"s3://{BUCKET}/damaged/model.ckpt", "-o", str(tmp_path / "out.npz"))
    assert_clean_error(result, "fails its CRC-32C check")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["model.keras", "model.h5"])
def test_s3_keras_files_read_in_a_few_requests(root, s3_log, name):
    for command in ("summary", "split"):
        local = json.loads(cli(command, str(root / "keras" / name), "--json").stdout)
        result = cli(command, f"s3://{BUCKET}/keras/{name}", "--json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert without_path(data) == without_path(local)
        size = (root / "keras" / name).stat().st_size
        # The 97 KB file: its head and its tail (a .keras's zip directory) are all it takes.
        assert data["stats"]["reads"] <= 2 and s3_log.bytes(name) <= 2 * 64 * 1024
        assert data["stats"]["bytes"] == s3_log.bytes(name) >= size
        s3_log.clear()


def test_s3_missing_file(s3_log):
    assert_clean_error(cli("summary", f"s3://{BUCKET}/nothing/model.ckpt"), "no such file or checkpoint prefix")
    assert_clean_error(cli("summary", f"s3://{BUCKET}/keras/missing.keras"), "no such file or checkpoint prefix")


@pytest.fixture
def s3_faults(s3):
    s3.log.clear()
    yield s3
    s3.denied = ()


def test_s3_permission_denied_is_one_line(s3_faults):
    s3_faults.denied = (f"/{BUCKET}/ckpt/",)
    result = cli("summary", f"s3://{BUCKET}/ckpt/model.ckpt")
    assert_clean_error(result, "access denied (Access Denied)", "credentials")
    # The HEAD's answer has no body to say why; one GET of a byte does. Neither is tried again.
    assert len(s3_faults.log.of(method="HEAD")) == len(s3_faults.log.of(method="GET")) == 1


def test_s3_expired_credentials_are_one_line_and_never_shown(s3_faults, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "EXPIRED")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-print-me")
    _fresh_s3fs()
    try:
        result = cli("summary", f"s3://{BUCKET}/ckpt/model.ckpt")
    finally:
        _fresh_s3fs()
    assert_clean_error(result, "access denied (The provided token has expired.)")
    assert "do-not-print-me" not in result.output and "EXPIRED" not in result.output


# --- HTTP ------------------------------------------------------------------------------------


def test_http_split_of_one_layer_fetches_that_layer_only(root, http):
    local = json.loads(cli("split", str(root / "ckpt"), "--layer", BIG, "--json").stdout)
    result = cli("split", f"{http.url}/ckpt/", "--layer", BIG, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert without_path(data) == without_path(local)
    needed = layer_bytes(root, BIG)
    assert needed <= shard_bytes(http.log, root) < needed + MiB
    # The only 404s: the lookups of the .meta graph a checkpoint may have beside it (issue 11) and,
    # the directory being given, of the graph a SavedModel directory would hold (HTTP lists nothing).
    missing = ("/model.ckpt.meta", "/saved_model.pb", "/saved_model.pbtxt")
    assert all(r.status in (200, 206) or r.path.endswith(missing) for r in http.log.requests)
    assert data["stats"]["bytes"] == http.log.bytes() and data["stats"]["reads"] == len(http.log.of(method="GET"))


def test_http_large_reads_are_parallel_ranges(root, http, monkeypatch):
    monkeypatch.setattr(remote, "_PART", MiB)
    with lstm_inspect.load(f"{http.url}/ckpt/model.ckpt") as ckpt:
        http.log.clear()
        http.faults.together = 3  # each ranged GET waits until three are in flight: sequential reads never get there
        kernel = ckpt.store.read(f"{BIG}/kernel")
    with lstm_inspect.load(root / "ckpt" / "model.ckpt") as ckpt:
        np.testing.assert_array_equal(kernel, ckpt.store.read(f"{BIG}/kernel"))
    assert http.most_in_flight >= 3
    # At most _PARALLEL parts, each streamed into the array: 8 of 1.07 MiB, all in flight at once.
    gets = http.log.of(method="GET")
    part = -(-kernel.nbytes // remote._PARALLEL)
    assert len(gets) == remote._PARALLEL and all(r.bytes <= part for r in gets)
    assert http.log.bytes() == kernel.nbytes  # exactly the tensor: no read-ahead on large reads


def test_an_index_of_many_blocks_is_fetched_in_two_requests(root, http):
    index = root / "many" / "ckpt.index"
    # Three blocks at least: TF's table blocks hold about 256 KiB (table_options.h).
    assert index.stat().st_size > 2 * 256 * 1024
    result = cli("summary", f"{http.url}/many/ckpt", "--json")
    assert result.exit_code == 0, result.output
    # The last 64 KiB (footer and index block), then every data block at once, in parallel parts.
    assert len(http.log.of("ckpt.index", "GET")) == 2
    assert index.stat().st_size <= http.log.bytes("ckpt.index") < 2 * index.stat().st_size


def test_cached_extents_overlapping_are_all_found():
    extents = remote._Extents(budget=1 << 20)
    extents.put("u", 0, bytes(range(256)) * 256)  # [0, 64 KiB)
    extents.put("u", 20_000, b"x" * 100)  # a later start that ends before 30,000
    hit = extents.get("u", 30_000)
    assert hit is not None and hit[0] == 30_000 % 256 and len(hit) == 65536 - 30_000
    assert extents.get("u", 65536) is None and extents.get("v", 0) is None
    extents.put("u", 70_000, bytes(1 << 20))  # past the budget: the least recently used go
    assert extents.get("u", 0) is None and extents.get("u", 70_000) is not None


def test_remote_read_memory_is_the_tensor_and_the_parts_in_flight(root, http, monkeypatch):
    monkeypatch.setattr(remote, "_PART", MiB)
    monkeypatch.setattr(remote, "_PARALLEL", 2)
    with lstm_inspect.load(f"{http.url}/ckpt/model.ckpt") as ckpt:
        tracemalloc.start()
        try:
            kernel = ckpt.store.read(f"{BIG}/kernel")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    # The array, 2 parts of 1 MiB in flight (each may be held twice while aiohttp joins its
    # chunks), and slack; fetching all parts first would need another 9 MB.
    assert kernel.nbytes <= peak < kernel.nbytes + 6 * MiB


def test_remote_export_memory_is_the_layer_and_a_few_chunks(root, http, tmp_path):
    # One request for the layer's bias and kernel, the kernel's bytes streamed straight into its
    # array 1 MiB at a time: no copy of the span in the cache, no 8 MiB body held whole.
    needed = layer_bytes(root, BIG)
    cli("summary", f"{http.url}/ckpt/model.ckpt")  # the modules imported before measuring
    tracemalloc.start()
    try:
        result = cli("export", f"{http.url}/ckpt/model.ckpt", "--layer", BIG, "-o", str(tmp_path / "out.npz"), "-q")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.exit_code == 0, result.output
    assert len(http.log.of(".data-00001-of-00002", "GET")) == 1
    # Beside the layer: the 1 MiB chunks in flight, and the npz writer's batch of pieces handed
    # over from its reading thread (writers/npz.py, at most 1 MiB ahead) with its gathered writes.
    assert needed <= peak < needed + 8 * MiB, peak - needed


def test_http_server_ignoring_range_small_file_is_read_whole_with_a_warning(root, http):
    http.faults.ignore_range = True
    result = cli("summary", f"{http.url}/keras/model.h5", "--json")
    assert result.exit_code == 0, result.output
    assert "Warning: " in result.stderr and "ignores HTTP Range requests" in result.stderr
    size = (root / "keras" / "model.h5").stat().st_size
    assert (
        len(http.log.of(method="GET")) == 1 and http.log.bytes() == size == json.loads(result.stdout)["stats"]["bytes"]
    )


def test_http_server_ignoring_range_large_file_is_refused_before_its_body(root, http, monkeypatch):
    monkeypatch.setattr(remote, "_WHOLE_BODY_LIMIT", MiB)
    http.faults.ignore_range = True
    result = cli("split", f"{http.url}/ckpt/model.ckpt", "--layer", BIG, "--json")
    # The 1 KB index is read whole, with a warning; the 9 MB shard is refused.
    warning, error = result.stderr.strip().splitlines()
    assert result.exit_code == 1 and result.stdout == ""
    assert warning.startswith("Warning: ") and "model.ckpt.index: the server ignores HTTP Range" in warning
    assert error.startswith("Error: ") and "the server ignores HTTP Range requests" in error and "download it" in error
    shard = [r.range for r in http.log.of(".data-00001-of-00002", "GET")]
    assert shard and len(shard) == len(set(shard))  # refused, not tried again
    remote.reset_transfers()
    with lstm_inspect.load(f"{http.url}/ckpt/model.ckpt") as ckpt, pytest.raises(RemoteError, match="ignores HTTP"):
        ckpt.store.read(f"{BIG}/kernel")
    assert remote.transfers().files[f"{http.url}/ckpt/model.ckpt.data-00001-of-00002"]["bytes"] == 0


def test_http_cut_connection_and_500_are_tried_again(root, http):
    local = json.loads(cli("split", str(root / "ckpt"), "--layer", BIG, "--json").stdout)
    shard = ".data-00001-of-00002"
    for faults in (Faults(drop_after=1000, drops=1, paths=(shard,)), Faults(errors=1, paths=(shard,))):
        http.faults = faults
        http.log.clear()
        result = cli("split", f"{http.url}/ckpt/model.ckpt", "--layer", BIG, "--json", "--verbose")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert without_path(data) == without_path(local) and data["stats"]["retries"] == 1
        assert "1 tried again" in result.stderr
        ranges = [r.range for r in http.log.of(shard, "GET")]
        assert len(ranges) == len(set(ranges)) + 1  # one range asked for twice


def test_http_connection_cut_every_time_fails_in_one_line_and_leaves_no_file(http, tmp_path):
    http.faults = Faults(drop_after=1000, drops=-1, paths=(".data-00001-of-00002",))
    out = tmp_path / "out" / "gates.npz"
    out.parent.mkdir()
    result = cli("export", f"{http.url}/ckpt/model.ckpt", "-o", str(out))
    assert_clean_error(result, "failed", "3 tries", "try again later")
    assert list(out.parent.iterdir()) == []
    attempts = {}
    for r in http.log.of(".data-00001-of-00002", "GET"):
        attempts[r.range] = attempts.get(r.range, 0) + 1
    assert max(attempts.values()) == 3  # LSTM_INSPECT_RETRIES=2: three tries, no more


def test_http_stalled_server_times_out_and_fails_cleanly(http, monkeypatch):
    # The timeout bounds every request, the ones the server answers at once too: 2 s leaves a busy
    # machine room for those, and the stalled one (10 s) still outlasts it.
    monkeypatch.setenv("LSTM_INSPECT_TIMEOUT", "2")
    monkeypatch.setenv("LSTM_INSPECT_RETRIES", "1")
    http.faults = Faults(stall=10, stalls=-1, paths=(".index",))
    result = cli("summary", f"{http.url}/ckpt/model.ckpt")
    assert_clean_error(result, "no answer within 2 s", "2 tries")
    assert len(http.log.of(".index", "GET")) == 2


def test_http_missing_and_forbidden(http):
    assert_clean_error(cli("summary", f"{http.url}/nothing/model.h5"), "no such file or checkpoint prefix")
    http.faults.token = "letmein"
    assert_clean_error(cli("summary", f"{http.url}/keras/model.h5"), "access denied (HTTP 403 Forbidden)")


def test_url_secrets_are_sent_but_never_shown(root, http):
    http.faults.token = "s3cr3t"
    url = http.url.replace("http://", "http://alice:pa55w0rd@")
    for args in (
        ["summary", f"{url}/keras/model.h5?token=s3cr3t"],
        ["summary", f"{url}/ckpt/?token=s3cr3t", "--json", "--verbose"],  # every file of it gets the token
        ["summary", f"{url}/nothing/model.h5?token=s3cr3t"],
    ):
        result = cli(*args)
        assert "s3cr3t" not in result.output and "pa55w0rd" not in result.output
        assert "alice:***@127.0.0.1" in result.output
    assert result.exit_code == 1 and "no such file" in result.stderr
    assert all(r.status != 403 for r in http.log.requests)  # the server saw the token every time


def test_a_remote_state_file_is_followed_only_within_its_directory(root, http, tmp_path):
    # A checkpoint the state file names by an absolute local path: a remote directory's state file
    # must not make the reader open local files.
    local = tmp_path / "elsewhere"
    shutil.copytree(root / "ckpt", local)
    evil = root / "evil"
    evil.mkdir()
    (evil / "checkpoint").write_text(f'model_checkpoint_path: "{local}/model.ckpt"\n')
    result = cli("summary", f"{http.url}/evil/")
    assert_clean_error(result, "names checkpoint", f"{http.url}/evil/model.ckpt.index")


def test_verbose_and_stats_only_for_remote_inputs(root, http):
    result = cli("summary", f"{http.url}/ckpt/model.ckpt", "-v")
    assert result.exit_code == 0
    lines = result.stderr.splitlines()
    assert lines[0].startswith("Fetched ") and f"{http.url}/ckpt/model.ckpt.index: 1 read, 1 lookup" in result.stderr
    local = cli("summary", str(root / "ckpt" / "model.ckpt"), "-v", "--json")
    assert local.stderr == "" and "stats" not in json.loads(local.stdout)


def test_export_to_a_url_is_refused(http):
    result = cli("export", f"{http.url}/keras/model.h5", "-o", "s3://bucket/out.npz?sig=abc")
    assert_clean_error(result, "s3://bucket/out.npz: outputs are written to local files only")
    assert http.log.requests == []  # refused before the input is opened


def test_default_output_name_of_a_url(http, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("export", f"{http.url}/keras/model.h5?token=x", "-q")
    assert result.exit_code == 0, result.output
    assert [p.name for p in tmp_path.iterdir()] == ["model.h5.gates.npz"]


# --- verify, diff and plot of URLs -----------------------------------------------------------


def test_s3_verify_of_one_layer_fetches_that_layer_only(root, s3_log):
    args = ["--layer", "small_0/lstm_cell", "--framework", "none", "--json", "--quiet"]
    local = json.loads(cli("verify", str(root / "ckpt" / "model.ckpt"), *args).stdout)
    result = cli("verify", f"s3://{BUCKET}/ckpt/model.ckpt", *args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert without_path(data) == without_path(local) and data["ok"] and len(data["layers"]) == 1
    # The layer's bias and kernel, with the bias's two Adam slots between them: one request.
    needed = layer_bytes(root, "small_0/lstm_cell")
    assert needed <= shard_bytes(s3_log, root) < needed + remote._MAX_GAP
    assert len([r for r in s3_log.of(method="GET") if ".data-" in r.path]) == 1


def test_diff_of_two_urls_fetches_each_layer_once(root, s3_log, http):
    local = json.loads(cli("diff", str(root / "ckpt"), str(root / "ckpt"), "--json").stdout)
    result = cli("diff", f"s3://{BUCKET}/ckpt/model.ckpt", f"{http.url}/ckpt/", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {k: v for k, v in data.items() if k not in ("a", "b", "stats")} == {
        k: v for k, v in local.items() if k not in ("a", "b")
    }
    lstm = sum(
        layer["params"] * 4 for layer in json.loads(cli("summary", str(root / "ckpt"), "--json").stdout)["layers"]
    )
    spans, _ = layer_spans(root)
    for log in (s3_log, http.log):
        assert lstm <= shard_bytes(log, root) < lstm + 2 * MiB
        assert len([r for r in log.of(method="GET") if ".data-" in r.path]) == spans


def test_http_plot_of_one_layer_fetches_that_layer_only(root, http, tmp_path):
    out = tmp_path / "gates.png"
    result = cli("plot", f"{http.url}/ckpt/model.ckpt", "--layer", "small_1/lstm_cell", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    needed = layer_bytes(root, "small_1/lstm_cell")
    assert needed <= shard_bytes(http.log, root) < needed + remote._MAX_GAP
    assert len(http.log.of(".data-00001-of-00002", "GET")) == 1 and http.log.of(".data-00000-of-00002", "GET") == []


# --- SavedModel directories and TF1 graphs --------------------------------------------------


def server_url(request, name: str) -> tuple[str, object]:
    """The URL of root/`name` on the server `request.param` names, and that server's log."""
    if request.param == "s3":
        return f"s3://{BUCKET}/{name}", request.getfixturevalue("s3_log")
    server = request.getfixturevalue("http")
    return f"{server.url}/{name}", server.log


@pytest.fixture(params=["s3", "http"])
def on_server(request):
    return lambda name: server_url(request, name)


def test_saved_model_directory_over_a_url(root, on_server):
    # Over HTTP too: a SavedModel's files have fixed names (saved_model.pb, variables/variables.index),
    # so a directory URL ending in "/" is read without a listing; one without the "/" names a file.
    url, log = on_server("sm/")
    for command in (["summary"], ["split", "--layer", "enc"]):
        local = json.loads(cli(*command, str(root / "sm"), "--json").stdout)
        log.clear()
        result = cli(*command, url, "--json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert without_path(data) == without_path(local) and data["path"] == url.rstrip("/")
        assert data["format"] == "saved-model" if command == ["summary"] else len(data["layers"]) == 1
        files = sorted(p for p in (root / "sm").rglob("*") if p.is_file())
        for path in files:  # every file fetched once at most; the graph and the index whole
            assert log.bytes(path.name) <= path.stat().st_size, path.name
        for name in ("saved_model.pb", "keras_metadata.pb", "variables.index"):
            assert (
                log.bytes(name)
                == (root / "sm").joinpath(*([name] if ".pb" in name else ["variables", name])).stat().st_size
            )
        assert data["stats"]["bytes"] == sum(
            r.bytes for r in log.of(method="GET") if ".pb" in r.path or "variables" in r.path
        )


def test_tf1_graph_beside_a_remote_checkpoint_is_read(root, on_server):
    url, log = on_server("forget0/model.ckpt")
    local = json.loads(cli("summary", str(root / "forget0" / "model.ckpt"), "--json").stdout)
    log.clear()
    result = cli("summary", url, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert without_path(data) == without_path(local)
    setting = data["layers"][0]["settings"]["forget_bias"]
    assert setting["value"] == 0.0 and setting["source"].startswith("graph: ") and not setting["assumed"]
    # The graph is fetched whole, the index too; of the data shard only its size is looked up.
    meta = root / "forget0" / "model.ckpt.meta"
    assert log.bytes(".meta") == meta.stat().st_size and log.of(".meta", "GET")
    assert log.bytes(".index") >= (root / "forget0" / "model.ckpt.index").stat().st_size
    assert log.of(".data-00000-of-00001", "GET") == []


# --- large Keras files, read in part ----------------------------------------------------------


@pytest.mark.parametrize("name", ["model.h5", "model.keras"])
def test_large_keras_files_are_read_in_part(root, on_server, tmp_path, name):
    local_path, (url, log) = root / "large" / name, on_server(f"large/{name}")
    size = local_path.stat().st_size
    assert size > PADDING
    # A .keras's CRC-32 (checked before its first value is read) covers its whole weights member.
    crc = ["--no-verify"] if name.endswith(".keras") else []
    layer = layer_bytes(root, "dec", f"large/{name}")
    for command, limit in (
        (["summary"], MiB),
        (["split", "--layer", "dec", *crc], MiB + layer),
        (["export", "--layer", "dec", "-o", str(tmp_path / "{}.npz"), *crc], MiB + layer),
    ):
        outputs = []
        for source in (str(local_path), url):
            log.clear()
            args = [a.format("remote" if source == url else "local") for a in command]
            result = cli(args[0], source, *args[1:], *(["--json"] if command[0] != "export" else ["-q"]))
            assert result.exit_code == 0, result.output
            outputs.append(result.stdout)
        assert log.bytes(name) < limit, (command, log.bytes(name))
        if command[0] == "export":
            local_npz, remote_npz = np.load(tmp_path / "local.npz"), np.load(tmp_path / "remote.npz")
            assert sorted(local_npz.files) == sorted(remote_npz.files) and local_npz.files
            for key in local_npz.files:
                np.testing.assert_array_equal(local_npz[key], remote_npz[key])
        else:
            assert without_path(json.loads(outputs[1])) == without_path(json.loads(outputs[0]))
    if crc:
        log.clear()
        assert cli("split", url, "--layer", "dec", "--json").exit_code == 0
        assert size - MiB < log.bytes(name) < size + MiB  # read through once


# --- other file systems, and none ------------------------------------------------------------


def test_memory_file_system(root):
    import fsspec

    memory = fsspec.filesystem("memory")
    for path in (root / "ckpt").iterdir():
        memory.pipe(f"/lstm-inspect-test/{path.name}", path.read_bytes())
    try:
        with lstm_inspect.load("memory://lstm-inspect-test/") as remote_ckpt:
            with lstm_inspect.load(root / "ckpt") as local_ckpt:
                for layer in local_ckpt.layers:
                    got = remote_ckpt.layer(layer.name).gate("forget")
                    np.testing.assert_array_equal(got.kernel, layer.gate("forget").kernel)
    finally:
        memory.rm("/lstm-inspect-test", recursive=True)


def test_library_errors_are_the_package_errors(http):
    with pytest.raises(FileNotFound, match="no such file"):
        lstm_inspect.load(f"{http.url}/nothing/model.ckpt")
    http.faults = Faults(errors=-1, paths=(".index",))
    with pytest.raises(RemoteError, match=r"HTTP 500 Internal Server Error; 3 tries"):
        lstm_inspect.load(f"{http.url}/ckpt/model.ckpt")
    http.faults = Faults()
    assert issubclass(RemoteError, lstm_inspect.LstmInspectError)


_BLOCK_FSSPEC = "import sys; sys.modules['fsspec'] = None; from lstm_inspect.cli import main; main()"


def test_without_fsspec_local_files_work_and_urls_name_the_extra(root):
    def run(*args: str):
        command = [sys.executable, "-c", _BLOCK_FSSPEC, *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, env=dict(os.environ))

    local = run("summary", str(root / "ckpt" / "model.ckpt"))
    assert local.returncode == 0 and "big/lstm_cell" in local.stdout
    for url, extra in (
        ("s3://bucket/model.ckpt", "s3"),
        ("gs://bucket/model.h5", "gcs"),
        ("https://h/m.keras", "http"),
    ):
        result = run("summary", url)
        assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
        assert f"pip install 'lstm-inspect[{extra}]'" in result.stderr


def test_a_local_summary_imports_no_remote_layer(root):
    code = (
        "import sys; from lstm_inspect.cli import main\n"
        f"try: main(['summary', {str(root / 'ckpt' / 'model.ckpt')!r}])\n"
        "except SystemExit: pass\n"
        "print(sorted(m for m in ('fsspec', 's3fs', 'aiohttp', 'lstm_inspect.readers.remote') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_unknown_scheme_or_missing_file_system_is_one_line():
    assert_clean_error(cli("summary", "nosuchscheme://x/model.ckpt"), "fsspec knows no nosuchscheme:// file system")
    try:
        import gcsfs  # noqa: F401
    except ImportError:  # fsspec is here, its GCS file system is not: the extra to install is named
        assert_clean_error(cli("summary", "gs://bucket/model.ckpt"), "pip install 'lstm-inspect[gcs]'")


# --- URL arithmetic --------------------------------------------------------------------------


def test_url_helpers():
    assert urls.is_url("s3://b/k") and urls.is_url("simplecache::s3://b/k") and urls.is_url("https://h/x")
    assert not urls.is_url("C://x") and not urls.is_url("model.ckpt") and not urls.is_url("file:///tmp/x")
    assert urls.local_path("file:///tmp/a%20b/m.h5") == "/tmp/a b/m.h5"
    assert urls.url_split("s3://b/d/m.ckpt") == ("s3://b/d", "m.ckpt")
    assert urls.url_split("s3://b/m.ckpt") == ("s3://b", "m.ckpt")
    assert urls.url_join("gs://b/d/", "checkpoint") == "gs://b/d/checkpoint"
    shown = urls.display_url("https://u:pw@host.test/d/m.ckpt?sig=xyz&sv=1")
    assert shown == "https://u:***@host.test/d/m.ckpt"
    assert urls.real_url(shown + ".index") == "https://u:pw@host.test/d/m.ckpt.index?sig=xyz&sv=1"
    assert urls.display_url(shown) == shown and urls.real_url(shown) == "https://u:pw@host.test/d/m.ckpt?sig=xyz&sv=1"
    assert (
        urls.mask_secrets("failed: https://u:pw@h/x?token=abc&n=1 and s3://b/k")
        == "failed: https://u:***@h/x?token=***&n=*** and s3://b/k"
    )
