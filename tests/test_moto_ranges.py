"""tests/moto_ranges.py: the S3 server of the remote tests and the benchmark answers a ranged GET
by reading only its range from the key's storage, and answers every request exactly as moto does
unchanged (a second, unpatched server in this process: moto's objects are process-wide, so both
serve the same ones): the same status, body, headers, ETag and error codes, S3's range rules
(suffix, open-ended, clipped, 416 past the end, a multi-range or unparsable one ignored)."""

from __future__ import annotations

from typing import Any

import pytest

from . import moto_ranges
from .servers import S3Server

BUCKET = "moto-ranges"
MiB = 1 << 20
# One object kept in the spooled file's memory, one rolled over to disk (moto's buffer is
# S3_UPLOAD_PART_MIN_SIZE - 1024 bytes: moto/settings.py get_s3_default_key_buffer_size).
SIZES = {"small": 3001, "large": 6 * MiB + 7}
VOLATILE = {"date", "x-amzn-requestid"}  # differ between any two answers


def content(size: int) -> bytes:
    return bytes((i * 7 + i // 251) % 256 for i in range(size))


@pytest.fixture(scope="module")
def servers():
    import boto3

    with S3Server() as patched, S3Server(exact_ranges=False) as plain:
        clients = [
            boto3.client(
                "s3",
                endpoint_url=server.url,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                region_name="us-east-1",
            )
            for server in (patched, plain)
        ]
        clients[0].create_bucket(Bucket=BUCKET)
        for name, size in SIZES.items():
            clients[0].put_object(Bucket=BUCKET, Key=name, Body=content(size))
        yield patched, clients


def answer(client: Any, method: str, **kwargs: Any) -> tuple[int, dict[str, str], bytes | str]:
    """Status, headers (less the volatile ones) and body, or the error code for an error."""
    from botocore.exceptions import ClientError

    try:
        response = getattr(client, method)(Bucket=BUCKET, **kwargs)
        body: bytes | str = response["Body"].read() if "Body" in response else b""
    except ClientError as error:
        response, body = error.response, error.response["Error"]["Code"]
    metadata = response["ResponseMetadata"]
    headers = {k: v for k, v in metadata["HTTPHeaders"].items() if k not in VOLATILE}
    return metadata["HTTPStatusCode"], headers, body


def s3_range(header: str, size: int) -> tuple[int, int, int]:
    """(status, first, stop) S3 answers a single `bytes=` range with (RFC 9110 14.1.2; S3's
    GetObject ignores a range it cannot parse or satisfy only in part and answers 200 whole)."""
    first_text, _, last_text = header.removeprefix("bytes=").partition("-")
    if not first_text:
        suffix = int(last_text)
        return (416, 0, 0) if suffix == 0 else (206, max(0, size - suffix), size)
    first = int(first_text)
    if first >= size:
        return 416, 0, 0
    stop = size if not last_text else min(size, int(last_text) + 1)
    return (200, 0, size) if stop <= first else (206, first, stop)


def ranges(size: int) -> list[str]:
    return [
        "bytes=0-0",
        "bytes=0-9",
        f"bytes=100-{size // 2}",
        f"bytes={size - 1}-{size - 1}",
        f"bytes={size // 3}-",  # open-ended
        "bytes=-1",  # suffix
        "bytes=-17",
        f"bytes=-{size}",
        f"bytes=-{size + 1000}",  # a suffix longer than the object: all of it, 206
        f"bytes=5-{size + 1000}",  # clipped to the end
        f"bytes={size}-",  # past the end: 416
        f"bytes={size + 5}-{size + 9}",
        "bytes=-0",
        "bytes=9-3",  # last before first: not a range, 200 whole
    ]


@pytest.mark.parametrize("name", list(SIZES))
def test_a_ranged_get_returns_the_asked_bytes_as_moto_does(servers, name):
    _, (patched, plain) = servers
    size, data = SIZES[name], content(SIZES[name])
    for header in ranges(size):
        status, first, stop = s3_range(header, size)
        got = answer(patched, "get_object", Key=name, Range=header)
        assert got == answer(plain, "get_object", Key=name, Range=header), header
        assert got[0] == status, header
        if status == 416:
            assert got[2] == "InvalidRange", header
        else:
            assert got[2] == data[first:stop] and int(got[1]["content-length"]) == stop - first, header
            assert got[1].get("content-range") == (f"bytes {first}-{stop - 1}/{size}" if status == 206 else None)


@pytest.mark.parametrize(
    "request_",
    [
        dict(method="get_object"),
        dict(method="get_object", Range="bytes=0-1,4-5"),  # multi-range: moto answers 200 whole
        dict(method="get_object", Range="bytes=abc-"),  # unparsable: 200 whole
        dict(method="get_object", Range="bytes=10-20", ChecksumMode="ENABLED"),
        dict(method="get_object", ChecksumMode="ENABLED"),
        dict(method="get_object", PartNumber=1),
        dict(method="get_object", PartNumber=2),
        dict(method="get_object", Range="bytes=10-20", IfMatch='"not-the-etag"'),
        dict(method="get_object", Range="bytes=10-20", IfNoneMatch="*etag*"),  # * replaced below
        dict(method="get_object", Key="absent", Range="bytes=0-9"),
        dict(method="head_object"),
        dict(method="head_object", Range="bytes=10-20"),
        dict(method="head_object", Range="bytes=999999999-"),
    ],
    ids=lambda r: "-".join(f"{v}" for v in r.values()),
)
def test_every_other_request_is_answered_as_moto_does(servers, request_):
    _, (patched, plain) = servers
    kwargs = {"Key": "large", **request_}
    method = kwargs.pop("method")
    if kwargs.get("IfNoneMatch") == "*etag*":  # the object's own ETag: 304 Not Modified
        kwargs["IfNoneMatch"] = plain.head_object(Bucket=BUCKET, Key="large")["ETag"]
    got = answer(patched, method, **kwargs)
    assert got == answer(plain, method, **kwargs)
    expected_status = {"PartNumber": 206 if kwargs.get("PartNumber") == 1 else 416, "IfMatch": 412}
    for name, status in expected_status.items():
        if name in kwargs:
            assert got[0] == status
    if "IfNoneMatch" in kwargs:
        assert got[0] == 304
    if kwargs["Key"] == "absent":
        assert got[:1] == (404,)
    if method == "get_object" and got[0] == 200:
        assert got[2] == content(SIZES["large"])


class CountingBuffer:
    """A key's spooled file, counting the bytes read out of it."""

    def __init__(self, buffer: Any) -> None:
        self.buffer = buffer
        self.read_bytes = 0

    def read(self, *args: Any) -> bytes:
        chunk = self.buffer.read(*args)
        self.read_bytes += len(chunk)
        return chunk

    def __getattr__(self, name: str) -> Any:
        return getattr(self.buffer, name)


def test_a_ranged_get_reads_only_its_range(servers):
    from moto.s3.models import s3_backends

    patched_server, (patched, plain) = servers
    assert patched_server.exact_ranges  # what the remote tests and the benchmark get
    size = SIZES["large"]
    key = s3_backends["123456789012"]["aws"].get_object(BUCKET, "large")
    patched.head_object(Bucket=BUCKET, Key="large")  # moto computes a put object's ETag once, on first use
    counting = CountingBuffer(key._value_buffer)
    key._value_buffer = counting
    try:
        for header, length in (("bytes=1000-66535", 65536), ("bytes=-10", 10), (f"bytes={size - 3}-", 3)):
            counting.read_bytes = 0
            assert len(answer(patched, "get_object", Key="large", Range=header)[2]) == length
            assert counting.read_bytes == length, header
            counting.read_bytes = 0
            answer(plain, "get_object", Key="large", Range=header)
            assert counting.read_bytes == size, header  # moto as it comes reads it all
        counting.read_bytes = 0
        assert len(answer(patched, "get_object", Key="large")[2]) == size
        assert counting.read_bytes == size
        counting.read_bytes = 0
        assert answer(patched, "get_object", Key="large", Range=f"bytes={size}-")[0] == 416
        assert counting.read_bytes == 0
    finally:
        key._value_buffer = counting.buffer


def test_a_moto_without_what_the_patch_needs_is_refused_by_name(monkeypatch):
    from moto.s3.responses import S3Response

    assert moto_ranges.missing() == []
    monkeypatch.delattr(S3Response, "_handle_range_header")
    assert moto_ranges.missing() == ["S3Response._handle_range_header"]
    monkeypatch.setattr(moto_ranges, "_installed", [])
    with pytest.raises(moto_ranges.MotoChanged, match=r"lacks S3Response\._handle_range_header"):
        moto_ranges.install()
