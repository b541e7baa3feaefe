"""Fingerprints straight from a response body: a browse page or a Get Media answer.

:func:`body_fingerprints` decodes the body as the client does
(:func:`~coreviz_frames._util.jsoncodec.loads_checked`, the decoding of ``response.json()``)
and returns ``{normalised media id: fingerprint(record)}``, each value exactly
:func:`~coreviz_frames.exports.fingerprint.fingerprint` of the record the client would yield.
It is what :class:`~coreviz_frames.exports.fingerprintpool.FingerprintPool` runs in its side
processes; it holds no state and imports nothing heavy.

The checks :func:`fingerprint` makes per record are made once per page where the page's
bytes prove their answer (:class:`PageFacts`):

- a body the fast parser decoded holds only plain JSON types and finite floats, so the
  encoder's type and NaN checks (a ``marshal`` of each record) are skipped;
- no number of the body is written with a negative exponent or as ``0.0000..``: then no
  float lies between 1e-9 and 1e-4, the only ones orjson writes otherwise, and the
  per-record float scan is skipped;
- no ``?`` and no ``#`` byte (and no ``\\u00XX`` escape of an ASCII character, as
  ``\\u003f`` is a ``?``): no blob URL needs stripping; likewise ``"_`` for keys that
  start with ``_``.

Anything not proven goes through :func:`fingerprint` itself, record by record.

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

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from coreviz_frames._util.ids import normalize_id
from coreviz_frames._util.jsoncodec import loads_checked
from coreviz_frames.exports.fingerprint import fingerprint, fingerprint_plain

if TYPE_CHECKING:
    from coreviz_frames.exports.structfingerprints import StructFingerprints

__all__ = ["PageFacts", "body_fingerprints"]

# A JSON number (after ":", "," or "[" and optional whitespace) with a negative exponent
# or written 0.0000...: the only spellings of a float between 1e-9 and 1e-4 (a smaller
# mantissa needs the leading zeros; a positive exponent only makes it larger).
_SMALL_FLOAT = re.compile(rb"[:,\[][ \t\r\n]*-?(?:0\.0000|[0-9]+(?:\.[0-9]*)?[eE]-)")
# A \u escape of an ASCII character (\u0000-\u007f): could spell "?", "#", "_" or '"'.
_ASCII_ESCAPE = re.compile(rb"\\u00[0-7]")


def _may_hold_small_float(body: bytes) -> bool:
    """:data:`_SMALL_FLOAT` searched only when a substring every match holds is in ``body``
    (a substring test runs at memory speed; the pattern starts at every ``:`` and ``,``)."""
    if b"0.0000" not in body and b"e-" not in body and b"E-" not in body:
        return False
    return _SMALL_FLOAT.search(body) is not None


def _may_hold_ascii_escape(body: bytes) -> bool:
    """:data:`_ASCII_ESCAPE` searched only when ``body`` holds ``\\u00`` at all."""
    return b"\\u00" in body and _ASCII_ESCAPE.search(body) is not None


@dataclass(frozen=True)
class PageFacts:
    """What one body's bytes prove for every record decoded from it.

    ``plain``: the fast parser decoded it (exact types, finite floats); ``small_floats``:
    a float between 1e-9 and 1e-4 may be in it; ``marks``: a string may hold ``?`` or
    ``#``; ``underscores``: a string may start with ``_`` or hold ``"_``.

    Example:
        >>> PageFacts.of(b'{"a": "x?"}', plain=True)
        PageFacts(plain=True, small_floats=False, marks=True, underscores=False)
        >>> PageFacts.of(b'{"a": "\\\\u005fx", "b": 1e-5}', plain=True).small_floats
        True
    """

    plain: bool
    small_floats: bool
    marks: bool
    underscores: bool

    @classmethod
    def of(cls, body: bytes, *, plain: bool) -> PageFacts:
        escaped = _may_hold_ascii_escape(body)
        return cls(
            plain=plain,
            small_floats=_may_hold_small_float(body),
            marks=escaped or b"?" in body or b"#" in body,
            underscores=escaped or b'"_' in body,
        )

    def joined(self, other: PageFacts) -> PageFacts:
        """What both bodies prove, for a record made of both (a hydrated item)."""
        return PageFacts(
            plain=self.plain and other.plain,
            small_floats=self.small_floats or other.small_floats,
            marks=self.marks or other.marks,
            underscores=self.underscores or other.underscores,
        )

    @property
    def exact_per_page(self) -> bool:
        """True when :func:`fingerprint_plain` gives :func:`fingerprint` for its records."""
        return self.plain and not self.small_floats

    def fingerprint(self, record: Mapping[str, Any]) -> str:
        """``fingerprint(record)``, with the checks this page proved skipped."""
        if not self.exact_per_page:
            return fingerprint(record)
        return fingerprint_plain(record, marks=self.marks, underscores=self.underscores)


def select_records(value: Any, rows: Sequence[int] | None) -> list[tuple[int, dict[str, Any]]]:
    """``(row, record)`` for each record of a decoded body to fingerprint: a page's items at
    ``rows`` (all but folders when None), or the one record (row 0) of a Get Media answer
    (``{"media": {...}}`` or the record itself). ``ValueError`` names what is wrong.

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
        picked = [
            (r, m)
            for r, m in enumerate(media)
            if not (isinstance(m, dict) and m.get("type") == "folder")
        ]
    else:
        bad = [r for r in rows if not (isinstance(r, int) and 0 <= r < len(media))]
        if bad:
            raise ValueError(f"rows {bad[:5]} are not in the page's {len(media)} items")
        picked = [(r, media[r]) for r in rows]
    odd = [r for r, m in picked if not isinstance(m, dict)]
    if odd:
        raise ValueError(f"item {odd[0]} is {type(media[odd[0]]).__name__}, not an object")
    return picked


