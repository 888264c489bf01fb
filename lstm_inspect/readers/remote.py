"""Remote files (s3://, gs://, http(s)://, any fsspec URL) read by byte ranges, never whole.

files.py sends every URL here; local paths never come here, and fsspec is imported only here.
A `RemoteFile` is a seekable binary file object (seek, tell, read, readinto), so the readers use it
as they use a local file; under it:

- Reads of 4 MiB or more go straight into the caller's buffer, fetched as at most 8 parts at once
  (8 MiB each at least). Over HTTP each part is one streaming GET whose body is copied into the
  buffer 1 MiB at a time as it arrives, and over S3 one GET of a presigned URL whose body is read
  straight into it (`_S3Object`), so that a tensor costs its own bytes and a few MiB of body in
  flight whatever its size; other file systems answer a request with its whole body, so there
  the parts are 8 MiB, and at most 64 MiB of them are in flight.
- Smaller reads (index blocks, HDF5 metadata, zip directories) go through a read-ahead cache of
  64 MiB in all: a miss fetches 64 KiB from the 16 KiB boundary below it (a read near the end
  fetches the last 64 KiB, where a table's footer and a zip's directory are), doubling up to
  8 MiB while reads stay sequential.
- A reader that knows what it will read next (the blocks of a TF index, the tensors of a layer
  about to be exported) says so with `advise`; those ranges are coalesced across gaps of up to
  64 KiB into spans, and a read in one fetches its span, one request for the whole span (and the
  advised spans after it, up to 32 MiB in all, in parallel) into the cache: a layer whose bias
  and kernel lie together costs one request, not one per tensor or per 8 MiB. Servers that
  answer each request at a cost of their own (moto reads the whole object for every ranged GET)
  and networks with a long round trip both pay per request. A span larger than that is read
  whole in parallel parts when it is the read's tensor and at most 2 MiB beside it (a large
  kernel, and its bias and the bias's slots), else as any large read is.
- Every request is bounded in time (LSTM_INSPECT_TIMEOUT seconds, default 60), tried again on a
  transient failure (a 5xx, a cut connection, a stall, a short body; LSTM_INSPECT_RETRIES more
  times, default 3), and counted (`transfers()`), so that the CLI can say what crossed the network.
- An HTTP server that ignores Range requests (200 and the whole body) is read whole only when the
  file is at most 64 MiB; a larger one is refused before its body is read.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import errno
import os
import socket
import sys
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import field
from typing import Any, TypeVar

from ..errors import FileNotFound, LstmInspectError, RemoteError, UnsupportedFormat, warn
from ..records import frozen_record, record
from .ranges import Seekable
from .urls import display_url, mask_secrets, real_url, url_split

__all__ = ["RemoteFile", "Transfers", "exists", "is_dir", "list_dir", "look_up", "new_session", "open_remote"]

KiB, MiB = 1 << 10, 1 << 20
_READAHEAD = 64 * KiB
_ALIGN = 16 * KiB
_MAX_READAHEAD = 8 * MiB
_DIRECT = 4 * MiB
_PART = 8 * MiB  # the smallest part of a large read; the largest where bodies are not streamed
_PARALLEL = 8
_WINDOW = 32 * MiB
_CHUNK = MiB  # a streamed body is copied into its buffer this much at a time
_MAX_GAP = 64 * KiB
_BESIDE = 2 * MiB  # what a span larger than _WINDOW may hold beside the read that fetches it whole
_CACHE_BYTES = 64 * MiB
_WHOLE_BODY_LIMIT = 64 * MiB
_SIGNED_FOR = 3600  # seconds a presigned S3 URL is good for
_SIGNED_REUSE = 600  # seconds one is used for: every request it signs has most of its hour left

# The extra that installs each scheme's fsspec implementation (pyproject.toml).
_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "http": "http", "https": "http"}
# errno values of OSErrors that another try cannot fix (s3fs/errors.py maps S3 error codes to these).
_PERMANENT_ERRNOS = {errno.EINVAL, errno.EPERM, errno.EACCES, errno.ENOENT, errno.ENOSYS, errno.ENAMETOOLONG}
# Exception classes, by name, of failures of the connection rather than of the request: aiohttp's,
# botocore's (HTTPClientError, ResponseStreamingError...), http.client's. Named, not imported:
# which of those packages is installed depends on the extras.
_TRANSIENT_NAMES = {
    "ClientConnectionError", "ClientPayloadError", "ServerDisconnectedError", "ServerTimeoutError",
    "HTTPClientError", "ResponseStreamingError", "IncompleteReadError", "IncompleteRead",
    "ReadTimeoutError", "ConnectTimeoutError", "EndpointConnectionError", "ConnectionClosedError",
}  # fmt: skip
_CREDENTIAL_NAMES = ("NoCredentialsError", "PartialCredentialsError", "RefreshError", "DefaultCredentialsError")

_T = TypeVar("_T")


@frozen_record
class _Settings:
    timeout: float
    retries: int


def _settings() -> _Settings:
    def number(name: str, default: float) -> float:
        try:
            return max(0.0, float(os.environ.get(name, default)))
        except ValueError:
            return default

    return _Settings(number("LSTM_INSPECT_TIMEOUT", 60.0) or 60.0, int(number("LSTM_INSPECT_RETRIES", 3)))


# --- what crossed the network ----------------------------------------------------------------


@record
class Transfers:
    """Requests made and bytes received, in all and per file (display URLs)."""

    reads: int = 0  # ranged GETs
    lookups: int = 0  # HEADs, stats, listings
    bytes: int = 0
    retries: int = 0
    files: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.reads + self.lookups,
            "reads": self.reads,
            "lookups": self.lookups,
            "bytes": self.bytes,
            "retries": self.retries,
            "files": {url: dict(counts) for url, counts in self.files.items()},
        }


_TRANSFERS = Transfers()
_TRANSFERS_LOCK = threading.Lock()


def _count(url: str, reads: int = 0, lookups: int = 0, nbytes: int = 0, retries: int = 0) -> None:
    with _TRANSFERS_LOCK:
        t = _TRANSFERS
        t.reads, t.lookups, t.bytes, t.retries = (
            t.reads + reads,
            t.lookups + lookups,
            t.bytes + nbytes,
            t.retries + retries,
        )
        counts = t.files.setdefault(url, {"reads": 0, "lookups": 0, "bytes": 0})
        counts["reads"] += reads
        counts["lookups"] += lookups
        counts["bytes"] += nbytes


def transfers() -> Transfers:
    """A copy of the counts since the last reset_transfers()."""
    with _TRANSFERS_LOCK:
        t = _TRANSFERS
        return Transfers(t.reads, t.lookups, t.bytes, t.retries, {u: dict(c) for u, c in t.files.items()})


def reset_transfers() -> None:
    global _TRANSFERS
    with _TRANSFERS_LOCK:
        _TRANSFERS = Transfers()


# --- errors ----------------------------------------------------------------------------------


class _Transient(Exception):
    """A failure another try may not have: a 5xx, a body cut short."""


class _Refused(Exception):
    """An HTTP answer no retry changes (a 4xx other than 401, 403, 404)."""


class _RangeIgnored(Exception):
    """The server answered a Range request with the whole body, and the file is too large to take."""

    def __init__(self, size: int | None) -> None:
        super().__init__(size)
        self.size = size


def _transient(e: BaseException) -> bool:
    if isinstance(e, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)):
        return False
    if isinstance(e, (_Transient, TimeoutError, asyncio.TimeoutError, ConnectionError)):
        return True
    if any(cls.__name__ in _TRANSIENT_NAMES for cls in type(e).__mro__):
        return True
    return isinstance(e, OSError) and e.errno not in _PERMANENT_ERRNOS


def _reason(e: BaseException) -> str:
    if isinstance(e, (TimeoutError, asyncio.TimeoutError)) and not str(e):
        return f"no answer within {_settings().timeout:g} s"
    text = str(e).strip() or type(e).__name__
    return mask_secrets(text if isinstance(e, (_Transient, _Refused, OSError)) else f"{type(e).__name__}: {text}")


def _failure(e: BaseException, url: str, what: str, attempts: int) -> LstmInspectError:
    """The one-line error for what a request to `url` (for `what`) ended with."""
    if isinstance(e, LstmInspectError):
        return e
    names = [cls.__name__ for cls in type(e).__mro__]
    if any(name in _CREDENTIAL_NAMES for name in names):
        return RemoteError(
            f"{url}: no valid credentials ({_reason(e)}); set them up as the provider's own tools expect "
            "(AWS: the AWS_* variables, ~/.aws, `aws sso login`; Google: `gcloud auth application-default login`)"
        )
    if isinstance(e, FileNotFoundError):
        return FileNotFound(f"{url}: no such {what}")
    if isinstance(e, PermissionError):
        return RemoteError(
            f"{url}: access denied ({_reason(e)}); check that your credentials are valid, not expired, "
            "and allowed to read it"
        )
    if isinstance(e, _RangeIgnored):
        size = f"{e.size:,}-byte" if e.size is not None else f"more than {_WHOLE_BODY_LIMIT:,}-byte"
        return RemoteError(
            f"{url}: the server ignores HTTP Range requests (it answered with the whole {size} file), and "
            f"lstm-inspect reads only the bytes it needs, never a whole file over {_WHOLE_BODY_LIMIT // MiB} MiB: "
            "download it first and give the local copy"
        )
    if _transient(e):
        tries = f"{attempts} tries" if attempts > 1 else "1 try"
        return RemoteError(f"{url}: reading the {what} failed ({_reason(e)}; {tries}); try again later")
    return RemoteError(f"{url}: cannot read the {what} ({_reason(e)})")


# --- file systems ----------------------------------------------------------------------------


def _filesystem(url: str) -> tuple[Any, str]:
    """The fsspec file system of a display URL, and the path it knows the file by."""
    scheme = url.split(":", 1)[0].lower()
    extra = _EXTRAS.get(scheme)
    hint = f"pip install 'lstm-inspect[{extra}]'" if extra else f"install the fsspec implementation of {scheme}://"
    try:
        import fsspec.core  # type: ignore[import-untyped]
    except ImportError:
        raise RemoteError(f"{url}: reading {scheme}:// URLs needs fsspec: {hint}") from None
    _skip_exit_collections()
    try:
        fs, path = fsspec.core.url_to_fs(real_url(url), **_options(scheme))
    except ImportError as e:
        raise RemoteError(
            f"{url}: reading {scheme}:// URLs needs a package that is not installed ({e}): {hint}"
        ) from None
    except ValueError as e:
        if "Protocol not known" in str(e):
            raise RemoteError(f"{url}: fsspec knows no {scheme}:// file system; give a local path or a URL") from None
        raise RemoteError(f"{url}: {mask_secrets(str(e))}") from None
    if scheme in ("s3", "s3a"):
        # s3fs tries a request `retries` times (5) before its caller sees a failure
        # (s3fs/core.py _error_wrapper); a class attribute, not an option. Once, here: the
        # retries are this module's, counted and bounded in time.
        fs.retries = 1
    return fs, path


_EXIT_HOOKED = threading.Event()


def _skip_exit_collections() -> None:
    """In the lstm-inspect command, once a file system is imported: no garbage collection at
    exit, as cli.py's summary has. The interpreter's last collections walk every object still
    alive (Py_FinalizeEx, finalize_modules), and s3fs, botocore and aiohttp leave some 70,000 (the
    S3 service model's dicts, their modules' functions): 0.15 s of a command's exit, for memory
    the process is about to give back whole. Only in the command (its script, or `python -m`),
    whose files are written and closed before it exits: a program using the library may rely on
    its cycles' finalizers running at exit."""
    if _EXIT_HOOKED.is_set():
        return
    _EXIT_HOOKED.set()
    main = sys.modules.get("__main__")
    if "lstm_inspect.__main__" in sys.modules or getattr(getattr(main, "__spec__", None), "name", "") == (
        "lstm_inspect.__main__"
    ):
        import atexit
        import gc

        atexit.register(gc.freeze)


