"""npz member names that stay inside any folder they are extracted to, and back (no numpy here:
readers of an export decode them too)."""

from __future__ import annotations

import re

__all__ = ["decode_key", "encode_key"]

# `%` (the escape itself), `\` (a folder separator on Windows), and the C0 and C1 control
# characters and DEL (a NUL ends a zip name in zipfile's ZipInfo, a newline fakes a listing).
_ESCAPED_CHARACTERS = re.compile(r"[%\\\x00-\x1f\x7f-\x9f]")
# A folder component made of dots and spaces with two dots or more: `..`, and names that Windows,
# which drops a component's trailing dots and spaces, may read as `..` (`.. `, `...`).
_PARENT_COMPONENT = re.compile(r"[. ]*\.[. ]*\.[. ]*")
_DRIVE = re.compile(r"[A-Za-z]:")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")


def encode_key(key: str) -> str:
    """`key` as an npz member name that stays inside any folder it is extracted to: `%`, `\\` and
    control characters, the dots of a `..` component, a leading `/` and a drive's `:` become
    `%XX` (their code in hex). Ordinary names come back unchanged; decode_key undoes it."""
    if not (
        _ESCAPED_CHARACTERS.search(key) or ".." in key.replace(" ", "") or key.startswith("/") or _DRIVE.match(key)
    ):
        return key  # nothing below changes it: the usual name, at a glance (an export of 6,000 layers has 78,000)

    def percent(match: re.Match[str]) -> str:
        return f"%{ord(match[0]):02X}"

    parts = [_ESCAPED_CHARACTERS.sub(percent, part) for part in key.split("/")]
    name = "/".join(part.replace(".", "%2E") if _PARENT_COMPONENT.fullmatch(part) else part for part in parts)
    if name.startswith("/"):
        name = "%2F" + name[1:]
    if _DRIVE.match(name):
        name = name[0] + "%3A" + name[2:]
    return name


def decode_key(name: str) -> str:
    """The key an array was exported under, from its name in the npz (`np.load(f).files`)."""
    return _ESCAPE.sub(lambda match: chr(int(match[1], 16)), name)
