"""Exact fingerprints of a page's records decoded into typed structs instead of dicts.

:func:`~coreviz_frames.exports.fingerprint.fingerprint` needs each record as Python
objects and its canonical JSON. Decoding a page into dicts is most of that cost (a polygon
point is a dict of two floats); msgspec decodes the same bytes into ``Struct`` objects in
about 60% of the time, and encodes them with sorted keys faster than orjson does dicts.
The result is the same digest, byte for byte, because the canonical JSON is the same:

- a record's shape (which keys hold an object or a list of objects: ``frames``,
  ``objects``, ``polygon``, ``metadata``...) is :func:`record_shape`, taken from the
  declared record type (:data:`~coreviz_frames.tables.arrowrecords.RECORD_TYPE`) in the
  main process and handed to side processes as JSON (they never import pyarrow);
- every key of the shape is optional (an absent key stays absent, an explicit ``null``
  stays ``null``); a leaf holds any JSON scalar; ``metadata.tags`` maps strings to lists;
- msgspec writes every string as ``json.dumps(..., ensure_ascii=False)`` does (checked
  for every code point) and every float with ``1e-4 <= |x| < 1e16`` as ``repr`` does; a
  float beyond 1e16 fails the decoding, and a page that may hold one below 1e-4 is not
  taken at all (:func:`~coreviz_frames.exports.bodyfingerprints.PageFacts`' check);
- ``_`` keys are left out (``_score``) and blob URLs lose their query string and fragment,
  as :func:`~coreviz_frames.exports.fingerprint.canonical` does; the frames and objects of
  a record are walked for that only when the page holds a ``?``, a ``#`` or a ``\\u00``
  escape (which could spell one), else no URL has anything to lose.

A record that does not fit (an unknown field, a tag value that is an object, a ``_`` tag
key, a huge float...) is fingerprinted by :func:`fingerprint` from its exact decoding, so
the answer never depends on which way ran.

Example:
    >>> shape = {"keys": ["id", "blob"], "objects": {}, "lists": {}, "maps": []}
    >>> fast = StructFingerprints(shape)
    >>> body = b'{"media": [{"id": "m1", "blob": "https://h/a.jpg?s=1"}, {"id": "m2", "x": 1}]}'
    >>> from coreviz_frames.exports.fingerprint import fingerprint
    >>> fast.page(body, None) == {"m1": fingerprint({"id": "m1", "blob": "https://h/a.jpg"}),
    ...                           "m2": fingerprint({"id": "m2", "x": 1})}
    True
    >>> fast.decoded, fast.refused
    (1, 1)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from coreviz_frames._util.ids import id_key
from coreviz_frames._util.jsoncodec import loads
from coreviz_frames.exports.fingerprint import digest, fingerprint, strip_signature

try:
    import msgspec
    import msgspec.json
except ImportError:  # optional: without it every record is decoded into dicts
    msgspec = None  # type: ignore[assignment]

__all__ = ["StructFingerprints", "record_shape"]


@dataclass(frozen=True)
class _Level:
    """What one struct type of a record holds to strip, by attribute name."""

    blobs: tuple[str, ...]  # blob URLs (query string and fragment left out)
    hidden: tuple[str, ...]  # keys starting with "_" (left out)
    maps: tuple[str, ...]  # string -> list maps (tags: no key may start with "_")
    objects: tuple[str, ...]  # objects below with something to strip
    lists: tuple[str, ...]  # lists of objects below with something to strip
    # the same, counting no blob URL (a page without "?", "#" or "\u00" has none to strip)
    plain_objects: tuple[str, ...]
    plain_lists: tuple[str, ...]

    @property
    def work(self) -> bool:
        return bool(self.blobs or self.hidden or self.maps or self.objects or self.lists)

    @property
    def plain_work(self) -> bool:
        return bool(self.hidden or self.maps or self.plain_objects or self.plain_lists)


#: The blob URL keys of each level, by the key that leads to it (None: the media).
_BLOB_KEYS = {None: ("blob",), "frames": ("blob", "thumbnailBlob"), "objects": ("blob",)}


def record_shape() -> dict[str, Any]:
    """The nested shape of a media record, as JSON: ``keys`` (leaf keys), ``objects``
    (key -> shape of an object), ``lists`` (key -> shape of each object of a list),
    ``maps`` (keys holding string -> list maps: ``tags``). Imports pyarrow.

    Example:
        >>> shape = record_shape()
        >>> objects = shape["lists"]["frames"]["lists"]["objects"]
        >>> "polygon" in objects["lists"], "tags" in shape["objects"]["metadata"]["maps"]
        (True, True)
    """
    import pyarrow as pa

    from coreviz_frames.tables.arrowrecords import RECORD_TYPE

    def shape(struct: pa.StructType) -> dict[str, Any]:
        out: dict[str, Any] = {"keys": [], "objects": {}, "lists": {}, "maps": []}
        for field in struct:
            kind = field.type
            if pa.types.is_struct(kind) and kind.num_fields == 0:
                out["maps"].append(field.name)  # inferred keys: metadata.tags
            elif pa.types.is_struct(kind):
                out["objects"][field.name] = shape(kind)
            elif pa.types.is_list(kind) and pa.types.is_struct(kind.value_type):
                out["lists"][field.name] = shape(kind.value_type)
            else:
                out["keys"].append(field.name)
        return out

    return shape(RECORD_TYPE)


class StructFingerprints:
    """Decodes records of a given :func:`record_shape` into structs and fingerprints them.

    ``decoded`` and ``refused`` count the records each way (see the module doc).
    """

    def __init__(self, shape: dict[str, Any]) -> None:
        if msgspec is None:
            raise ImportError("msgspec is needed to decode records into structs")
        self._levels: dict[type, _Level] = {}
        self.record = self._struct(shape, None)
        self._decode_record: Callable[[bytes], Any] = msgspec.json.Decoder(self.record).decode
        self._decode_page: Callable[[bytes], Any] = msgspec.json.Decoder(_page_type()).decode
        self._encode = msgspec.json.Encoder(order="sorted").encode
        self.decoded = self.refused = 0
        record: Any = self.record
        names = record.__struct_encode_fields__, record.__struct_fields__
        encoded = dict(zip(*names, strict=True))
        self._id_attr = encoded.get("id", "_none")
        self._type_attr = encoded.get("type", "_none")

    def _struct(self, shape: dict[str, Any], level: str | None) -> Any:
        """A Struct type for ``shape``; its fields carry the API names as renames."""
        scalar: Any = _scalar_type()
        kinds: dict[str, Any] = dict.fromkeys(shape["keys"], scalar | list[scalar])
        for key in shape["maps"]:
            kinds[key] = dict[str, scalar | list[scalar]]
        for key, inner in shape["objects"].items():
            kinds[key] = self._struct(inner, key)
        for key, inner in shape["lists"].items():
            kinds[key] = list[self._struct(inner, key)]  # type: ignore[misc]
        names = {f"f{i}": key for i, key in enumerate(kinds)}
        fields = [
            (attr, kinds[key] | None | msgspec.UnsetType, msgspec.UNSET)
            for attr, key in names.items()
        ]
        struct = msgspec.defstruct(
            f"Level{len(self._levels)}",
            fields,
            rename=names,
            omit_defaults=True,
            forbid_unknown_fields=True,
        )
        attrs = {key: attr for attr, key in names.items()}
        self._levels[struct] = _Level(
            blobs=tuple(attrs[k] for k in _BLOB_KEYS.get(level, ()) if k in attrs),
            hidden=tuple(attr for key, attr in attrs.items() if key.startswith("_")),
            maps=tuple(attrs[k] for k in shape["maps"]),
            # only the levels below with something to strip are walked (never a polygon)
            objects=tuple(attrs[k] for k in shape["objects"] if self._levels[kinds[k]].work),
            lists=tuple(
                attrs[k] for k in shape["lists"] if self._levels[kinds[k].__args__[0]].work
            ),
            plain_objects=tuple(
                attrs[k] for k in shape["objects"] if self._levels[kinds[k]].plain_work
            ),
            plain_lists=tuple(
                attrs[k] for k in shape["lists"] if self._levels[kinds[k].__args__[0]].plain_work
            ),
        )
        return struct

    def page(self, body: bytes, rows: Sequence[int] | None) -> dict[str, str] | None:
        """``{normalised id: fingerprint}`` of the picked records of a browse page (as
        :func:`~coreviz_frames.exports.bodyfingerprints.body_fingerprints`), or None
        when the body is no page this way reads (the caller then goes the dict way)."""
        try:
            items = self._decode_page(body).media
        except (msgspec.DecodeError, RecursionError):
            return None
        if rows is not None and not all(type(r) is int and 0 <= r < len(items) for r in rows):
            return None
        urls = b"?" in body or b"#" in body or b"\\u00" in body  # else no URL to strip
        out: dict[str, str] = {}
        for row in range(len(items)) if rows is None else rows:
            picked = self._one(items[row], folders=rows is None, urls=urls)
            if picked is None:
                return None  # not an object: the dict way says what is wrong
            if picked and picked[0] not in out:
                out[picked[0]] = picked[1]
        return out

    def _one(self, raw: Any, *, folders: bool, urls: bool) -> tuple[str, str] | tuple[()] | None:
        """(id, fingerprint) of one item (``raw``: its bytes), () if it has none to give
        (a folder when ``folders``, no string id), None if it is not an object."""
        try:
            record = self._decode_record(raw)
        except (msgspec.DecodeError, RecursionError):
            record = None
        data = None if record is None else self._canonical(record, urls)
        if data is not None:
            self.decoded += 1
            if folders and getattr(record, self._type_attr, None) == "folder":
                return ()
            ident = id_key(getattr(record, self._id_attr, None))
            return () if ident is None else (ident, digest(data))
        self.refused += 1
        value = loads(bytes(raw))
        if not isinstance(value, dict):
            return None
        ident = id_key(value.get("id"))
        if (folders and value.get("type") == "folder") or ident is None:
            return ()
        return ident, fingerprint(value)

    def _canonical(self, record: Any, urls: bool) -> bytes | None:
        """The canonical JSON of a decoded record (``_`` keys out, blob URLs stripped), or
        None where a ``_`` tag key or a value msgspec cannot write is met."""
        if not self._prepare(record, urls):
            return None
        try:
            return self._encode(record)
        except (TypeError, ValueError, OverflowError):
            return None

    def _prepare(self, level: Any, urls: bool) -> bool:
        """Strip ``level`` (a struct) as the fingerprint's definition does, and the levels
        below it that have something to strip (blob URLs only where ``urls``: the page
        may hold a query string or fragment); False if a tag key starts with ``_`` (the
        dict way leaves it out)."""
        kind = self._levels[type(level)]
        for attr in kind.hidden:
            setattr(level, attr, msgspec.UNSET)
        for attr in kind.blobs if urls else ():
            url = getattr(level, attr)
            if type(url) is str and ("?" in url or "#" in url):
                setattr(level, attr, strip_signature(url))
        for attr in kind.maps:
            tags = getattr(level, attr)
            if type(tags) is dict and any(key.startswith("_") for key in tags):
                return False
        for attr in kind.objects if urls else kind.plain_objects:
            inner = getattr(level, attr)
            if isinstance(inner, msgspec.Struct) and not self._prepare(inner, urls):
                return False
        for attr in kind.lists if urls else kind.plain_lists:
            items = getattr(level, attr)
            if type(items) is list and not all(self._prepare(item, urls) for item in items):
                return False
        return True


def _scalar_type() -> Any:
    """Any JSON scalar; a float only where ``repr`` and msgspec write it alike."""
    bounded = Annotated[float, msgspec.Meta(gt=-1e16, lt=1e16)]
    return str | bool | int | bounded


def _page_type() -> type:
    return msgspec.defstruct("PageItems", [("media", list[msgspec.Raw])])
