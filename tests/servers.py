"""Servers on 127.0.0.1 for the remote-file tests and the benchmark: an S3 API (moto's) and a plain
HTTP file server, each logging every request it answers (method, path, range, status, body bytes
sent), so that tests count what crossed the network from the server's side.

Both take faults to inject: the HTTP server can ignore Range requests, drop the connection after
some bytes, answer 500, stall, hold requests until several are in flight (to prove they are
parallel) or require a token; the S3 server can deny a prefix (403 AccessDenied) and answer a
request signed with the access key "EXPIRED" as AWS answers an expired session token.

moto reads a whole object to answer any ranged GET of it (about 0.12 s for a 145 MB shard, whatever
the range), so the S3 server answers ranged GETs through tests/moto_ranges.py, which reads only the
asked bytes, as S3 does; everything a client sees (and what lstm-inspect asks) is moto's unchanged.
`S3Server(exact_ranges=False)` serves moto as it comes.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import moto_ranges

_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


@dataclass
class Request:
    method: str
    path: str
    range: str | None
    status: int = 0
    bytes: int = 0


@dataclass
class Log:
    """Every request a server answered, in order."""

    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, request: Request) -> Request:
        with self.lock:
            self.requests.append(request)
        return request

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()

    def of(self, suffix: str = "", method: str | None = None) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path.endswith(suffix) and (method is None or r.method == method)]

    def bytes(self, suffix: str = "") -> int:
        return sum(r.bytes for r in self.of(suffix))


# --- HTTP ------------------------------------------------------------------------------------


@dataclass
class Faults:
    """What the HTTP server does wrong. Counts run down as faults are served; -1 means always."""

    ignore_range: bool = False
    drop_after: int | None = None  # send this many body bytes, then cut the connection
    drops: int = 0
    errors: int = 0  # answer 500 this many times
    stall: float = 0.0  # seconds to wait before answering a GET
    stalls: int = 0
    token: str | None = None  # every request must carry ?token=this, else 403
    together: int = 0  # hold each ranged GET until this many are in flight at once
    paths: tuple[str, ...] = ()  # only requests for paths ending so are faulted; () = all

    def applies(self, path: str) -> bool:
        return not self.paths or path.endswith(self.paths)


class HTTPFileServer:
    """Serves the files under `root` over HTTP/1.1 (keep-alive, HEAD, single byte ranges)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.log = Log()
        self.faults = Faults()
        self.stopping = threading.Event()
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> HTTPFileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def take(self, name: str) -> bool:
        """Use up one of a fault's count; True when the fault applies now."""
        with self._lock:
            left = getattr(self.faults, name)
            if left == 0:
                return False
            if left > 0:
                setattr(self.faults, name, left - 1)
            return True

    def gather(self) -> None:
        """Wait until `together` ranged GETs are in flight (or 10 s pass, and the test fails)."""
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        for _ in range(1000):
            with self._lock:
                if self.most_in_flight >= self.faults.together:
                    return
            if self.stopping.wait(0.01):
                return

    def done(self) -> None:
        with self._lock:
            self.in_flight -= 1