def _options(scheme: str) -> dict[str, Any]:
    """Storage options: every retry is this module's, so that each is counted and the time each
    may take is bounded; what the user's fsspec configuration sets wins."""
    if scheme not in ("s3", "s3a"):
        return {}
    from fsspec.config import conf  # type: ignore[import-untyped]

    timeout = _settings().timeout
    user = dict(conf.get("s3", {}))
    config = {"connect_timeout": timeout, "read_timeout": timeout, "retries": {"max_attempts": 1}}
    config.update(user.pop("config_kwargs", {}))
    return {**user, "config_kwargs": config}


class _Object:
    """One remote file (or directory): where it is, what a lookup said of it, and how to fetch bytes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.fs, self.fs_path = _filesystem(url)
        self._info: dict[str, Any] | None = None
        self._looked_up = False
        self._lock = threading.Lock()

    # -- running requests: all of them run on fsspec's event loop, tried and counted here

    def _run(self, coroutine: Callable[[], Awaitable[_T]]) -> _T:
        import fsspec.asyn  # type: ignore[import-untyped]

        loop = self.fs.loop if self.fs.async_impl else fsspec.asyn.get_loop()
        return fsspec.asyn.sync(loop, coroutine)

    async def _tried(self, what: str, request: Callable[[], Awaitable[_T]]) -> _T:
        settings = _settings()
        for attempt in range(settings.retries + 1):
            try:
                return await asyncio.wait_for(request(), settings.timeout)
            except Exception as e:
                if not _transient(e) or attempt == settings.retries:
                    raise _failure(e, self.url, what, attempt + 1) from None
                _count(self.url, retries=1)
                await asyncio.sleep(min(2.0, 0.1 * 2**attempt))
        raise AssertionError("unreachable")

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """A file system method, awaited where the file system is asynchronous, else in a thread."""
        if self.fs.async_impl:
            return await getattr(self.fs, "_" + name)(*args, **kwargs)
        return await asyncio.to_thread(getattr(self.fs, name), *args, **kwargs)

    # -- lookups

    async def _stat(self) -> dict[str, Any] | None:
        _count(self.url, lookups=1)
        try:
            return dict(await self._call("info", self.fs_path))
        except FileNotFoundError:
            return None
        except Exception as e:
            if _transient(e):
                raise
            # The answer to a HEAD has no body, so no error code: S3 says "Bad Request" for an
            # expired token. A GET of one byte has the body that says why.
            _count(self.url, reads=1)
            try:
                await self._call("cat_file", self.fs_path, start=0, end=1)
            except Exception as detail:
                if not (_transient(detail) or isinstance(detail, FileNotFoundError)):
                    raise detail from None
            raise

    def info(self, what: str = "file") -> dict[str, Any] | None:
        """What a lookup says of it ("size", "type"), None when nothing is there; looked up once."""
        with self._lock:
            if not self._looked_up:
                self._info = self._run(lambda: self._tried(what, self._stat))
                self._looked_up = True
            return self._info

    def learn(self, info: dict[str, Any] | None) -> None:
        with self._lock:
            self._info, self._looked_up = info, True

    def is_dir(self) -> bool:
        if self.url.endswith("/"):
            return True
        info = self.info()
        return info is not None and info.get("type") == "directory"

    def size(self, what: str) -> int:
        info = self.info(what)
        if info is None:
            raise FileNotFound(f"{self.url}: no such {what}")
        if info.get("type") == "directory":
            raise UnsupportedFormat(f"{self.url}: is a directory; lstm-inspect reads regular files only")
        size = info.get("size")
        if not isinstance(size, int) or size < 0:
            raise RemoteError(
                f"{self.url}: the server does not say how large the {what} is, so it cannot be read in ranges"
            )
        return size

    def list_dir(self) -> list[dict[str, Any]]:
        async def listing() -> list[dict[str, Any]]:
            _count(self.url, lookups=1)
            try:
                return list(await self._call("ls", self.fs_path.rstrip("/"), detail=True))
            except (FileNotFoundError, NotADirectoryError):
                return []

        return self._run(lambda: self._tried("directory", listing))

    # -- reading

    # Whether a request's body is streamed into its buffer (bounded memory whatever its size), or
    # comes whole (fsspec's cat_file), so that a request must be kept to _PART bytes.
    streams = False

    async def _get_into(self, start: int, sink: _Sink) -> None:
        """Bytes [start, start + sink.size) into sink, one request, counted."""
        _count(self.url, reads=1)
        data = await self._call("cat_file", self.fs_path, start=start, end=start + sink.size)
        _count(self.url, nbytes=len(data))
        sink.write(data)

    async def _fetch_into(self, start: int, sink: _Sink, what: str) -> None:
        async def one() -> None:
            sink.restart()
            await self._get_into(start, sink)
            if sink.got < sink.size:
                raise _Transient(f"the server sent {sink.got:,} of the {sink.size:,} bytes asked for")
            if sink.got > sink.size:
                raise _Refused(f"the server sent {sink.got:,} bytes for a request of {sink.size:,}")

        await self._tried(what, one)

    def fetch(self, ranges: list[tuple[int, list[memoryview]]], what: str) -> None:
        """Fetch each range, one request each, _PARALLEL at a time: (start, buffers) asks for the
        bytes from start on that fill the buffers, one after the other. The first failure stops
        the rest."""

        async def all_of_them() -> None:
            gate = asyncio.Semaphore(_PARALLEL)

            async def one(start: int, views: list[memoryview]) -> None:
                async with gate:
                    await self._fetch_into(start, _Sink(views), what)

            tasks = [asyncio.ensure_future(one(start, views)) for start, views in ranges]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    if task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
            finally:
                for task in tasks:
                    task.cancel()

        if ranges:
            self._run(all_of_them)


class _HTTPObject(_Object):
    """fsspec's HTTP file system answers a 403 as "not found" and reads whatever body a Range request
    gets, however large (fsspec/implementations/http.py _info, _cat_file): these requests go through
    its aiohttp session, with the status and the size checked before a body is read."""

    streams = True

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.whole: bytes | None = None  # the body of a server that ignores Range requests
        self.told_whole = False

    async def _request(self, method: str, headers: dict[str, str]) -> Any:
        session = await self.fs.set_session()
        kwargs = dict(self.fs.kwargs)
        headers = {**(kwargs.pop("headers", None) or {}), "Accept-Encoding": "identity", **headers}
        return session.request(method, self.fs.encode_url(self.fs_path), headers=headers, **kwargs)

    @staticmethod
    def _check(status: int, reason: str | None) -> None:
        if status in (200, 206):
            return
        said = f"HTTP {status} {reason or ''}".strip()
        if status in (404, 410):
            raise FileNotFoundError(said)
        if status in (401, 403):
            raise PermissionError(said)
        if status >= 500 or status in (408, 429):
            raise _Transient(said)
        raise _Refused(said)

    async def _stat(self) -> dict[str, Any] | None:
        _count(self.url, lookups=1)
        try:
            async with await self._request("HEAD", {}) as r:
                if r.status not in (405, 501):  # HEAD not allowed: ask for one byte instead
                    self._check(r.status, r.reason)
                    if r.content_length is not None and "Content-Length" in r.headers:
                        return {"type": "file", "size": r.content_length}
            _count(self.url, lookups=1)
            async with await self._request("GET", {"Range": "bytes=0-0"}) as r:
                self._check(r.status, r.reason)
                total = r.headers.get("Content-Range", "").rpartition("/")[2]
                if r.status == 206 and total.isdigit():
                    return {"type": "file", "size": int(total)}
                return {"type": "file", "size": r.content_length}
        except FileNotFoundError:
            return None

    async def _get_into(self, start: int, sink: _Sink) -> None:
        if self.whole is None:
            _count(self.url, reads=1)
            async with await self._request("GET", {"Range": f"bytes={start}-{start + sink.size - 1}"}) as r:
                self._check(r.status, r.reason)
                if r.status == 206:
                    await _stream_into(self.url, r.content, sink)
                    return
                await self._take_whole(r)
        assert self.whole is not None
        sink.write(memoryview(self.whole)[start : start + sink.size])

    async def _take_whole(self, r: Any) -> None:
        # 200: the whole body is coming. Take it only when it is small, and stop reading as soon
        # as it proves larger than it said.
        if r.content_length is not None and r.content_length > _WHOLE_BODY_LIMIT:
            raise _RangeIgnored(r.content_length)
        body = bytearray()
        async for chunk in r.content.iter_chunked(_CHUNK):
            body += chunk
            if len(body) > _WHOLE_BODY_LIMIT:
                raise _RangeIgnored(None)
        _count(self.url, nbytes=len(body))
        self.whole = bytes(body)

    def list_dir(self) -> list[dict[str, Any]]:
        return []  # HTTP has no listing; fsspec's scrapes a page's links, which says nothing here


async def _stream_into(url: str, content: Any, sink: _Sink) -> None:
    """An aiohttp response's body (its `content`) into sink as it comes, counted."""
    async for chunk in content.iter_chunked(_CHUNK):
        _count(url, nbytes=len(chunk))
        sink.write(chunk)


