"""Protocol buffer text format (a `.pbtxt` GraphDef), parsed without the protobuf package.

https://protobuf.dev/reference/protobuf/textformat-spec/: a message is a run of fields, each
`name: value`, `name { message }` or `name < message >`, repeated scalars may be written
`name: [a, b]`, separators `,` and `;` are optional, `#` starts a comment. parse() gives the
fields as (name, value) pairs without knowing any schema; decode() turns them into the same dicts
as protobuf.decode(), from the same schema (tf_protos.py).

Hostile input: nesting is bounded, the parser keeps an explicit stack (no recursion), every
character must belong to a token, and every error is one Malformed naming the line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .protobuf import MAX_DEPTH, Field, Malformed, Schema, store

__all__ = ["Token", "decode", "parse"]

_TOKENS = re.compile(
    rb"""
    (?P<space>[ \t\r\n\f\v]+|\#[^\n]*)
    | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
    | (?P<number>[-+]?(?:0[xX][0-9a-fA-F]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?[fF]?))
    | (?P<word>-?[A-Za-z_][A-Za-z0-9_./]*)
    | (?P<punct>[{}<>:\[\],;])
    """,
    re.VERBOSE,
)
_CLOSING = {b"{": b"}", b"<": b">"}
_ESCAPE = re.compile(rb"\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", re.DOTALL)
_SIMPLE_ESCAPES = {
    b"n": b"\n", b"t": b"\t", b"r": b"\r", b"a": b"\a", b"b": b"\b", b"f": b"\f", b"v": b"\v",
    b"\\": b"\\", b"'": b"'", b'"': b'"', b"?": b"?",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Token:
    """A scalar value as written: kind "string" (its bytes, unescaped), "number" or "word"."""

    kind: str
    text: bytes
    line: int


Message = list[tuple[str, "Message | Token"]]


def parse(text: bytes) -> Message:
    """The fields of a text-format message, as (name, Token or nested fields) pairs in order."""
    root: Message = []
    stack: list[tuple[Message, bytes | None]] = [(root, None)]
    tokens = _tokenize(text)
    pending: list[tuple[str, bytes, int]] = []  # pushed back tokens

    def take() -> tuple[str, bytes, int] | None:
        return pending.pop() if pending else next(tokens, None)

    while True:
        token = take()
        current, closing = stack[-1]
        if token is None:
            if closing is not None:
                raise Malformed(f"the text ends inside a message (a {closing.decode()!r} is missing)")
            return root
        kind, value, line = token
        if kind == "punct" and value in (b";", b","):
            continue
        if kind == "punct" and value == closing:
            stack.pop()
            continue
        name = _field_name(kind, value, line, take)
        kind, value, line = _value_start(name, line, take)
        if kind == "punct" and value in _CLOSING:
            if len(stack) > MAX_DEPTH:
                raise Malformed(f"line {line}: messages nested more than {MAX_DEPTH} deep")
            nested: Message = []
            current.append((name, nested))
            stack.append((nested, _CLOSING[value]))
        elif kind == "punct" and value == b"[":
            _list(name, current, line, take, pending)
        else:
            current.append((name, _scalar(kind, value, line, take, pending)))


def _value_start(name: str, line: int, take: Any) -> tuple[str, bytes, int]:
    """The first token of a field's value, after the `:` that may come before it."""
    token = take()
    if token is not None and token[0] == "punct" and token[1] == b":":
        line, token = token[2], take()
    if token is None:
        raise Malformed(f"line {line}: field {name} has no value")
    return token


def _tokenize(text: bytes) -> Iterator[tuple[str, bytes, int]]:
    line, pos, end = 1, 0, len(text)
    while pos < end:
        match = _TOKENS.match(text, pos)
        if match is None:
            raise Malformed(f"line {line}: unexpected character {text[pos : pos + 1]!r}")
        kind = match.lastgroup or ""
        value = match.group()
        if kind != "space":
            yield kind, value, line
        line += value.count(b"\n")
        pos = match.end()


def _field_name(kind: str, value: bytes, line: int, take: Any) -> str:
    if kind == "word":
        return value.decode("ascii")
    if kind == "punct" and value == b"[":
        # An extension or an Any's type URL: [type.googleapis.com/tensorflow.X]. Kept as a name no
        # schema declares, so its value is skipped.
        parts = []
        while (token := take()) is not None and token[1] != b"]":
            parts.append(token[1].decode("ascii", "replace"))
        return "[" + "".join(parts) + "]"
    raise Malformed(f"line {line}: expected a field name, found {value[:40]!r}")


def _scalar(kind: str, value: bytes, line: int, take: Any, pending: list[Any]) -> Token:
    if kind == "string":
        # Adjacent strings are one value ("abc" "def").
        parts = [_unescape(value[1:-1])]
        while (token := take()) is not None and token[0] == "string":
            parts.append(_unescape(token[1][1:-1]))
        if token is not None:
            pending.append(token)
        return Token("string", b"".join(parts), line)
    if kind in ("number", "word"):
        return Token(kind, value, line)
    raise Malformed(f"line {line}: expected a value, found {value[:40]!r}")


def _list(name: str, into: Message, line: int, take: Any, pending: list[Any]) -> None:
    while True:
        token = take()
        if token is None:
            raise Malformed(f"line {line}: the list of field {name} is not closed")
        kind, value, line = token
        if kind == "punct" and value == b"]":
            return
        if kind == "punct" and value == b",":
            continue
        into.append((name, _scalar(kind, value, line, take, pending)))


def _unescape(raw: bytes) -> bytes:
    if b"\\" not in raw:
        return raw

    def one(match: re.Match[bytes]) -> bytes:
        code = match[1]
        if code[:1] == b"x":
            return bytes([int(code[1:], 16)])
        if code[:1] in b"uU" and len(code) > 1:
            return chr(min(int(code[1:], 16), 0x10FFFF)).encode("utf-8", "surrogatepass")
        if code[:1].isdigit():
            return bytes([int(code, 8) & 0xFF])
        if code not in _SIMPLE_ESCAPES:
            raise Malformed(f"unknown escape \\{code.decode('ascii', 'replace')} in a string")
        return _SIMPLE_ESCAPES[code]

    return _ESCAPE.sub(one, raw)


# --- decoding by schema -----------------------------------------------------------------------


def decode(
    message: Message, name: str, schema: Schema, enums: Mapping[str, Mapping[str, int]], depth: int = 0
) -> dict[str, Any]:
    """The fields `schema` declares for message `name`, as protobuf.decode() gives them."""
    if depth > MAX_DEPTH:
        raise Malformed(f"messages nested more than {MAX_DEPTH} deep")
    by_name = {field.name: field for field in schema[name].values()}
    out: dict[str, Any] = {}
    for field_name, value in message:
        field = by_name.get(field_name)
        if field is None:
            continue
        if field.kind in schema:
            if isinstance(value, Token):
                raise Malformed(f"line {value.line}: field {field_name} is a message, not a value")
            store(out, field, decode(value, field.kind, schema, enums, depth + 1), schema)
        elif isinstance(value, Token):
            store(out, field, _convert(value, field, enums), schema)
        else:
            raise Malformed(f"field {field_name} is a value, not a message")
    return out


def _convert(token: Token, field: Field, enums: Mapping[str, Mapping[str, int]]) -> Any:
    kind, text = field.kind, token.text
    where = f"line {token.line}: field {field.name}"
    if kind in ("string", "bytes"):
        if token.kind != "string":
            raise Malformed(f"{where} needs a quoted string")
        return text.decode("utf-8", "backslashreplace") if kind == "string" else text
    if token.kind == "string":
        raise Malformed(f"{where} needs a number, not a string")
    word = text.decode("ascii", "replace")
    if kind in ("float", "double"):
        return _float(word, where)
    if kind == "bool":
        return _bool(word, where)
    if kind.startswith("enum:") and token.kind == "word":
        number = enums.get(kind[len("enum:") :], {}).get(word)
        if number is None:
            raise Malformed(f"{where}: unknown value {word}")
        return number
    try:
        return int(word, 16) if word.lower().lstrip("-+").startswith("0x") else int(word)
    except ValueError:
        raise Malformed(f"{where}: {word!r} is not an integer") from None


def _float(word: str, where: str) -> float:
    lowered = word.lower().lstrip("-+")
    if lowered in ("inf", "infinity"):
        return -math.inf if word.startswith("-") else math.inf
    if lowered == "nan":
        return math.nan
    try:
        return float(word.rstrip("fF") if not word.lower().startswith(("0x", "-0x")) else int(word, 16))
    except ValueError:
        raise Malformed(f"{where}: {word!r} is not a number") from None


def _bool(word: str, where: str) -> bool:
    if word in ("true", "True", "t", "1"):
        return True
    if word in ("false", "False", "f", "0"):
        return False
    raise Malformed(f"{where}: {word!r} is not true or false")