def _handler(server: HTTPFileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def _answer(self, body: bool) -> None:
            parts = urlsplit(self.path)
            record = server.log.add(Request(self.command, parts.path, self.headers.get("Range")))
            faults = server.faults
            applies = faults.applies(parts.path)
            if faults.token is not None and parse_qs(parts.query).get("token") != [faults.token]:
                return self._status(record, 403, "Forbidden")
            file = server.root / parts.path.lstrip("/")
            if not file.is_file() or ".." in parts.path.split("/"):
                return self._status(record, 404, "Not Found")
            if body and applies and server.take("errors"):
                return self._status(record, 500, "Internal Server Error")
            size = file.stat().st_size
            start, end, status = 0, size, 200
            match = _RANGE.match(record.range or "")
            if match and not faults.ignore_range:
                start = int(match[1])
                end = min(size, int(match[2]) + 1) if match[2] else size
                if start >= size:
                    return self._status(record, 416, "Range Not Satisfiable")
                status = 206
            if body and applies and server.take("stalls"):
                server.stopping.wait(faults.stall)
            gathered = body and status == 206 and faults.together > 1
            if gathered:
                server.gather()
            try:
                self.send_response(status)
                self.send_header("Content-Length", str(end - start))
                self.send_header("Accept-Ranges", "none" if faults.ignore_range else "bytes")
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
                self.end_headers()
                record.status = status
                if body:
                    limit = faults.drop_after if applies and faults.drop_after is not None else None
                    cut = limit is not None and server.take("drops")
                    self._send(file, start, (min(end, start + limit) if cut and limit is not None else end), record)
                    if cut:
                        self.connection.shutdown(socket.SHUT_RDWR)
                        self.close_connection = True
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            finally:
                if gathered:
                    server.done()

        def _send(self, file: Path, start: int, end: int, record: Request) -> None:
            self.wfile.flush()
            with file.open("rb") as f:
                while start < end:
                    sent = os.sendfile(self.connection.fileno(), f.fileno(), start, min(end - start, 1 << 22))
                    if sent == 0:
                        break
                    start += sent
                    record.bytes += sent

        def _status(self, record: Request, code: int, reason: str) -> None:
            record.status = code
            body = f"{code} {reason}\n".encode()
            self.send_response(code, reason)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    return Handler


# --- S3 --------------------------------------------------------------------------------------


def aws_environment(env: Any, endpoint: str, *, unset: tuple[str, ...] = ()) -> None:
    """Point every AWS client of this process at `endpoint` with fake credentials (env: a
    pytest MonkeyPatch), read from nowhere else: no profile, config file or instance metadata;
    `unset`: other variables to remove (proxies)."""
    env.setenv("AWS_ENDPOINT_URL", endpoint)
    env.setenv("AWS_ACCESS_KEY_ID", "testing")
    env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    env.setenv("AWS_DEFAULT_REGION", "us-east-1")
    env.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        env.setenv(name, os.devnull)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", *unset):
        env.delenv(name, raising=False)


def _s3_error(code: str, message: str, status: str) -> tuple[str, list[tuple[str, str]], bytes]:
    body = f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))], body.encode()


class S3Server:
    """moto's S3 API in a thread on 127.0.0.1, behind a WSGI middleware that logs and faults."""

    def __init__(self, exact_ranges: bool = True) -> None:
        import logging

        from moto.server import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        if exact_ranges:
            moto_ranges.install()

        self.exact_ranges = exact_ranges
        self.log = Log()
        self.denied: tuple[str, ...] = ()  # path prefixes answered 403 AccessDenied
        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server("127.0.0.1", 0, self._middleware(app), threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> S3Server:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def _middleware(self, app: Callable[..., Any]) -> Callable[..., Iterator[bytes]]:
        def logged(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
            path = environ.get("PATH_INFO", "")
            record = self.log.add(Request(environ["REQUEST_METHOD"], path, environ.get("HTTP_RANGE")))
            fault = None
            if "Credential=EXPIRED/" in environ.get("HTTP_AUTHORIZATION", ""):
                fault = _s3_error("ExpiredToken", "The provided token has expired.", "400 Bad Request")
            elif path.startswith(self.denied) and self.denied:
                fault = _s3_error("AccessDenied", "Access Denied", "403 Forbidden")
            if fault is not None:
                status, headers, body = fault
                record.status = int(status.split()[0])
                start_response(status, headers)
                if environ["REQUEST_METHOD"] != "HEAD":
                    record.bytes = len(body)
                    yield body
                return

            def recording_start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                record.status = int(status.split()[0])
                return start_response(status, headers, exc_info)

            moto_ranges.exact.on = self.exact_ranges  # moto answers in this thread, inside app()
            try:
                body = app(environ, recording_start)
            finally:
                moto_ranges.exact.on = False
            for chunk in body:
                record.bytes += len(chunk)
                yield chunk

        return logged