# s3fs file systems whose store refused a presigned URL, or whose requests take a way of their own
# (a proxy, a client certificate, another HTTP client): read through their client alone.
_UNSIGNED: weakref.WeakSet[Any] = weakref.WeakSet()


class _S3Object(_Object):
    """A ranged GET through s3fs's client costs some 3 ms of botocore's Python (validating,
    serializing, resolving the endpoint, signing, parsing the answer: aiobotocore/client.py
    _make_api_call), and its body comes through aiohttp's protocol a socket read (256 KiB) at a
    time, copied once more into the buffer: twice the CPU of the same bytes read into their
    buffer by a blocking socket (recv_into), the GIL let go meanwhile. So a ranged GET is made of
    a presigned URL of the object (s3fs's `url`: signed locally, once per object and
    _SIGNED_REUSE seconds), by http.client in a thread of its own, with the TLS verification the
    client's own HTTP session has (botocore's `verify`: AWS_CA_BUNDLE, ca_bundle, certifi's), its
    body read straight into the buffer. An answer other than 206 (an error, whose reason is in a
    body this leaves unread) is asked again through the client, whose errors say why (s3fs's
    _error_wrapper, errors.py translate_boto_error). A file system is read through its client
    alone once its store refused a presigned URL that the client could read (botocore signs them
    with SigV2 in the older regions, which a bucket may refuse: botocore/client.py
    _default_s3_presign_to_sigv2), and always where its requests need more than that: extra
    arguments (requester pays, server-side encryption keys), a proxy, a client certificate."""

    streams = True

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._signed: tuple[str, float] | None = None  # a presigned URL, and when it was made
        self._signing = asyncio.Lock()

    async def _get_into(self, start: int, sink: _Sink) -> None:
        url = await self._signed_url()
        if url is not None:
            tls = await self._tls(url)
            if tls is not False and await _get_into_by_socket(self.url, url, tls, start, sink):
                return
            sink.restart()
            await self._get_through_client(start, sink)
            _UNSIGNED.add(self.fs)  # the client read what the presigned URL could not
            return
        await self._get_through_client(start, sink)

    async def _signed_url(self) -> str | None:
        fs = self.fs
        if fs in _UNSIGNED or getattr(fs, "req_kw", None) or getattr(fs, "s3_additional_kwargs", None):
            return None
        async with self._signing:
            if self._signed is None or time.monotonic() - self._signed[1] > _SIGNED_REUSE:
                self._signed = (await fs._url(self.fs_path, expires=_SIGNED_FOR), time.monotonic())
            return self._signed[0]

    async def _tls(self, url: str) -> Any:
        """The SSL context for `url` as the client's HTTP session verifies (None for http://);
        False where its requests take a way of their own (aiobotocore/httpsession.py)."""
        client = await self.fs.get_s3(self.fs.split_path(self.fs_path)[0])
        session = getattr(getattr(client, "_endpoint", None), "http_session", None)
        verify = getattr(session, "_verify", None)
        proxies = getattr(session, "_proxy_config", None)
        if (
            type(session).__name__ != "AIOHTTPSession"
            or verify is None
            or getattr(session, "_cert_file", None)
            or proxies is None
            or proxies.proxy_url_for(url)
        ):
            _UNSIGNED.add(self.fs)
            return False
        if not url.startswith("https:"):
            return None
        return _ssl_context(verify)

    async def _get_through_client(self, start: int, sink: _Sink) -> None:
        from s3fs.core import version_id_kw  # type: ignore[import-untyped]

        bucket, key, version = self.fs.split_path(self.fs_path)
        _count(self.url, reads=1)
        # _call_s3 turns S3's errors into OSErrors (PermissionError, FileNotFoundError...) as
        # cat_file's do: s3fs/core.py _error_wrapper, errors.py translate_boto_error.
        answer = await self.fs._call_s3(
            "get_object",
            Bucket=bucket,
            Key=key,
            Range=f"bytes={start}-{start + sink.size - 1}",
            **version_id_kw(version),
        )
        body = answer["Body"]
        try:
            async for chunk in body.iter_chunks(_CHUNK):
                _count(self.url, nbytes=len(chunk))
                sink.write(chunk)
        finally:
            body.close()