def _hydrated(item: dict[str, Any], body: bytes, row: int) -> tuple[dict[str, Any], PageFacts]:
    """The record the client yields for a hydrated item: the Get Media ``body``'s record
    with the listed ``item``'s keys added where it lacks them (``Client._hydrated``)."""
    value, plain = loads_checked(body)
    if isinstance(value, dict) and isinstance(value.get("media"), list):
        raise ValueError(f"the hydrated body of row {row} is a page, not a Get Media body")
    ((_, record),) = select_records(value, None)
    full = dict(record)
    for key, field in item.items():
        full.setdefault(key, field)
    return full, PageFacts.of(body, plain=plain)


def body_fingerprints(
    body: bytes,
    rows: Sequence[int] | None = None,
    hydrated: Mapping[int, bytes] | None = None,
    *,
    structs: StructFingerprints | None = None,
) -> dict[str, str]:
    """``{normalised media id: fingerprint(record)}`` for the records of ``body`` that
    :func:`select_records` picks (records without a string id have none; an id seen twice
    keeps its first record, as the client yields only the first). ``hydrated`` maps a row
    of the page to its Get Media body: that row's record is the one the client yields for
    a hydrated item (the full record, plus the listed item's keys it lacks). Raises the
    decoder's ``ValueError`` (``json.JSONDecodeError``) or ``RecursionError`` for a body
    that is not JSON, ``ValueError`` for one of the wrong shape. With ``structs`` a page
    (not hydrated, without a float below 1e-4) is decoded into typed structs (see
    :mod:`~coreviz_frames.exports.structfingerprints`): the same answer in less time.

    Example:
        >>> body_fingerprints(b'{"media": [{"id": "a"}, {"id": "b"}]}', [1]).keys()
        dict_keys(['b'])
        >>> page, full = b'{"media": [{"id": "a", "_score": 1}]}', b'{"media": {"id": "a", "n": 2}}'
        >>> from coreviz_frames.exports.fingerprint import fingerprint
        >>> body_fingerprints(page, hydrated={0: full}) == {"a": fingerprint({"id": "a", "n": 2})}
        True
    """
    if structs is not None and hydrated is None and not _may_hold_small_float(body):
        try:
            fast = structs.page(body, rows)
        except ValueError:  # not JSON: the client's decoder says how
            fast = None
        if fast is not None:
            return fast
    value, plain = loads_checked(body)
    facts = PageFacts.of(body, plain=plain)
    out: dict[str, str] = {}
    for row, item in select_records(value, rows):
        record, proven = item, facts
        if hydrated is not None and row in hydrated:
            record, extra = _hydrated(item, hydrated[row], row)
            proven = facts.joined(extra)
        ident = record.get("id")
        if not isinstance(ident, str):
            continue
        key = normalize_id(ident) or ident
        if key not in out:
            out[key] = proven.fingerprint(record)
    return out
