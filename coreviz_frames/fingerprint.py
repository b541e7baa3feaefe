"""The fingerprint of a media record: a stable hash of its content, for change detection.

The API has no change feed and nothing documents that AI-added captions or objects bump
``updatedAt``, so :func:`sync <coreviz_frames.syncing.sync>` compares a hash of the whole
record instead. The hash is taken over canonical JSON (keys sorted, no whitespace) of the
record with two normalisations:

- **URLs lose their query string and fragment** (``https://h/a.jpg?sig=..&exp=..`` hashes
  as ``https://h/a.jpg``): a blob host that signs URLs with short-lived parameters would
  otherwise make every media look changed on every sync. A change of host or path is
  still a change. (The exported ``blob`` column keeps the URL as it was when the media
  was last written, query string included.)
- **Keys starting with ``_``** (browse-only annotations such as ``_score``) are left out:
  they describe the listing, not the media.

Everything else counts: a new caption, a moved box, an edited tag, a bumped ``updatedAt``.
Key order in the JSON does not count. The digest is BLAKE2b (16 bytes, hex).

Example:
    >>> a = {"id": "m1", "blob": "https://b.example/x.jpg?sig=1", "tags": ["a"]}
    >>> b = {"tags": ["a"], "blob": "https://b.example/x.jpg?sig=2", "id": "m1"}
    >>> fingerprint(a) == fingerprint(b), len(fingerprint(a))
    (True, 32)
    >>> fingerprint(a) == fingerprint({**a, "tags": ["b"]})
    False
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["canonical", "fingerprint", "strip_signature"]

_URL_PREFIXES = ("http://", "https://", "blob://")


def strip_signature(value: str) -> str:
    """``value`` without query string and fragment if it is a URL, else unchanged.

    Example:
        >>> strip_signature("https://h/p/a.jpg?X-Amz-Signature=abc#f")
        'https://h/p/a.jpg'
        >>> strip_signature("a caption?")
        'a caption?'
    """
    if not value.startswith(_URL_PREFIXES) or ("?" not in value and "#" not in value):
        return value
    try:
        parts = urlsplit(value)
    except ValueError:
        return value
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def canonical(value: Any) -> Any:
    """``value`` as fingerprinted: URLs without query strings, ``_`` keys left out.

    Example:
        >>> canonical({"_score": 0.5, "b": ["https://h/x?s=1"]})
        {'b': ['https://h/x']}
    """
    if isinstance(value, Mapping):
        return {
            str(k): canonical(v)
            for k, v in value.items()
            if not (isinstance(k, str) and k.startswith("_"))
        }
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, str):
        return strip_signature(value)
    return value


def fingerprint(record: Mapping[str, Any]) -> str:
    """The fingerprint of ``record`` (see the module doc): 32 hex characters.

    Example:
        >>> fingerprint({"id": "m1"}) == fingerprint({"id": "m1"})
        True
    """
    text = _dumps(record)
    if "?" in text or "#" in text or '"_' in text:  # else canonical(record) is record itself
        text = _dumps(canonical(record))
    # "surrogatepass": a lone surrogate (valid JSON escape, not Unicode) hashes, never raises
    data = text.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