_SSL_CONTEXTS: dict[Any, Any] = {}
_SSL_LOCK = threading.Lock()


def _ssl_context(verify: bool | str) -> Any:
    """An SSL context verifying as botocore does with `verify` (botocore/httpsession.py
    get_cert_path, aiobotocore/httpsession.py _build_verify_context), made once."""
    with _SSL_LOCK:
        found = _SSL_CONTEXTS.get(verify)
    if found is None:
        import ssl

        from botocore.httpsession import get_cert_path  # type: ignore[import-untyped]

        if verify is False:
            found = ssl.create_default_context()
            found.check_hostname, found.verify_mode = False, ssl.CERT_NONE
        else:
            found = ssl.create_default_context(cafile=get_cert_path(verify))
        with _SSL_LOCK:
            found = _SSL_CONTEXTS.setdefault(verify, found)
    return found


async def _get_into_by_socket(shown: str, url: str, tls: Any, start: int, sink: _Sink) -> bool:
    """GET bytes [start, start + sink.size) of `url` by http.client, in a thread of its own, the
    body read straight into sink's buffers; counted as a read of `shown`. False, the body unread,
    when the answer is not those bytes (not 206, or another length)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bool] = loop.create_future()
    connection: list[Any] = []  # the thread's, to close when the request is given up

    def settle(result: bool, error: BaseException | None) -> None:
        if done.done():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)

    def run() -> None:
        result, error = False, None
        try:
            result = _ranged_get(shown, url, tls, start, sink, connection)
        except BaseException as e:  # handed to the loop, which raises it in the awaiting request
            error = e
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    _count(shown, reads=1)
    # A daemon thread, not the loop's executor: the executor's threads are waited for at exit,
    # and one given up (a timeout, a Ctrl-C) must not hold the process until its read ends.
    threading.Thread(target=run, name="lstm-inspect GET", daemon=True).start()
    try:
        return await asyncio.shield(done)
    except BaseException:
        for c in connection:  # given up (a timeout, another part failed): the thread's read ends now
            with contextlib.suppress(OSError, AttributeError):
                c.sock.shutdown(socket.SHUT_RDWR)  # close() would not wake a blocked recv
        raise


# Connections kept open between requests, by (scheme, host, port, SSL context): a TLS handshake
# costs round trips of its own. At most _PARALLEL each.
_IDLE: dict[tuple[Any, ...], list[Any]] = {}
_IDLE_LOCK = threading.Lock()


def _connection(parts: Any, tls: Any) -> tuple[Any, bool]:
    """A kept connection to the URL's server, or a new one; and whether it was kept."""
    import http.client

    key = (parts.scheme, parts.hostname, parts.port, id(tls))
    with _IDLE_LOCK:
        idle = _IDLE.get(key)
        if idle:
            return idle.pop(), True
    timeout = _settings().timeout
    if parts.scheme == "https":
        return http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=timeout, context=tls), False
    return http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout), False


