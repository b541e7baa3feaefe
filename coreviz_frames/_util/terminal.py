"""Text that came from a server, made safe to print on a terminal.

A media or collection name, a label, a tag value or a failure reason is the server's text:
an escape sequence inside it (``ESC ] 0 ;`` sets the window title, ``ESC ] 52 ;`` writes
the clipboard, ``ESC [`` moves the cursor or recolours the screen) would be obeyed by the
terminal. :func:`printable` replaces every control character (C0 including tab and newline,
DEL, C1, the bidirectional controls that reorder what is shown, and lone surrogates, which
no terminal encoding can print) by a visible placeholder, its escape (``\\x1b``), so the
sequence is shown, not run. Every line the CLI prints goes through it, keeping only the
CLI's own newlines.

Example:
    >>> printable("rocket\\x1b]52;c;ZWNobyBoaQ==\\x07.jpg")
    'rocket\\\\x1b]52;c;ZWNobyBoaQ==\\\\x07.jpg'
    >>> printable("two\\nlines", newlines=True)
    'two\\nlines'
"""

from __future__ import annotations

import re

__all__ = ["printable"]

#: C0 controls, DEL, C1 controls, the Unicode controls that reorder or split lines, and
#: lone surrogates (JSON can carry ``"\ud800"``; no terminal encoding can print one).
_UNICODE = "\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_CONTROL = re.compile(f"[\x00-\x1f\x7f-\x9f{_UNICODE}]")
_CONTROL_BUT_NEWLINE = re.compile(f"[\x00-\x09\x0b-\x1f\x7f-\x9f{_UNICODE}]")


def _placeholder(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, *, newlines: bool = False) -> str:
    """``str(text)`` with every control character shown as its escape (``\\x1b``);
    ``newlines=True`` keeps ``\\n`` (for the CLI's own multi-line output)."""
    pattern = _CONTROL_BUT_NEWLINE if newlines else _CONTROL
    return pattern.sub(_placeholder, str(text))
