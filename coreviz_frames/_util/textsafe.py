"""Names written into files that other tools parse: YAML scalars and Markdown text.

Category, class and split names come from the collection (untrusted): written raw they can
end a YAML scalar, turn into ``null`` or a number, or become live HTML or a link in a
dataset card. :func:`yaml_string` and :func:`markdown_text` make any name inert.

Example:
    >>> print(yaml_string("null"), markdown_text("[x](javascript:alert(1))"))
    "null" \\[x\\]\\(javascript:alert\\(1\\)\\)
"""

from __future__ import annotations

import html
import re

__all__ = ["markdown_text", "yaml_string"]

# Markdown punctuation that can start emphasis, code, links, lists, headings or tables.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")


def yaml_string(text: str) -> str:
    """``text`` as a YAML double-quoted scalar that PyYAML reads back exactly.

    Printable characters stay as they are (emoji included, written raw: PyYAML reads an
    escaped surrogate pair back as two lone surrogates); quotes, backslashes, controls,
    line and paragraph separators, spaces other than U+0020 and lone surrogates are
    escaped (``\\xXX``, ``\\uXXXX``), so no name can end the scalar or be folded.

    Example:
        >>> print(yaml_string('say "hi": yes'), yaml_string("1"), yaml_string("a\\nb"))
        "say \\"hi\\": yes" "1" "a\\x0ab"
    """
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= code < 0x7F or (code > 0x7F and ch.isprintable()):
            out.append(ch)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def markdown_text(text: str) -> str:
    """``text`` as inert Markdown: HTML escaped, Markdown punctuation backslash-escaped,
    line breaks and controls as spaces (a name cannot open a tag, a link or a new block).

    Example:
        >>> markdown_text('<img src=x onerror="alert(1)">')
        '&lt;img src=x onerror=&quot;alert\\\\(1\\\\)&quot;&gt;'
    """
    flat = "".join(ch if ch.isprintable() else " " for ch in text)
    return html.escape(_MARKDOWN.sub(r"\\\1", flat), quote=True)
