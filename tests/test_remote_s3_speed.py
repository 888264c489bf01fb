"""How S3 reads are made (readers/remote.py _S3Object), counted from the server's side: a ranged GET
of a data shard goes to a presigned URL of the object (no botocore call per request), read by
http.client straight into the buffer; lookups go through s3fs's client. What the presigned URL
cannot do goes through the client: a refused URL (once, then the client alone), a request with
extra arguments (requester pays). A body cut short, or an answer that does not come, is tried
again and then fails in one line. A span larger than the window that is one tensor and its bias
is one fetch, in parallel parts. And the exit hook that skips the last collections is the
command's only."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from lstm_inspect.cli import main
from lstm_inspect.readers import remote

from .conftest import FIXTURES
from .servers import S3Server, _s3_error, aws_environment

BUCKET = "speed"
ADAM = "tf1_adam/model.ckpt"  # one LSTM: its bias, the bias's two Adam slots, then its kernel


class SigningS3Server(S3Server):
    """moto's S3, also noting per request whether it came signed in its URL (presigned) and
    faulting presigned GETs of data shards only: refused (403), cut short, or held unanswered."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bool]] = []  # (method, path, presigned)
        self.refuse = 0  # presigned data GETs to answer 403 AccessDenied; -1: all
        self.cut_after: int | None = None  # send this many body bytes of the next presigned data GET
        self.stall = False  # presigned data GETs wait for `release` (10 s at most) before answering
        self.release = threading.Event()
        self.seen_lock = threading.Lock()
        super().__init__()

    def _middleware(self, app: Callable[..., Any]) -> Callable[..., Iterator[bytes]]:
        logged = super()._middleware(app)

        def noted(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
            method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
            presigned = "Signature=" in environ.get("QUERY_STRING", "")
            with self.seen_lock:
                self.seen.append((method, path, presigned))
            faulted = presigned and method == "GET" and ".data-" in path
            if faulted and self.refuse:
                self.refuse -= self.refuse > 0
                status, headers, body = _s3_error("AccessDenied", "Access Denied", "403 Forbidden")
                start_response(status, headers)
                yield body
                return
            if faulted and self.stall:
                self.release.wait(10)
            cut, self.cut_after = (self.cut_after, None) if faulted else (None, self.cut_after)
            sent = 0
            for chunk in logged(environ, start_response):
                if cut is not None and sent + len(chunk) > cut:
                    with self.log.lock:  # the log counted the whole chunk; what went out is less
                        record = next(r for r in reversed(self.log.requests) if r.path == path and r.method == "GET")
                        record.bytes -= sent + len(chunk) - cut
                    yield chunk[: cut - sent]
                    return  # fewer bytes than the Content-Length said: the client sees the body end early
                sent += len(chunk)
                yield chunk

        return noted

    def data_gets(self) -> list[tuple[str, bool]]:
        with self.seen_lock:
            return [(path, presigned) for method, path, presigned in self.seen if method == "GET" and ".data-" in path]

    def clear(self) -> None:
        with self.seen_lock:
            self.seen.clear()
        self.log.clear()
        self.refuse, self.cut_after, self.denied, self.stall = 0, None, (), False
        self.release.clear()


def _fresh_s3fs() -> None:
    # s3fs keeps one instance, and its credentials, per set of options (fsspec's instance cache).
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    remote._UNSIGNED.clear()


@pytest.fixture(scope="module")
def server() -> Iterator[SigningS3Server]:
    with pytest.MonkeyPatch.context() as env, SigningS3Server() as s3:
        aws_environment(env, s3.url, unset=("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"))
        import boto3

        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        for name in ("tf1_adam", "tf1_basic"):
            for path in sorted((FIXTURES / name).iterdir()):
                client.put_object(Bucket=BUCKET, Key=f"{name}/{path.name}", Body=path.read_bytes())
        _fresh_s3fs()
        yield s3
        _fresh_s3fs()


@pytest.fixture
def s3(server: SigningS3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[SigningS3Server]:
    server.clear()
    monkeypatch.setenv("LSTM_INSPECT_TIMEOUT", "5")
    monkeypatch.setenv("LSTM_INSPECT_RETRIES", "2")
    yield server
    server.clear()
    _fresh_s3fs()


def export(source: str, out: Path, verbose: bool = True) -> Any:
    args = ["export", source, "-o", str(out)] + (["-v"] if verbose else [])
    return CliRunner().invoke(main, args, catch_exceptions=False)


def fetched(result: Any) -> tuple[int, int, int]:
    """(reads, bytes, retries) as `-v` says: "Fetched N bytes in R requests (X reads, Y lookups)"."""
    said = r"Fetched ([\d,]+) bytes in \d+ requests \((\d+) reads?, \d+ lookups?(?:; (\d+) tried again)?\)"
    found = re.search(said, result.stderr)
    assert found, result.stderr
    return int(found[2]), int(found[1].replace(",", "")), int(found[3] or 0)


def assert_same_export(local: Path, got: Path) -> None:
    a, b = np.load(local), np.load(got)
    assert sorted(a.files) == sorted(b.files) and a.files
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key])