def _keep(parts: Any, tls: Any, c: Any) -> None:
    key = (parts.scheme, parts.hostname, parts.port, id(tls))
    with _IDLE_LOCK:
        idle = _IDLE.setdefault(key, [])
        if len(idle) < _PARALLEL:
            idle.append(c)
            return
    c.close()


def _ranged_get(shown: str, url: str, tls: Any, start: int, sink: _Sink, connection: list[Any]) -> bool:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = {"Range": f"bytes={start}-{start + sink.size - 1}", "Accept-Encoding": "identity"}
    c, reusable = None, False
    try:
        while True:
            c, kept = _connection(parts, tls)
            connection[:] = [c]
            try:
                c.request("GET", target, headers=headers)
                r = c.getresponse()
                break
            except ConnectionError:  # RemoteDisconnected, a reset, a broken pipe
                c.close()
                if not kept:
                    raise
                # A kept connection that the server closed meanwhile: again on a new one, not a retry.
        if r.status >= 500 or r.status in (408, 429):
            raise _Transient(f"HTTP {r.status} {r.reason or ''}".strip())
        if r.status != 206 or r.length != sink.size:
            return False
        for view in sink.views:
            got = 0
            while got < len(view):
                n = r.readinto(view[got:])
                if not n:
                    return True  # short: _fetch_into sees how many bytes came, and tries again
                got += n
                sink.got += n
                _count(shown, nbytes=n)
        reusable = r.isclosed() and not r.will_close  # all of the body read, and the server keeps it open
        return True
    except http.client.HTTPException as e:  # a garbled or cut answer: IncompleteRead, BadStatusLine...
        raise _Transient(f"{type(e).__name__}: {e}") from None
    finally:
        if c is not None and reusable:
            _keep(parts, tls, c)
        elif c is not None:
            c.close()


