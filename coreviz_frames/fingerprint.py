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

Speed: the canonical bytes are written by :func:`~coreviz_frames.jsoncodec.fast_canonical_dumps`
(orjson, exactly the standard library's bytes) and signed URLs lose their query strings on
those bytes in the same pass (:func:`strip_url_queries`), so a typical record is encoded
once. Wherever a guard cannot prove the result equal, the original implementation
(:func:`reference_fingerprint`: ``json.dumps``, :func:`canonical`, ``json.dumps`` again)
gives the digest, so every fingerprint stored before stays valid.

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
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .jsoncodec import fast_canonical_dumps

__all__ = [
    "canonical",
    "fingerprint",
    "reference_fingerprint",
    "strip_signature",
    "strip_url_queries",
]

_URL_PREFIXES = ("http://", "https://", "blob://")
# Regular expressions over canonical JSON (compact, as canonical_dumps writes it). A URL
# string starts with a quote that follows one of {[,: (an opening quote: a quote inside a
# string is escaped, so follows a backslash), then http://, https:// or blob://. Patterns
# start at the "://" (a rare literal, which the regex engine scans for fast) and look back.
_AFTER_SCHEME = rb'://(?:(?<=[{\[,:]"http://)|(?<=[{\[,:]"https://)|(?<=[{\[,:]"blob://))'
# A netloc urlsplit keeps as it is: non-empty ASCII, no brackets (IPv6 and NFKC checks
# would apply) and no escapes (urlsplit drops tabs and newlines).
_NETLOC = rb'[^/?#"\\\[\]\x80-\xff]+'
# A URL string value (not followed by the colon of a key) without escapes, with a query or
# fragment: group 1 is the string from "://" up to its first ? or #, what strip_signature
# keeps of it.
# Possessive quantifiers (no backtracking: each class stops where the next must start)
# keep a URL without a query linear to reject.
_SIGNED_URL_VALUE = re.compile(rb"(" + _AFTER_SCHEME + _NETLOC + rb'+[^"?#\\]*+)[?#][^"\\]*+"(?!:)')
# A URL string _SIGNED_URL_VALUE may not stand for: an escape in it (its end and its
# urlsplit result are not plain on the bytes), or another netloc (blob:///p -> blob:/p).
_UNUSUAL_URL = re.compile(_AFTER_SCHEME + rb'(?:[^"\\]*\\|(?!' + _NETLOC + rb'[/?#"]))')


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


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def strip_url_queries(data: bytes) -> bytes | None:
    """Canonical JSON bytes with :func:`strip_signature` applied to every string value.

    ``data`` is compact JSON as :func:`~coreviz_frames.jsoncodec.canonical_dumps` writes it.
    Keys are left alone, as :func:`canonical` leaves them. None (use the slow path) when a
    URL string holds an escape (its end or its urlsplit result is then not plain to see on
    the bytes) or an unusual netloc (see ``_plain_netloc``).

    Example:
        >>> strip_url_queries(b'{"a":"https://h/x.jpg?sig=1","https://k?q":"why?"}')
        b'{"a":"https://h/x.jpg","https://k?q":"why?"}'
        >>> strip_url_queries(b'["blob:///x?y"]') is None
        True
    """
    if data.startswith(b'"'):
        return None  # a bare string (the patterns look for a character before it)
    stripped, count = _SIGNED_URL_VALUE.subn(rb'\1"', data)
    # Each replaced string holds a "://". When they are all the "://" of ``data``, every
    # URL string was one of them; else the unusual ones are looked for.
    if count == data.count(b"://") or not _UNUSUAL_URL.search(data):
        return stripped
    return None


def fingerprint(record: Mapping[str, Any]) -> str:
    """The fingerprint of ``record`` (see the module doc): 32 hex characters.

    Equal to :func:`reference_fingerprint` for every record (the module doc says how).

    Example:
        >>> fingerprint({"id": "m1"}) == fingerprint({"id": "m1"})
        True
    """
    data = fast_canonical_dumps(record)
    if data is not None and (b"?" in data or b"#" in data or b'"_' in data):
        data = None if b'"_' in data else strip_url_queries(data)
    if data is None:
        return reference_fingerprint(record)
    return _digest(data)


def reference_fingerprint(record: Mapping[str, Any]) -> str:
    """The fingerprint by the original implementation (the definition; slower).

    Example:
        >>> reference_fingerprint({"b": "https://h/x?s=1"}) == fingerprint({"b": "https://h/x"})
        True
    """
    text = _dumps(record)
    if "?" in text or "#" in text or '"_' in text:  # else canonical(record) is record itself
        text = _dumps(canonical(record))
    # "surrogatepass": a lone surrogate (valid JSON escape, not Unicode) hashes, never raises
    data = text.encode("utf-8", "surrogatepass")
    return _digest(data)


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