@pytest.fixture(scope="module")
def local_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("local") / "local.npz"
    result = CliRunner().invoke(main, ["export", str(FIXTURES / ADAM), "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out


def object_gets(s3: SigningS3Server) -> list[Any]:
    return [r for r in s3.log.of(method="GET") if r.path != f"/{BUCKET}"]  # not s3fs's listings


def test_data_gets_go_to_presigned_urls_and_are_counted_as_served(s3, local_export, tmp_path):
    result = export(f"s3://{BUCKET}/{ADAM}", tmp_path / "out.npz")
    assert result.exit_code == 0, result.output
    assert_same_export(local_export, tmp_path / "out.npz")
    gets = s3.data_gets()
    assert gets and all(presigned for _, presigned in gets)  # every data GET, none through botocore's call
    # Lookups (HEADs) are the client's, signed in their headers.
    assert all(not presigned for method, _, presigned in s3.seen if method == "HEAD")
    reads, nbytes, retries = fetched(result)
    served = object_gets(s3)
    assert reads == len(served) and nbytes == sum(r.bytes for r in served) and retries == 0
    # The LSTM's bias, its slots and its kernel lie together: one GET, of just that span.
    assert len(gets) == 1 and s3.log.bytes(".data-00000-of-00001") == 8360 - 424


def test_a_refused_presigned_url_is_asked_again_through_the_client_and_not_used_again(s3, local_export, tmp_path):
    s3.refuse = -1
    result = export(f"s3://{BUCKET}/{ADAM}", tmp_path / "out.npz")
    assert result.exit_code == 0, result.output
    assert_same_export(local_export, tmp_path / "out.npz")
    gets = s3.data_gets()
    assert [presigned for _, presigned in gets] == [True, False]  # refused once, then the client's own GET
    reads, _, _ = fetched(result)
    assert reads == len(object_gets(s3)) + 1  # the refused GET was a request too (answered before the log)


def test_a_presigned_url_denied_for_good_fails_in_one_line_as_the_client_says(s3, tmp_path):
    s3.refuse = -1
    s3.denied = (f"/{BUCKET}/tf1_adam/model.ckpt.data",)  # the client's GET is refused too
    result = export(f"s3://{BUCKET}/{ADAM}", tmp_path / "out.npz", verbose=False)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and "access denied (Access Denied)" in lines[0], result.output
    assert "testing" not in result.output  # the credentials, never
    assert list(tmp_path.iterdir()) == []


def test_a_body_cut_short_is_tried_again(s3, local_export, tmp_path):
    s3.cut_after = 1000
    result = export(f"s3://{BUCKET}/{ADAM}", tmp_path / "out.npz")
    assert result.exit_code == 0, result.output
    assert_same_export(local_export, tmp_path / "out.npz")
    assert [presigned for _, presigned in s3.data_gets()] == [True, True]
    reads, nbytes, retries = fetched(result)
    assert retries == 1 and reads == len(object_gets(s3))
    assert nbytes == sum(r.bytes for r in object_gets(s3))  # the cut body's 1,000 bytes counted as served


def test_an_answer_that_never_comes_fails_in_one_line_after_the_tries(s3, tmp_path, monkeypatch):
    monkeypatch.setenv("LSTM_INSPECT_TIMEOUT", "1")
    monkeypatch.setenv("LSTM_INSPECT_RETRIES", "1")
    s3.stall = True
    try:
        result = export(f"s3://{BUCKET}/{ADAM}", tmp_path / "out.npz", verbose=False)
    finally:
        s3.release.set()
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and "2 tries" in lines[0], result.output
    assert list(tmp_path.iterdir()) == []
    assert [presigned for _, presigned in s3.data_gets()] == [True, True]


def test_requests_with_extra_arguments_go_through_the_client(s3, local_export, tmp_path, monkeypatch):
    from fsspec.config import conf

    monkeypatch.setitem(conf, "s3", {"requester_pays": True})  # each request says x-amz-request-payer
    _fresh_s3fs()
    result = export(f"s3://{BUCKET}/{ADAM}", tmp_path / "out.npz")
    assert result.exit_code == 0, result.output
    assert_same_export(local_export, tmp_path / "out.npz")
    gets = s3.data_gets()
    assert gets and not any(presigned for _, presigned in gets)


def test_a_span_larger_than_the_window_is_one_fetch_in_parallel_parts(s3, local_export, tmp_path, monkeypatch):
    # The sizes scaled down so that the 7,936-byte span (bias 256, its slots 512, kernel 7,168)
    # is larger than the window, as a 2048-unit layer's is at the real sizes.
    for name, value in (("_WINDOW", 4096), ("_PART", 1024), ("_DIRECT", 1024)):
        monkeypatch.setattr(remote, name, value)
    result = export(f"s3://{BUCKET}/{ADAM}", tmp_path / "out.npz")
    assert result.exit_code == 0, result.output
    assert_same_export(local_export, tmp_path / "out.npz")
    shard_gets = [r for r in s3.log.of(method="GET") if ".data-" in r.path]
    # As many parts of _PART or more as the span fills (7 of 1,134 bytes), which tile it: not the
    # kernel's parts and then the bias by itself.
    assert len(shard_gets) == 7936 // 1024
    ranges = sorted(tuple(int(n) for n in r.range.removeprefix("bytes=").split("-")) for r in shard_gets)
    assert ranges[0][0] == 424 and ranges[-1][1] == 8360 - 1
    assert all(a[1] + 1 == b[0] for a, b in zip(ranges, ranges[1:]))
    assert sum(r.bytes for r in shard_gets) == 8360 - 424


def test_a_tensor_beside_which_the_span_holds_much_is_not_fetched_with_it(s3, local_export, tmp_path, monkeypatch):
    # With little room beside a read, the large span's tensors are read one by one, as before.
    for name, value in (("_WINDOW", 4096), ("_PART", 1024), ("_DIRECT", 1024), ("_BESIDE", 256)):
        monkeypatch.setattr(remote, name, value)
    result = export(f"s3://{BUCKET}/{ADAM}", tmp_path / "out.npz")
    assert result.exit_code == 0, result.output
    assert_same_export(local_export, tmp_path / "out.npz")
    shard_gets = [r for r in s3.log.of(method="GET") if ".data-" in r.path]
    assert sum(r.bytes for r in shard_gets) == 256 + 7168  # the bias and the kernel, not the slots between
    assert len(shard_gets) == 1 + 7  # the bias; the kernel in parts of _PART


@pytest.mark.parametrize("command", [False, True])
def test_exit_collections_are_skipped_in_the_command_only(command):
    code = (
        "import atexit\n"
        + ("import lstm_inspect.__main__\n" if command else "")
        + "from lstm_inspect.readers import remote\n"
        "before = atexit._ncallbacks()\n"
        "remote._skip_exit_collections(); remote._skip_exit_collections()\n"
        "print(atexit._ncallbacks() - before)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ("1" if command else "0")


def test_a_kept_connection_is_used_again_and_one_the_server_closed_is_replaced(tmp_path):
    import socket
    from urllib.parse import urlsplit

    from .servers import HTTPFileServer

    (tmp_path / "blob").write_bytes(bytes(range(256)) * 64)
    with HTTPFileServer(tmp_path) as http:  # keep-alive, as S3 is (moto closes every connection)
        url = f"{http.url}/blob"
        used = []
        for start in (0, 100, 5000):
            buffer = bytearray(1000)
            sink, connection = remote._Sink([memoryview(buffer)]), []
            assert remote._ranged_get(url, url, None, start, sink, connection)
            assert bytes(buffer) == (bytes(range(256)) * 64)[start : start + 1000] and sink.got == 1000
            used.append(connection[0])
            if start == 100:  # the server's side goes: the next request finds it closed
                connection[0].sock.shutdown(socket.SHUT_WR)
        assert used[0] is used[1] is not used[2]  # kept, then replaced, and no retry counted for it
        assert [r.range for r in http.log.of("/blob", "GET")] == ["bytes=0-999", "bytes=100-1099", "bytes=5000-5999"]
        parts = urlsplit(url)
        remote._IDLE.pop((parts.scheme, parts.hostname, parts.port, id(None)), None)