class _Sink:
    """Where one request's body goes, as it comes: buffers filled one after the other (the
    caller's, and the cache's for the bytes around it). Bytes past the last are counted, not kept."""

    def __init__(self, views: list[memoryview]) -> None:
        self.views = views
        self.size = sum(len(view) for view in views)
        self.restart()

    def restart(self) -> None:
        """From the first byte again (another try of the request)."""
        self.got = self._view = self._at = 0

    def write(self, data: bytes | memoryview) -> None:
        data = memoryview(data)
        self.got += len(data)
        while len(data) and self._view < len(self.views):
            view = self.views[self._view]
            k = min(len(data), len(view) - self._at)
            view[self._at : self._at + k] = data[:k]
            data, self._at = data[k:], self._at + k
            if self._at == len(view):
                self._view, self._at = self._view + 1, 0


# --- the objects of this session, and the cache of what they read ----------------------------


class _Extents:
    """Fetched byte ranges by URL, the least recently used dropped past a total budget."""

    def __init__(self, budget: int) -> None:
        self._budget, self._total = budget, 0
        self._starts: dict[str, list[int]] = {}
        self._data: OrderedDict[tuple[str, int], bytes | bytearray] = OrderedDict()
        self._longest = 0
        self._lock = threading.Lock()

    def get(self, url: str, pos: int) -> memoryview | None:
        """The cached bytes from `pos` on, as far as one extent goes; None on a miss."""
        with self._lock:
            starts = self._starts.get(url, [])
            # Extents may overlap (read-ahead starts below the read): look back as far as the longest.
            i = bisect.bisect_right(starts, pos) - 1
            while i >= 0 and starts[i] > pos - self._longest:
                key = (url, starts[i])
                data = self._data[key]
                if pos < starts[i] + len(data):
                    self._data.move_to_end(key)
                    return memoryview(data)[pos - starts[i] :]
                i -= 1
            return None

    def put(self, url: str, start: int, data: bytes | bytearray) -> None:
        with self._lock:
            key = (url, start)
            old = self._data.pop(key, None)
            if old is None:
                bisect.insort(self._starts.setdefault(url, []), start)
            self._total += len(data) - (len(old) if old is not None else 0)
            self._data[key] = data
            self._longest = max(self._longest, len(data))
            while self._total > self._budget and len(self._data) > 1:
                (old_url, old_start), dropped = self._data.popitem(last=False)
                self._starts[old_url].remove(old_start)
                self._total -= len(dropped)

    def clear(self) -> None:
        with self._lock:
            self._starts.clear()
            self._data.clear()
            self._total = self._longest = 0


