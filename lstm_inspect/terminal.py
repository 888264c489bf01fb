"""Text from a file made safe to show on a terminal: tensor and layer names are whatever the file
says, and a hostile file can name a tensor "\\x1b[2J" (clear the screen), an OSC sequence (set the
window title) or "x\\n│ fake │ row". Every human output shows names through `safe`; --json keeps
them exact (JSON escapes control characters itself).
"""

from __future__ import annotations

import functools
import re

# C0 controls (ESC starts CSI and OSC sequences; \n and \r make fake rows), DEL, C1 controls
# (U+009B is a one-character CSI, U+0085 a newline), the bidirectional controls that reorder the
# text after them (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069), the line and paragraph
# separators, and lone surrogates (which cannot even be encoded to print). Backslashes are
# doubled, so that an escaped name never reads as another name.
_UNSAFE = "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff\\\\]"
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(text: str) -> str:
    """`text` with every character that can move the cursor, rewrite the screen or reorder what
    follows written as Python writes it in a string literal (\\x1b, \\u202e, \\n) and backslashes
    doubled: one line, shown as stored, and reversible. Ordinary text comes back as it is."""
    if text.isprintable() and "\\" not in text:
        # Every character _UNSAFE names but the backslash is one str.isprintable refuses (categories
        # Cc, Cf, Cs, Zl): two C calls answer for what nearly every name is, "×" and "—" included.
        return text
    unsafe = _compile()
    return unsafe.sub(_escape, text) if unsafe.search(text) else text


# Compiled on first use: the class of ranges costs as much to compile as `--help` spends on its own.
@functools.cache
def _compile() -> re.Pattern[str]:
    return re.compile(_UNSAFE)
