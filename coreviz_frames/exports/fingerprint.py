"""The fingerprint of a media record: a hash of its content as written, for change detection.

The API has no change feed and nothing documents that AI-added captions or objects bump
``updatedAt``, so :func:`sync <coreviz_frames.exports.syncing.sync>` compares a hash of the whole
record instead. The hash is taken over the record's JSON text, compact (no whitespace outside
strings), keys in the record's own order, strings as Python's ``json`` writes them with
``ensure_ascii=False``, with two normalisations:

- **Blob URLs lose their query string and fragment** (``https://h/a.jpg?sig=..&exp=..``
  hashes as ``https://h/a.jpg``): a blob host that signs URLs with short-lived parameters
  would otherwise make every media look changed on every sync. Only the fields that hold
  blob URLs are stripped (:data:`BLOB_FIELDS`: the media's ``blob``, each frame's ``blob``
  and ``thumbnailBlob``, each object's ``blob``); a caption, a tag value or any other string
  that holds a URL is compared whole, so an edit to its query string is a change. A change
  of host or path is a change everywhere. (The exported ``blob`` columns keep the URL as it
  was when the media was last written, query string included.)
- **Keys starting with ``_``** (browse-only annotations such as ``_score``) are left out:
  they describe the listing, not the media.

Everything else counts: a new caption, a moved box, an edited tag, a bumped ``updatedAt``.
The digest is BLAKE2b (16 bytes, hex) after the mark ``v2:``.

Two ways to the same text:

- :func:`fingerprint` of a decoded record writes its JSON (``json.dumps``, or orjson where its
  bytes are provably the same);
- :func:`~coreviz_frames.exports.bodyfingerprints.body_fingerprints` takes each record's text
  from the response body it came in, without decoding its values (an export's pages: about a
  fifth of the CPU). The two agree wherever the API writes numbers as Python does (shortest
  round-trip, ``1.5`` not ``1.50``, ``1e-05`` not ``0.00001``) and keys once; where a body
  writes a number otherwise, a media fingerprinted one way by one run and the other way by the
  next is rewritten once by that sync, never missed.

**Key order counts** (a record whose keys the API reorders is rewritten once). Releases
before this one sorted keys and wrote no mark: :func:`legacy_fingerprint` computes that
definition, and :func:`matches` compares a stored fingerprint by the definition it was
written with, so the first sync after an upgrade rewrites no media for the change of
definition (it stores the new fingerprints as it goes).

Example:
    >>> a = {"id": "m1", "blob": "https://b.example/x.jpg?sig=1", "tags": ["a"]}
    >>> b = {"id": "m1", "blob": "https://b.example/x.jpg?sig=2", "tags": ["a"]}
    >>> fingerprint(a) == fingerprint(b), fingerprint(a)[:3], len(fingerprint(a))
    (True, 'v2:', 35)
    >>> fingerprint(a) == fingerprint({**a, "tags": ["https://h/p?v=2"]})
    False
    >>> matches(legacy_fingerprint(a), b), matches(fingerprint(a), b)
    (True, True)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from coreviz_frames._util.jsoncodec import fast_canonical_dumps, fast_canonical_redumps

__all__ = [
    "BLOB_FIELDS",
    "fingerprint",
    "is_legacy",
    "legacy_fingerprint",
    "matches",
    "reference_fingerprint",
    "strip_signature",
    "text_fingerprint",
]

_URL_PREFIXES = ("http://", "https://", "blob://")

#: What every fingerprint of the current definition starts with (one without it is a
#: :func:`legacy_fingerprint`).
VERSION_MARK = "v2:"

#: Where blob URLs sit in a media record: the only strings whose query string and
#: fragment the fingerprint ignores.
BLOB_FIELDS = ("blob", "frames[].blob", "frames[].thumbnailBlob", "frames[].objects[].blob")

# The same, as the keys of each level: the media, a frame, an object.
_MEDIA_KEYS = ("blob",)
_FRAME_KEYS = ("blob", "thumbnailBlob")
_OBJECT_KEYS = ("blob",)


def strip_signature(value: str) -> str:
    """``value`` without query string and fragment if it is a URL, else unchanged.

    Example:
        >>> strip_signature("https://h/p/a.jpg?X-Amz-Signature=abc#f")
        'https://h/p/a.jpg'
        >>> strip_signature("a caption?")
        'a caption?'
    """
    if not value.startswith(_URL_PREFIXES):
        return value
    query, fragment = value.find("?"), value.find("#")
    if query < 0 and fragment < 0:
        return value
    cut = fragment if query < 0 else query if fragment < 0 else min(query, fragment)
    if _plain_netloc(value, cut):
        return value[:cut]  # what urlsplit/urlunsplit give, without parsing
    try:
        parts = urlsplit(value)
    except ValueError:
        return value
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _plain_netloc(value: str, cut: int) -> bool:
    """True when urlsplit/urlunsplit of ``value`` (a URL whose query or fragment starts at
    ``cut``) give back ``value[:cut]``: a non-empty ASCII netloc without brackets (no IPv6
    or NFKC checks apply) and no tab, CR or LF (urlsplit would drop them)."""
    start = value.index("://") + 3
    slash = value.find("/", start, cut)
    netloc = value[start : cut if slash < 0 else slash]
    return (
        bool(netloc)
        and netloc.isascii()
        and "[" not in netloc
        and "]" not in netloc
        and "\t" not in value
        and "\n" not in value
        and "\r" not in value
    )


# ------------------------------------------------------------------ the definition


def _canonical_items(items: Any, keys: tuple[str, ...], below: str | None) -> Any:
    """A list of frames (or objects) as fingerprinted; anything else as :func:`_plain`."""
    if not isinstance(items, (list, tuple)):
        return _plain(items)
    return [_canonical_level(item, keys, below) for item in items]


def _canonical_level(value: Any, keys: tuple[str, ...], below: str | None) -> Any:
    """A media (``below="frames"``), frame (``"objects"``) or object (None) mapping:
    blob URLs in ``keys`` stripped, the level below handled alike, the rest plain."""
    if not isinstance(value, Mapping):
        return _plain(value)
    out = {}
    for k, v in value.items():
        if isinstance(k, str) and k.startswith("_"):
            continue
        if k in keys and isinstance(v, str):
            out[str(k)] = strip_signature(v)
        elif k == below == "frames":
            out[str(k)] = _canonical_items(v, _FRAME_KEYS, "objects")
        elif k == below == "objects":
            out[str(k)] = _canonical_items(v, _OBJECT_KEYS, None)
        else:
            out[str(k)] = _plain(v)
    return out


def _plain(value: Any) -> Any:
    """``value`` with ``_`` keys left out at every depth; strings as they are."""
    if isinstance(value, Mapping):
        return {
            str(k): _plain(v)
            for k, v in value.items()
            if not (isinstance(k, str) and k.startswith("_"))
        }
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def canonical(record: Any) -> Any:
    """``record`` as fingerprinted: blob URLs (:data:`BLOB_FIELDS`) without query strings
    and fragments, ``_`` keys left out; every other string as it is.

    Example:
        >>> canonical({"_score": 0.5, "blob": "https://h/x?s=1", "caption": "https://h/y?s=1"})
        {'blob': 'https://h/x', 'caption': 'https://h/y?s=1'}
    """
    return _canonical_level(record, _MEDIA_KEYS, "frames")


# ------------------------------------------------------------------ the fast path


def _strip_keys(value: dict, keys: tuple[str, ...]) -> dict:
    """``value`` with its blob fields in ``keys`` stripped (a copy only if one changes)."""
    out = value
    for key in keys:
        url = value.get(key)
        if type(url) is str and ("?" in url or "#" in url):
            stripped = strip_signature(url)
            if stripped != url:
                out = dict(value) if out is value else out
                out[key] = stripped
    return out


def _strip_list(items: Any, keys: tuple[str, ...], below: str | None) -> Any:
    """A list (or tuple) of frames or objects with their blob fields stripped (a list copy
    if one changes; both encode alike)."""
    if type(items) is not list and type(items) is not tuple:
        return items
    out: Any = items
    for i, item in enumerate(items):
        new = _strip_exact(item, keys, below)
        if new is not item:
            out = list(items) if out is items else out
            out[i] = new
    return out


def _strip_exact(value: Any, keys: tuple[str, ...], below: str | None) -> Any:
    """One level of :func:`strip_blob_urls` (exact dicts only: other mappings are left to
    :func:`reference_fingerprint`, as the fast encoder refuses them)."""
    if type(value) is not dict:
        return value
    out = _strip_keys(value, keys)
    if below is not None and below in value:
        nested = value[below]
        child = (_FRAME_KEYS, "objects") if below == "frames" else (_OBJECT_KEYS, None)
        new = _strip_list(nested, *child)
        if new is not nested:
            out = dict(out) if out is value else out
            out[below] = new
    return out


def strip_blob_urls(record: Any) -> Any:
    """``record`` with :func:`strip_signature` applied to its :data:`BLOB_FIELDS` only; the
    record itself when none changes, else copies of only the dicts and lists on the way.

    Example:
        >>> rec = {"blob": "https://h/a.jpg?s=1", "frames": [{"blob": "https://h/f?t=2",
        ...        "captions": [{"text": "https://h/c?q=3"}]}]}
        >>> strip_blob_urls(rec)["frames"][0]
        {'blob': 'https://h/f', 'captions': [{'text': 'https://h/c?q=3'}]}
        >>> rec["blob"]
        'https://h/a.jpg?s=1'
    """
    return _strip_exact(record, _MEDIA_KEYS, "frames")


def digest(data: bytes) -> str:
    """The digest of canonical JSON bytes: BLAKE2b, 16 bytes, as hex (no mark).

    Example:
        >>> len(digest(b'{"id":"m1"}'))
        32
    """
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def text_fingerprint(text: bytes) -> str:
    """The fingerprint of a record whose canonical text is ``text`` (see the module doc).

    Example:
        >>> text_fingerprint(b'{"id":"m1"}') == fingerprint({"id": "m1"})
        True
    """
    return VERSION_MARK + digest(text)


def fingerprint(record: Mapping[str, Any]) -> str:
    """The fingerprint of ``record`` (see the module doc): ``v2:`` and 32 hex characters.

    Equal to :func:`reference_fingerprint` for every record.

    Example:
        >>> fingerprint({"id": "m1"}) == fingerprint({"id": "m1"})
        True
        >>> fingerprint({"id": "m1", "n": 1}) == fingerprint({"n": 1, "id": "m1"})
        False
    """
    return VERSION_MARK + _digest_of(record, sort_keys=False)


def legacy_fingerprint(record: Mapping[str, Any]) -> str:
    """The fingerprint of ``record`` as releases before the ``v2:`` mark wrote it: the same
    text with every object's keys sorted, 32 hex characters without a mark.

    Example:
        >>> legacy_fingerprint({"id": "m1", "n": 1}) == legacy_fingerprint({"n": 1, "id": "m1"})
        True
    """
    return _digest_of(record, sort_keys=True)


def is_legacy(stored: str | None) -> bool:
    """Whether ``stored`` (a fingerprint read from an export) was written by the previous
    definition (no ``v2:`` mark); None is no fingerprint, not a legacy one.

    Example:
        >>> is_legacy(legacy_fingerprint({"id": "m1"})), is_legacy(fingerprint({})), is_legacy(None)
        (True, False, False)
    """
    return stored is not None and not stored.startswith(VERSION_MARK)


def matches(stored: str | None, record: Mapping[str, Any], *, current: str | None = None) -> bool:
    """Whether ``stored`` (a fingerprint read from an export, or None) is ``record``'s, by
    the definition it was written with: :func:`fingerprint` for a ``v2:`` one (``current``,
    when already computed), else :func:`legacy_fingerprint`.

    Example:
        >>> matches(legacy_fingerprint({"id": "m1"}), {"id": "m1"}), matches(None, {})
        (True, False)
    """
    if stored is None:
        return False
    if is_legacy(stored):
        return stored == legacy_fingerprint(record)
    return stored == (fingerprint(record) if current is None else current)


def _digest_of(record: Mapping[str, Any], *, sort_keys: bool) -> str:
    """The digest of ``record``'s canonical bytes: orjson where provably equal to the
    standard library, blob URLs stripped only for a record whose bytes hold ``?`` or ``#``,
    the definition itself where a ``"_`` shows (a key to leave out)."""
    data = fast_canonical_dumps(record, sort_keys=sort_keys)
    if data is not None and (b"?" in data or b"#" in data):
        stripped = strip_blob_urls(record)
        if stripped is not record:
            data = fast_canonical_redumps(stripped, sort_keys=sort_keys)
    if data is None or b'"_' in data:
        return _reference_digest(record, sort_keys=sort_keys)
    return digest(data)


def reference_fingerprint(record: Mapping[str, Any]) -> str:
    """The fingerprint by its definition: ``json.dumps`` of :func:`canonical` (slower).

    Example:
        >>> reference_fingerprint({"blob": "https://h/x?s=1"}) == fingerprint(
        ...     {"blob": "https://h/x"})
        True
    """
    return VERSION_MARK + _reference_digest(record, sort_keys=False)


def _reference_digest(record: Mapping[str, Any], *, sort_keys: bool) -> str:
    text = _dumps(record, sort_keys)
    if "?" in text or "#" in text or '"_' in text:  # else canonical(record) is record itself
        text = _dumps(canonical(record), sort_keys)
    # "surrogatepass": a lone surrogate (valid JSON escape, not Unicode) hashes, never raises
    data = text.encode("utf-8", "surrogatepass")
    return digest(data)


def _dumps(value: Any, sort_keys: bool) -> str:
    return json.dumps(
        value, sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False, default=str
    )