_CACHE = _Extents(_CACHE_BYTES)
_OBJECTS: dict[str, _Object] = {}
_OBJECTS_LOCK = threading.Lock()


def _object(url: str) -> _Object:
    url = display_url(url)
    with _OBJECTS_LOCK:
        found = _OBJECTS.get(url)
    if found is None:
        scheme = url.split(":", 1)[0].lower()
        kind = _HTTPObject if scheme in ("http", "https") else _S3Object if scheme in ("s3", "s3a") else _Object
        found = kind(url)
        with _OBJECTS_LOCK:
            found = _OBJECTS.setdefault(url, found)
    return found


def new_session() -> None:
    """Forget what was looked up and cached: a store opened now sees the files as they are now."""
    with _OBJECTS_LOCK:
        systems = {id(obj.fs): obj.fs for obj in _OBJECTS.values()}
        _OBJECTS.clear()
    for fs in systems.values():
        # s3fs and gcsfs keep what a listing said of each file (fsspec/spec.py dircache), and one
        # instance per set of options for the whole process.
        fs.invalidate_cache()
    _CACHE.clear()


# --- the file object -------------------------------------------------------------------------


class RemoteFile(Seekable):
    """A read-only, seekable remote file; `remote_size` is known from the lookup that opened it."""

    def __init__(self, obj: _Object, what: str) -> None:
        super().__init__()
        self._object, self._what = obj, what
        self.name = obj.url
        self.remote_size = obj.size(what)
        self._pos = 0
        self._readahead = _READAHEAD
        self._fetched_to = -1  # where the last read-ahead ended: a read starting there is sequential
        self._planned: list[tuple[int, int]] = []

    def _length(self) -> int:
        return self.remote_size

    def advise(self, ranges: Iterable[tuple[int, int]]) -> None:
        """Say which [start, end) ranges will be read next, so that they are fetched together."""
        wanted = sorted((start, end) for start, end in ranges if 0 < end - start and end <= self.remote_size)
        self._planned = sorted(set(self._planned).union(wanted))

    def readall(self) -> bytes:
        data = bytearray(max(0, self.remote_size - self._pos))
        return bytes(data[: self.readinto(data)])

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = max(0, min(len(view), self.remote_size - self._pos))
        done, missed_at = 0, -1
        while done < n:
            pos = self._pos + done
            cached = _CACHE.get(self._object.url, pos)
            if cached is not None:
                k = min(len(cached), n - done)
                view[done : done + k] = cached[:k]
                done += k
            elif pos == missed_at:  # a read-ahead the cache did not keep: read it directly, no loop
                self._fetch_direct(pos, view[done:n])
                done = n
            elif got := self._fetch_planned(pos, view[done:n]):
                done += got
            elif n - done >= _DIRECT:
                self._fetch_direct(pos, view[done:n])
                done = n
            else:
                self._read_ahead(pos, n - done)
            missed_at = pos if cached is None else -1
        self._pos += n
        self._tell_whole_body()
        return n

    def _fetch_direct(self, start: int, view: memoryview) -> None:
        """One large read straight into the caller's buffer, in at most _PARALLEL parts at once
        where bodies are streamed (each part at least _PART), in _PART parts where they are not."""
        n = len(view)
        part = max(_PART, -(-n // _PARALLEL)) if self._object.streams else _PART
        self._object.fetch([(start + at, [view[at : at + part]]) for at in range(0, n, part)], self._what)

    def _fetch_spans(
        self, spans: list[tuple[int, int]], pos: int = -1, view: memoryview | None = None, part: int = 0
    ) -> int:
        """Fetch each [start, end) span into the cache, one request each, or one per `part` bytes
        of it (at most _PART where bodies are not streamed); the caller's `view`, which starts at
        `pos` in one of them, is filled straight from the requests, as far as that span goes. How
        many bytes of `view` were filled."""
        part = part or (0 if self._object.streams else _PART)
        holder = next((end for start, end in spans if start <= pos < end), pos) if view is not None else pos
        wanted_end = min(pos + len(view), holder) if view is not None else pos  # [pos, wanted_end) into view
        requests, cached = [], []
        for start, end in spans:
            for piece_start in range(start, end, part or end - start):
                piece_end = min(end, piece_start + (part or end - start))
                low, high = max(piece_start, pos), min(piece_end, wanted_end)
                cuts: list[tuple[int, int, memoryview | None]] = [(piece_start, piece_end, None)]
                if view is not None and low < high:
                    cuts = [
                        (piece_start, low, None),
                        (low, high, view[low - pos : high - pos]),
                        (high, piece_end, None),
                    ]
                views = []
                for cut_start, cut_end, target in cuts:
                    if target is None and cut_end > cut_start:
                        buffer = bytearray(cut_end - cut_start)
                        cached.append((cut_start, buffer))
                        target = memoryview(buffer)
                    if target is not None:
                        views.append(target)
                requests.append((piece_start, views))
        self._object.fetch(requests, self._what)
        for start, buffer in cached:
            _CACHE.put(self._object.url, start, buffer)
        return wanted_end - pos if view is not None else 0

    def _read_ahead(self, pos: int, want: int) -> None:
        sequential = pos == self._fetched_to
        self._readahead = min(2 * self._readahead, _MAX_READAHEAD) if sequential else _READAHEAD
        length = max(want, self._readahead)
        if sequential:  # on from where the last read-ahead ended (a zip member's CRC-32, read through)
            start, end = pos, min(self.remote_size, pos + length)
        else:
            # From a 16 KiB boundary: HDF5 reads an object header, then the heap written just before it.
            start = pos - pos % _ALIGN
            end = min(self.remote_size, max(pos + want, start + length))
            start = max(0, min(start, end - length))  # near the end, the last `length` bytes
        self._fetch_spans([(start, end)])
        self._fetched_to = end

    def _fetch_planned(self, pos: int, view: memoryview) -> int:
        """Fetch the advised span holding `pos` (advised ranges joined across gaps of up to
        _MAX_GAP), one request, with the advised spans after it up to _WINDOW bytes in all; the
        caller's `view` (its read from `pos` on) is filled from it and the rest cached. A span
        larger than _WINDOW is fetched whole, in parallel parts, when the read takes all of it
        but _BESIDE bytes. How many bytes of `view` it filled: 0 when no advised range holds
        `pos`, or when its span is too large and the range holding `pos` is large (that is read
        directly)."""
        i = bisect.bisect_right(self._planned, (pos, self.remote_size + 1)) - 1
        if i < 0 or self._planned[i][1] <= pos:
            return 0
        spans: list[list[int]] = []  # [start, end, first index, index past the last]
        for k, (start, end) in enumerate(self._planned):
            if spans and start - spans[-1][1] <= _MAX_GAP:
                spans[-1][1], spans[-1][3] = max(end, spans[-1][1]), k + 1
            else:
                spans.append([start, end, k, k + 1])
        j = next(j for j, span in enumerate(spans) if span[2] <= i < span[3])
        span_start, span_end, first, past = spans[j]
        part = 0
        if span_end - span_start > _WINDOW:
            beside = span_end - span_start - (min(pos + len(view), span_end) - pos)
            if beside <= _BESIDE:
                # One large tensor and little else (a kernel, and its bias and the bias's
                # optimizer slots before it): the span in parallel parts, one request fewer than
                # the tensor alone and then the rest, the tensor straight into the caller's buffer.
                chosen, taken = [(span_start, span_end)], list(range(first, past))
                size = span_end - span_start  # in as many parts of _PART or more as it fills, _PARALLEL at most
                part = -(-size // min(_PARALLEL, size // _PART)) if self._object.streams else _PART
            else:
                start, end = self._planned[i]
                if end - start >= _DIRECT:
                    return 0
                chosen, taken = [(start, end)], [i]
        else:
            chosen, taken, total = [], [], 0
            for start, end, first, past in spans[j:]:
                if chosen and total + end - start > _WINDOW:
                    break
                chosen.append((start, end))
                taken += range(first, past)
                total += end - start
        for k in reversed(taken):
            del self._planned[k]
        return self._fetch_spans(chosen, pos, view, part)

    def _tell_whole_body(self) -> None:
        obj = self._object
        if isinstance(obj, _HTTPObject) and obj.whole is not None and not obj.told_whole:
            obj.told_whole = True
            warn(
                f"{obj.url}: the server ignores HTTP Range requests, so the whole file "
                f"({len(obj.whole):,} bytes) was downloaded to read it"
            )


# --- what files.py calls ---------------------------------------------------------------------


def open_remote(url: str, what: str = "file") -> RemoteFile:
    """`url` opened for reading in ranges; refused when nothing or a directory is there."""
    return RemoteFile(_object(url), what)


def size_of(url: str, what: str = "file") -> int:
    return _object(url).size(what)


def exists(url: str) -> bool:
    obj = _object(url)
    return obj.url.endswith("/") or obj.info() is not None


def is_dir(url: str) -> bool:
    return _object(url).is_dir()


def list_dir(url: str) -> list[str]:
    """The names in a directory (of file systems that list; [] over HTTP); what the listing says of
    each is kept, so that looking at one later asks nothing more."""
    directory = _object(url)
    names = []
    for entry in directory.list_dir():
        name = url_split(str(entry.get("name", "")).rstrip("/"))[1]
        if name:
            names.append(name)
            child = _object(directory.url.rstrip("/") + "/" + name)
            child.learn({"size": entry.get("size"), "type": entry.get("type", "file")})
    return names


def look_up(urls: list[str]) -> None:
    """Look up several files at once (in parallel), ahead of asking about each."""
    objects = [obj for obj in map(_object, urls) if not obj._looked_up]
    if len(objects) < 2:
        return

    async def all_of_them() -> list[Any]:
        return await asyncio.gather(*(obj._tried("file", obj._stat) for obj in objects), return_exceptions=True)

    for obj, info in zip(objects, objects[0]._run(all_of_them)):
        if not isinstance(info, BaseException):  # a failed one fails again, in its place, when asked
            obj.learn(info)


def read_bounded(url: str, limit: int, what: str = "file") -> bytes:
    size = size_of(url, what)
    if size > limit:
        raise UnsupportedFormat(f"{url}: {size:,} bytes, too large for a {what} ({limit:,} at most)")
    with open_remote(url, what) as f:
        return f.read(size)
