"""moto's S3 answering a ranged GET by reading only the asked bytes, as S3 does.

moto 5 answers every GET of an object by reading the whole object out of the key's spooled
temporary file (`FakeKey.value`, moto/s3/models.py: seek(0), read(), copy) and then, for a
Range, slicing that copy (`S3Response._handle_range_header`, moto/s3/responses.py): a 64 KiB range
of a 145 MB shard costs as much as the shard. `install()` changes only where those bytes come from:
while `S3Response.get_object` runs on a thread where `exact` is set, `FakeKey.value` is a view of
the key's buffer that reads a slice (seek + read under the key's own lock) when sliced and the
whole value otherwise. moto's own `_handle_range_header` still parses the Range, answers 416, a
multi-range or unparsable one with the whole object, and sets Content-Range and Content-Length;
`key_response` hands on bytes as before. Requests, signatures, XML, headers, ETags and error codes
are moto's. `exact` is off on every thread unless a server sets it (tests/servers.py does per
request), so the same process can also serve moto unchanged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

exact = threading.local()  # exact.on: this thread's GET reads only its range
_installed: list[bool] = []
_lock = threading.Lock()


class MotoChanged(RuntimeError):
    """The moto installed here is not laid out as this patch expects."""


class StoredBytes:
    """A FakeKey's value as `get_object` hands it on: its length known, its bytes read from the
    key's buffer only for the slice asked."""

    __slots__ = ("key",)

    def __init__(self, key: Any) -> None:
        self.key = key

    def __len__(self) -> int:
        return int(self.key.contentsize)

    def __bool__(self) -> bool:
        return len(self) > 0

    def __getitem__(self, where: slice) -> bytes:
        if not isinstance(where, slice):
            raise TypeError("StoredBytes is read by slices only")
        start, stop, step = where.indices(len(self))
        if step != 1:
            raise TypeError("StoredBytes is read by contiguous slices only")
        with self.key.lock:  # FakeKey.value holds it too: a PUT of the same key swaps the buffer
            buffer = self.key._value_buffer
            buffer.seek(start)
            return bytes(buffer.read(max(0, stop - start)))

    def __bytes__(self) -> bytes:
        return bytes(_whole_value[0](self.key))


_whole_value: list[Callable[[Any], bytes]] = []  # moto's FakeKey.value getter, once installed


def missing() -> list[str]:
    """What of moto's internals this patch relies on is not there (moto 5.x has them all)."""
    from moto.s3.models import FakeKey
    from moto.s3.responses import S3Response

    value = FakeKey.__dict__.get("value")
    absent = [
        name
        for name, ok in (
            ("FakeKey.value (a property)", isinstance(value, property) and value.fget and value.fset),
            ("S3Response.get_object", callable(S3Response.__dict__.get("get_object"))),
            ("S3Response.key_response", callable(S3Response.__dict__.get("key_response"))),
            ("S3Response._handle_range_header", callable(S3Response.__dict__.get("_handle_range_header"))),
        )
        if not ok
    ]
    if absent:
        return absent
    probe = FakeKey("probe", b"0123456789", account_id="123456789012", region_name="us-east-1")
    try:
        absent = [f"FakeKey().{name}" for name in ("_value_buffer", "lock", "contentsize") if not hasattr(probe, name)]
        if not absent and StoredBytes(probe)[3:7] != b"3456":
            absent.append("FakeKey()._value_buffer holding the key's bytes")
    finally:
        probe.dispose()
    return absent


def install() -> None:
    """Patch moto once per process; raise MotoChanged, naming what is missing, if moto's
    internals are not the ones this was written against."""
    with _lock:
        if _installed:
            return
        from moto.s3.models import FakeKey
        from moto.s3.responses import S3Response

        absent = missing()
        if absent:
            import moto

            raise MotoChanged(
                f"tests/moto_ranges.py: moto {moto.__version__} lacks {', '.join(absent)}; "
                "the exact-range patch cannot be applied (written against moto 5.x)"
            )
        value = FakeKey.__dict__["value"]
        assert isinstance(value, property) and value.fget is not None
        whole = value.fget
        _whole_value.append(whole)
        get_object, key_response = S3Response.get_object, S3Response.key_response

        def stored_value(key: Any) -> Any:
            if getattr(exact, "on", False) and getattr(exact, "in_get_object", False):
                return StoredBytes(key)
            return whole(key)

        def exact_get_object(self: Any) -> Any:
            exact.in_get_object = True
            try:
                return get_object(self)
            finally:
                exact.in_get_object = False

        def exact_key_response(self: Any, *args: Any, **kwargs: Any) -> Any:
            status, headers, body = key_response(self, *args, **kwargs)
            # A full GET, a 206 of partNumber=1, a multi-range or unparsable Range: moto sends it all.
            return status, headers, bytes(body) if isinstance(body, StoredBytes) else body

        FakeKey.value = property(stored_value, value.fset, value.fdel, value.__doc__)  # type: ignore[method-assign,assignment]
        S3Response.get_object = exact_get_object  # type: ignore[method-assign]
        S3Response.key_response = exact_key_response  # type: ignore[method-assign]
        _installed.append(True)
