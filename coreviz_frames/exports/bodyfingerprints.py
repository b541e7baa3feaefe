"""Fingerprints straight from a response body: a browse page or a Get Media answer.

:func:`body_fingerprints` returns ``{normalised media id: fingerprint}`` for the records of a
body, each taken from the record's own text in the body: the body is made compact
(``msgspec.json.format``: whitespace outside strings removed, every byte of a value kept),
split into records without decoding their values, and each record's text is hashed
(:func:`~coreviz_frames.exports.fingerprint.text_fingerprint`). Only a record whose text
holds ``"_`` (a key to leave out), ``?`` or ``#`` (a blob URL to strip) or a backslash (a
string escaped otherwise than Python's ``json`` writes it) is looked into: its objects and
lists are rebuilt from their raw members (:class:`_Canonical`), the members that need it
normalised as :func:`~coreviz_frames.exports.fingerprint.canonical` does, the rest kept as
written. The result is :func:`~coreviz_frames.exports.fingerprint.fingerprint` of the
decoded record wherever the body writes its numbers as Python does and each key once (the
module doc of :mod:`~coreviz_frames.exports.fingerprint` says why that suffices). A body that
is not strict JSON (``NaN``, a lone surrogate escape) or not UTF-8 is decoded as the client
decodes it and its records fingerprinted by
:func:`~coreviz_frames.exports.fingerprint.fingerprint`.

It is what :class:`~coreviz_frames.exports.fingerprintpool.FingerprintPool` runs; it holds
no state and imports nothing heavy.

Example:
    >>> body = b'{"media": [{"id": "M1", "blob": "https://h/a.jpg?sig=1"}, {"id": "f", '
    >>> body += b'"type": "folder"}], "pagination": {"offset": 0}}'
    >>> from coreviz_frames.exports.fingerprint import fingerprint
    >>> body_fingerprints(body) == {"M1": fingerprint({"id": "M1", "blob": "https://h/a.jpg"})}
    True
    >>> list(body_fingerprints(b'{"media": {"id": "m2"}}'))
    ['m2']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from coreviz_frames._util.ids import normalize_id
from coreviz_frames._util.jsoncodec import loads_checked
from coreviz_frames.exports.fingerprint import fingerprint, strip_signature, text_fingerprint

__all__ = ["body_fingerprints"]

_Members = dict[str, msgspec.Raw]
_OBJECT = msgspec.json.Decoder(_Members)
_ITEMS = msgspec.json.Decoder(list[msgspec.Raw])
_VALUE = msgspec.json.Decoder()
_ENCODE = msgspec.json.Encoder().encode
# What makes a record's text worth looking into (see the module doc).
_LOOK_INTO = (b'"_', b"?", b"#", b"\\")
_Level = tuple[tuple[str, ...], "str | None"]


def _needs_look(text: bytes) -> bool:
    # "_" alone first: one byte is searched at memory speed, two bytes are not
    return (b"_" in text and b'"_' in text) or b"?" in text or b"#" in text or b"\\" in text


class _Object(msgspec.Struct):
    blob: str | None = None


class _Frame(msgspec.Struct):
    blob: str | None = None
    thumbnailBlob: str | None = None
    objects: list[_Object] | None = None


class _Media(msgspec.Struct):
    blob: str | None = None
    frames: list[_Frame] | None = None


class _Page(msgspec.Struct):
    media: list[_Members]


_SKELETON = msgspec.json.Decoder(_Media)
_PAGE = msgspec.json.Decoder(_Page)
_BLOB_KEYS = (b'"blob":"', b'"thumbnailBlob":"')


def _strip_in_place(text: bytes) -> bytes | None:
    """``text`` (a compact record without ``\\`` nor ``"_``) with its blob URLs stripped
    where they stand, or None if that cannot be proved to be :func:`canonical`'s stripping.

    Without a backslash every ``"`` of the text delimits a string, so each ``"blob":"`` is a
    key and its string value; when there are exactly as many as there are string blob
    fields at the places :data:`BLOB_FIELDS` names (the record's skeleton, decoded), every
    one is such a field."""
    try:
        media = _SKELETON.decode(text)
    except msgspec.ValidationError:
        return None
    frames = media.frames or []
    fields = (media.blob is not None) + sum(
        (f.blob is not None)
        + (f.thumbnailBlob is not None)
        + sum(o.blob is not None for o in f.objects or [])
        for f in frames
    )
    starts = sorted(at + len(key) for key in _BLOB_KEYS for at in _occurrences(text, key))
    if len(starts) != fields:
        return None
    out, last = [], 0
    for start in starts:
        end = text.index(b'"', start)
        url = text[start:end].decode("utf-8", "surrogatepass")
        out += [text[last:start], strip_signature(url).encode("utf-8", "surrogatepass")]
        last = end
    out.append(text[last:])
    return b"".join(out)


def _occurrences(text: bytes, key: bytes) -> list[int]:
    found, at = [], text.find(key)
    while at != -1:
        found.append(at)
        at = text.find(key, at + 1)
    return found


class _Canonical:
    """A record's canonical text from its raw members: objects and lists rebuilt only where
    something in them changes, ``_`` keys left out, blob URLs stripped at their places,
    escaped strings written as Python's ``json`` writes them."""

    MEDIA: _Level = (("blob",), "frames")
    FRAME: _Level = (("blob", "thumbnailBlob"), "objects")
    OBJECT: _Level = (("blob",), None)

    def record(self, members: _Members) -> bytes:
        return _ENCODE(self._level(members, self.MEDIA))

    def _level(self, members: _Members, level: _Level) -> _Members:
        keys, below = level
        out: _Members = {}
        for key, raw in members.items():
            if key.startswith("_"):
                continue
            text = bytes(raw)
            if key in keys:
                out[key] = self._url(text)
            elif key == below and text.startswith(b"["):
                out[key] = self._items(text, self.FRAME if below == "frames" else self.OBJECT)
            else:
                out[key] = self._plain(text)
        return out

    def _items(self, text: bytes, level: _Level) -> msgspec.Raw:
        if not _needs_look(text):
            return msgspec.Raw(text)
        items = []
        for item in _ITEMS.decode(text):
            item_text = bytes(item)
            if item_text.startswith(b"{"):
                items.append(msgspec.Raw(_ENCODE(self._level(_OBJECT.decode(item_text), level))))
            else:
                items.append(self._plain(item_text))
        return msgspec.Raw(_ENCODE(items))

    def _url(self, text: bytes) -> msgspec.Raw:
        if not text.startswith(b'"'):
            return self._plain(text)
        if not _needs_look(text):
            return msgspec.Raw(text)
        return msgspec.Raw(_ENCODE(strip_signature(_VALUE.decode(text))))

    def _plain(self, text: bytes) -> msgspec.Raw:
        """``text`` with ``_`` keys left out at every depth and escaped strings rewritten."""
        if not _needs_look(text):
            return msgspec.Raw(text)
        if text.startswith(b'"'):
            return msgspec.Raw(_ENCODE(_VALUE.decode(text)) if b"\\" in text else text)
        if text.startswith(b"["):
            items = [self._plain(bytes(item)) for item in _ITEMS.decode(text)]
            return msgspec.Raw(_ENCODE(items))
        if text.startswith(b"{"):
            members = _OBJECT.decode(text)
            kept = {k: self._plain(bytes(v)) for k, v in members.items() if not k.startswith("_")}
            return msgspec.Raw(_ENCODE(kept))
        return msgspec.Raw(text)


_CANONICAL = _Canonical()


def select_records(value: Any, rows: Sequence[int] | None) -> list[tuple[int, Any]]:
    """``(row, record)`` for each record of a body to fingerprint: a page's items at
    ``rows`` (all but folders when None), or the one record (row 0) of a Get Media answer
    (``{"media": {...}}`` or the record itself). ``value`` is the decoded body (records as
    dicts), or its raw members (records as raw members too). ``ValueError`` names what is
    wrong.

    Example:
        >>> select_records({"media": [{"id": "a"}, {"id": "b", "type": "folder"}]}, None)
        [(0, {'id': 'a'})]
        >>> select_records({"media": [{"id": "a"}, {"id": "b"}]}, [1])
        [(1, {'id': 'b'})]
    """
    if not isinstance(value, dict):
        raise ValueError(f"the body is JSON {type(value).__name__}, not an object")
    media = value.get("media")
    if not isinstance(media, list):
        record = media if isinstance(media, dict) else value
        if rows is not None and list(rows) != [0]:
            raise ValueError(f"rows {list(rows)[:5]} given for a Get Media body (one record)")
        return [(0, record)]
    if rows is None:
        picked = [(r, m) for r, m in enumerate(media) if not (isinstance(m, dict) and _folder(m))]
    else:
        bad = [r for r in rows if not (isinstance(r, int) and 0 <= r < len(media))]
        if bad:
            raise ValueError(f"rows {bad[:5]} are not in the page's {len(media)} items")
        picked = [(r, media[r]) for r in rows]
    odd = [r for r, m in picked if not isinstance(m, dict)]
    if odd:
        raise ValueError(f"item {odd[0]} is {_kind(media[odd[0]])}, not an object")
    return picked


def _folder(record: Mapping[str, Any]) -> bool:
    kind = record.get("type")
    if isinstance(kind, msgspec.Raw):
        return _text_value(kind) == "folder"
    return kind == "folder"


def _text_value(raw: msgspec.Raw) -> Any:
    """The value of a raw member if it is a string, else None (never decodes a container)."""
    text = bytes(raw)
    return _VALUE.decode(text) if text.startswith(b'"') else None


def _kind(item: Any) -> str:
    """The Python type name of an item, raw or decoded (for an error message)."""
    if isinstance(item, msgspec.Raw):
        item = _VALUE.decode(item)
    return type(item).__name__


def _raw_members(body: bytes) -> tuple[dict[str, Any], bool]:
    """The body's top level as raw members, its ``media`` split into raw members too (a
    page's items, or a Get Media record), and whether any record may need a look;
    ``ValueError`` if it is not strict JSON."""
    text = msgspec.json.format(body, indent=-1)
    text.decode("utf-8")  # UnicodeDecodeError: the client's decoder replaces bad bytes
    look = _needs_look(text)
    try:
        return {"media": _PAGE.decode(text).media}, look  # a page of objects: one pass
    except msgspec.ValidationError:
        pass
    top: dict[str, Any] = _OBJECT.decode(text)
    media = top.get("media")
    if media is None:  # the record itself (a Get Media body)
        return top, look
    first = bytes(memoryview(media)[:1])
    if first == b"[":
        items: list[Any] = []
        for item in _ITEMS.decode(media):
            items.append(_OBJECT.decode(item) if bytes(memoryview(item)[:1]) == b"{" else item)
        top["media"] = items
    elif first == b"{":
        top["media"] = _OBJECT.decode(media)
    return top, look


def _raw_text(members: _Members, look: bool = True) -> bytes:
    """A record's canonical text from its raw members (``look=False``: its body proved that
    none of them needs a look)."""
    text = _ENCODE(members)
    if not look or not _needs_look(text):
        return text
    if b"\\" not in text and not (b"_" in text and b'"_' in text):
        stripped = _strip_in_place(text)  # only blob URLs to strip, the usual case
        if stripped is not None:
            return stripped
    return _CANONICAL.record(members)


def _raw_id(members: _Members) -> str | None:
    """The normalised id of a record's raw members, or None if it is not a string."""
    raw = members.get("id")
    ident = _text_value(raw) if raw is not None else None
    return (normalize_id(ident) or ident) if isinstance(ident, str) else None


def _hydrated(item: Mapping[str, Any], value: Any, row: int) -> dict[str, Any]:
    """The record the client yields for a hydrated item: the record of ``value`` (a Get
    Media body, decoded or as raw members) with the listed ``item``'s keys added where it
    lacks them (``Client._hydrated``)."""
    if isinstance(value, dict) and isinstance(value.get("media"), list):
        raise ValueError(f"the hydrated body of row {row} is a page, not a Get Media body")
    ((_, record),) = select_records(value, None)
    if not isinstance(record, dict):
        raise ValueError(f"the hydrated body of row {row} is {_kind(record)}, not an object")
    full = dict(record)
    for key, field in item.items():
        full.setdefault(key, field)
    return full


def _from_text(
    body: bytes, rows: Sequence[int] | None, hydrated: Mapping[int, bytes] | None
) -> dict[str, str]:
    """:func:`body_fingerprints` from the records' text; ``ValueError`` (``DecodeError``)
    where a body is not strict JSON."""
    value, look = _raw_members(body)
    out: dict[str, str] = {}
    for row, members in select_records(value, rows):
        joined = hydrated is not None and row in hydrated
        if joined:
            members = _hydrated(members, _raw_members(hydrated[row])[0], row)  # type: ignore[index]
        key = _raw_id(members)
        if key is not None and key not in out:
            out[key] = text_fingerprint(_raw_text(members, look or joined))
    return out


def _from_records(
    body: bytes, rows: Sequence[int] | None, hydrated: Mapping[int, bytes] | None
) -> dict[str, str]:
    """:func:`body_fingerprints` of the records as the client decodes them."""
    value, _ = loads_checked(body)
    out: dict[str, str] = {}
    for row, item in select_records(value, rows):
        record = item
        if hydrated is not None and row in hydrated:
            record = _hydrated(item, loads_checked(hydrated[row])[0], row)
        ident = record.get("id")
        if not isinstance(ident, str):
            continue
        key = normalize_id(ident) or ident
        if key not in out:
            out[key] = fingerprint(record)
    return out


def body_fingerprints(
    body: bytes, rows: Sequence[int] | None = None, hydrated: Mapping[int, bytes] | None = None
) -> dict[str, str]:
    """``{normalised media id: fingerprint}`` for the records of ``body`` that
    :func:`select_records` picks (records without a string id have none; an id seen twice
    keeps its first record, as the client yields only the first). ``hydrated`` maps a row
    of the page to its Get Media body: that row's record is the one the client yields for
    a hydrated item (the full record, plus the listed item's keys it lacks). Raises the
    decoder's ``ValueError`` (``json.JSONDecodeError``) or ``RecursionError`` for a body
    that is not JSON, ``ValueError`` for one of the wrong shape.

    Example:
        >>> body_fingerprints(b'{"media": [{"id": "a"}, {"id": "b"}]}', [1]).keys()
        dict_keys(['b'])
        >>> page, full = b'{"media": [{"id": "a", "_score": 1}]}', b'{"media": {"id": "a", "n": 2}}'
        >>> from coreviz_frames.exports.fingerprint import fingerprint
        >>> body_fingerprints(page, hydrated={0: full}) == {"a": fingerprint({"id": "a", "n": 2})}
        True
    """
    try:
        return _from_text(body, rows, hydrated)
    except (msgspec.MsgspecError, UnicodeDecodeError):  # not strict JSON, or not UTF-8
        return _from_records(body, rows, hydrated)
