"""A hostile corpus of browse pages, shared by the Arrow fast path's tests.

Each :class:`HostileCase` is one browse page body (bytes, as the API would send it) that
the exact path (:func:`coreviz_frames._util.jsoncodec.loads` + ``flatten``) and the Arrow
path (``read_page`` + ``flatten_arrow``) must agree on. ``arrow_reads`` says whether
``read_page`` may read it (False: it must return None, the exact path decides);
``malformed`` that the exact flatten raises a SchemaError for one of its records (in
skip mode it leaves that record out). A page's frame ``timestamp``/``endTimestamp`` given as
JSON numbers (``timestamps_as_numbers``) are read as text: compare them as numbers. Cases
are built from small synthetic records.

Example:
    >>> case = CASES["unknown_media_field"]
    >>> case.arrow_reads, b'"rating"' in case.body
    (False, True)
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass

from coreviz_frames._util.jsoncodec import loads
from coreviz_frames.local_api.synthetic import synthetic_media

__all__ = ["CASES", "HostileCase", "base_records", "folder_row", "page_body"]


@dataclass(frozen=True)
class HostileCase:
    """One browse page body and what the fast path may do with it."""

    name: str
    body: bytes
    arrow_reads: bool
    malformed: bool = False
    note: str = ""

    @property
    def records(self) -> list:
        """The page's items as the exact path decodes them."""
        return loads(self.body)["media"]


def base_records(count: int = 3) -> list[dict]:
    """``count`` small synthetic records (images; index 9 would be a 51-frame video)."""
    return [synthetic_media(i) for i in range(count)]


def page_body(records: list, pagination: dict | None = None, **extra: object) -> bytes:
    """A browse page of ``records`` as the API writes it (stdlib JSON: NaN and lone
    surrogates are written as the escapes/tokens they are)."""
    page = {"media": records, "pagination": pagination or {"total": 3, "hasMore": False}}
    page.update(extra)
    return json.dumps(page).encode()


def _edited(edit) -> list[dict]:
    """Three base records, ``edit(records)`` applied (it changes them in place)."""
    records = copy.deepcopy(base_records())
    edit(records)
    return records


def _frame(records: list, i: int = 0) -> dict:
    return records[i]["frames"][0]


def _case(name: str, records: list, reads: bool, *, malformed: bool = False, note: str = ""):
    return HostileCase(name, page_body(records), reads, malformed, note)


def _raw(name: str, body: bytes, note: str, *, reads: bool = False) -> HostileCase:
    return HostileCase(name, body, reads, note=note)


def _set(path: tuple, value: object):
    """An edit setting ``records[0]`` at ``path`` (keys and list indices) to ``value``."""

    def edit(records: list) -> None:
        node = records[0]
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return edit


def _refused() -> list[HostileCase]:
    """Pages ``read_page`` must refuse (return None)."""
    fr = ("frames", 0)
    obj = point = (*fr, "objects", 0)
    edits = {
        # unknown fields: the exact path keeps them in ``extra``
        "unknown_media_field": _set(("rating",), 5),
        "unknown_media_field_null": _set(("rating",), None),
        "unknown_frame_field": _set((*fr, "exposure"), 1.5),
        "unknown_caption_field": _set((*fr, "captions", 0, "model"), "blip"),
        "unknown_object_field": _set((*obj, "confidence"), 0.9),
        "unknown_metadata_field": _set(("metadata", "source"), "upload"),
        "unknown_moderation_field": _set(("metadata", "moderation", "by"), "bot"),
        "unknown_dataset_field": _set(("dataset", "slug"), "s"),
        "rich_polygon_point": _set((*point, "polygon", 0, "v"), 1),
        "old_generation_exif": _set(("exif",), {"tags": {}}),
        # spellings the exact path tolerates (or names as malformed)
        "int_as_text": _set(("width",), "320"),
        "int_as_float": _set(("width",), 320.0),
        "int_as_exponent": _set(("sizeBytes",), 1e3),
        "int_as_bool": _set(("versionNumber",), True),
        "float_as_text": _set(("duration",), "2.5"),
        "timestamp_as_number": _set((*fr, "timestamp"), 0.5),
        "text_as_number": _set(("name",), 5),
        "id_as_number": _set(("id",), 12345),
        "list_as_text": _set(("metadata", "moderation", "categories"), "nsfw"),
        "tag_value_as_text": _set(("metadata", "tags", "color"), "red"),
        "coordinate_as_text": _set((*point, "polygon", 0, "x"), "1.5"),
        "huge_int": _set(("width",), 2**63),
        "huge_negative_int": _set(("sizeBytes",), -(2**63) - 1),
        "nan_float": _set(("duration",), float("nan")),
        "infinite_score": _set(("_score",), float("inf")),
        "negative_infinite_coordinate": _set((*point, "polygon", 1, "y"), float("-inf")),
        "timestamps_as_numbers_with_nan": lambda r: [
            f.update(timestamp=float("nan") if i == 0 else 0.5)
            for rec in r
            for i, f in enumerate(rec["frames"])
        ],
        "timestamps_as_numbers_mixed": lambda r: (
            r[2]["frames"][0].update(timestamp="0.5")
            or [f.update(timestamp=0.5) for rec in r[:2] for f in rec["frames"]]
        ),
        # lone surrogates (the exact path writes U+FFFD)
        "lone_high_surrogate": _set(("name",), "a\ud800b"),
        "lone_low_surrogate": _set((*fr, "captions", 0, "text"), "\udc00"),
        "lone_surrogate_tag_key": _set(("metadata", "tags", "\ud800"), ["x"]),
        # tags the table cannot show as the exact path reads them
        "null_tag_group": _set(("metadata", "tags", "color"), None),
        "null_single_tag_group": lambda r: [
            rec["metadata"].update(tags={"Tags": None if i == 0 else ["24"]})
            for i, rec in enumerate(r)
        ],
        "empty_tag_group": _set(("metadata", "tags", "color"), []),
        "null_tag_value": _set(("metadata", "tags", "color"), ["red", None]),
        "tag_keys_reordered": lambda r: r[1]["metadata"].update(
            tags={"split": ["odd"], "color": ["green"]}
        ),
        # null items: malformed for the exact path, invisible as such in a struct
        "null_frame": lambda r: r[0]["frames"].append(None),
        "null_caption": lambda r: _frame(r)["captions"].append(None),
        "null_object": lambda r: _frame(r)["objects"].append(None),
        "null_point": lambda r: _frame(r)["objects"][0]["polygon"].append(None),
        # presence the table cannot show: needs_hydration sees "captions" in the frame
        "light_frame_explicit_null_children": lambda r: r[0].update(
            frames=[{"id": "f1", "timestamp": "0", "captions": None}]
        ),
        # a folder field on a media (even as null): the exact path keeps it in extra
        "folder_field_nested_twice": lambda r: r.insert(
            0, {**folder_row(), "folderItemCount": None, "folderPreviews": [{"folderItemCount": 1}]}
        ),
        "folder_tags_shift": lambda r: r.insert(
            0, {**folder_row(), "folderPreviews": [{"tags": {"color": ["red"], "split": ["x"]}}]}
        ),
        "folder_field_on_media": lambda r: (
            r.insert(0, folder_row()),
            r[1].update(folderItemCount=None),
        ),
    }
    cases = [_case(name, _edited(edit), False) for name, edit in edits.items()]
    cases.append(_case("null_media_item", [*base_records(1), None], False, malformed=True))
    good = page_body(base_records())
    cases += [
        _raw("invalid_utf8", good.replace(b"synthetic-0000000", b"synthetic-\xff000000"), ""),
        _raw("cesu_surrogate_bytes", good.replace(b"Synthetic caption", b"\xed\xa0\x80"), ""),
        _raw("utf8_bom", b"\xef\xbb\xbf" + good, "the exact decoder refuses a BOM"),
        _raw("minus_nan", good.replace(b'"duration": null', b'"duration": -NaN', 1), ""),
        _raw("negative_zero_float", good.replace(b'"duration": null', b'"duration": -0', 1), ""),
        _raw("negative_zero_coordinate", re.sub(rb'"x": [0-9.]+', b'"x": -0', good, count=1), ""),
        _raw(
            "timestamp_number_negative_zero",
            re.sub(rb'"timestamp": "[^"]*"', b'"timestamp": -0', good),
            "the reader gives -0.0, the exact path 0.0",
        ),
        _raw("inf_token", good.replace(b'"duration": null', b'"duration": Inf', 1), ""),
        _raw("duplicate_key", good.replace(b'"name": ', b'"name": "x", "name": ', 1), ""),
        _raw("two_values", good + b"\n" + good, "the exact decoder: Extra data"),
        _raw("trailing_garbage", good + b" x", ""),
        _raw("trailing_nul", good + b"\x00", ""),
        _raw("two_values_adjacent", b'{"media": []}{"media": []}', ""),
        _raw("raw_control_char", good.replace(b"Synthetic caption", b"Synthetic\x1fcaption"), ""),
        _raw(
            "repeated_media_key", b'{"media": [], "media": []}', "the exact decoder keeps the last"
        ),
        _raw("media_not_a_list", b'{"media": {"id": "m1"}}', ""),
        _raw("item_not_an_object", b'{"media": [1]}', ""),
        _raw("frames_not_a_list", b'{"media": [{"id": "m1", "frames": {}}]}', ""),
        _raw("extra_page_key", page_body(base_records(), debug=True), ""),
        _raw("pagination_double", page_body(base_records(), {"total": 3.0}), ""),
        _raw("pagination_huge_total", page_body(base_records(), {"total": 2**64}), ""),
        _raw("pagination_nested", page_body(base_records(), {"next": {"offset": 3}}), ""),
    ]
    return cases


def folder_row() -> dict:
    """A folder row as the API lists it (type folder, folder-only fields)."""
    return {
        "id": "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f",
        "name": "Textures",
        "type": "folder",
        "blob": "folder",
        "path": "synthetic.0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f",
        "datasetId": "synthetic",
        "folderItemCount": 12,
        "folderPreviewBlob": "blob://synthetic/preview.jpg",
    }


def _old_generation(records: list) -> None:
    """The first API generation: hyphenated ids, ``entityId``, no path / datasetId."""
    for rec in records:
        uid = rec["id"]
        rec["id"] = f"{uid[:8]}-{uid[8:12]}-{uid[12:16]}-{uid[16:20]}-{uid[20:]}"
        rec["entityId"] = "d5979219-6891-4514-8096-0aa7d8898d33"
        rec["name"] = f"entities/d5979219/media/{rec['name']}"
        for key in ("path", "datasetId", "sourceMediaId", "versionNumber", "dataset"):
            rec.pop(key, None)
        rec["metadata"]["tags"] = {"Tags": ["24"]}


def _read() -> list[HostileCase]:
    """Pages ``read_page`` reads (its rows must equal the decoded records)."""
    fr = ("frames", 0)
    edits = {
        "plain": lambda r: None,
        "old_generation": _old_generation,
        "folders": lambda r: r.insert(1, folder_row()),
        "folder_nested_fields": lambda r: r.insert(
            0,
            {
                **folder_row(),
                "folderPreviews": [{"blob": "blob://p/1.jpg", "size": [64, 48]}],
                "metadata": {"tags": {"color": ["red"]}},
            },
        ),
        "explicit_nulls": lambda r: r[0].update(
            blob=None, duration=None, metadata=None, dataset=None, updatedById=None
        ),
        "null_children": lambda r: r[1].update(frames=None, metadata={"tags": None}),
        "light_items": lambda r: [rec.pop("frames") for rec in r],
        "light_frames": lambda r: r[0].update(frames=[{"id": "f1", "timestamp": "0"}]),
        "empty_frames": lambda r: r[0].update(frames=[]),
        "no_tags": lambda r: [rec["metadata"].pop("tags") for rec in r],
        "single_tag_key_absent_on_one": lambda r: [
            rec["metadata"].update(tags={} if i == 0 else {"Tags": ["24"]})
            for i, rec in enumerate(r)
        ],
        "empty_tags": lambda r: r[0]["metadata"].update(tags={}),
        "tags_subset_in_order": lambda r: r[1]["metadata"].update(tags={"split": ["odd"]}),
        "tag_key_new_later": lambda r: r[2]["metadata"]["tags"].update(zone=["a", "b"]),
        "tag_braces_in_values": _set(("metadata", "tags", "color"), ["{red}", "a,b"]),
        "tag_key_named_tags": _set(("metadata", "tags", "tags"), ["x"]),
        "tag_with_escapes": _set(("metadata", "tags", "color"), ['say "red" \\ }{', "grün"]),
        "tag_keys_escaped": lambda r: [
            rec["metadata"].update(tags={"Farbe\u00e9": ["grün"], 'q"}': ["x"]}) for rec in r
        ],
        "tag_many_values": _set(("metadata", "tags", "color"), ["red", "red", "blue"]),
        "unicode_text": _set((*fr, "captions", 0, "text"), "café 東京 \u0000 😀"),
        "escaped_pair": _set(("name",), "\U0001f600"),  # stdlib json writes \\ud83d\\ude00
        "huge_int_in_float": _set(("duration",), 123456789012345678901234567890),
        "int_in_float": _set(("_score",), 3),
        "score": _set(("_score",), 0.123456789012345678),
        "dataset_id_fallback": lambda r: r[0].pop("datasetId"),
        "disagreeing_media_id": _set((*fr, "mediaId"), "someone-else"),
        "disagreeing_dataset_id": _set(("dataset", "id"), "another"),
        "empty_object_blob": _set((*fr, "objects", 0, "blob"), ""),
        "empty_polygon": _set((*fr, "objects", 0, "polygon"), []),
        "null_polygon": _set((*fr, "objects", 0, "polygon"), None),
        "null_categories_item": _set(("metadata", "moderation", "categories"), ["a", None]),
        "timestamp_text_spellings": _set((*fr, "timestamp"), " 1.50 "),
        "timestamps_as_numbers": lambda r: [
            f.update(timestamp=0.1 * i + 1e-7, endTimestamp=i)
            for rec in r
            for i, f in enumerate(rec["frames"])
        ],
        "pdf_frame_fields": lambda r: _frame(r).update(
            pageNumber=2, endTimestamp="3.5", thumbnailBlob="blob://t", text="page"
        ),
    }
    malformed = {
        "missing_media_id": lambda r: r[0].pop("id"),
        "missing_frame_id": lambda r: _frame(r).pop("id"),
        "unparsable_date": _set(("createdAt",), "yesterday"),
        "date_out_of_range": _set(("updatedAt",), "0000-01-01T00:00:00Z"),
        "null_coordinate": _set((fr[0], 0, "objects", 0, "polygon", 0, "x"), None),
    }
    cases = [_case(name, _edited(edit), True) for name, edit in edits.items()]
    cases += [_case(name, _edited(edit), True, malformed=True) for name, edit in malformed.items()]
    pretty = json.dumps(json.loads(page_body(base_records())), indent=2).encode()
    good = page_body(base_records())
    cases += [
        _raw("pretty_printed", pretty, "newlines between values", reads=True),
        _raw("negative_zero", good.replace(b'"width": 320', b'"width": -0', 1), "", reads=True),
        _raw("raw_utf8", _utf8_page(), "non-ASCII text as UTF-8 bytes", reads=True),
    ]
    return cases


def _utf8_page() -> bytes:
    records = base_records()
    records[0]["name"] = "café-東京.jpg"
    records[1]["metadata"]["tags"] = {"Farbe": ["grün"], "色": ["赤"]}
    return json.dumps({"media": records}, ensure_ascii=False).encode()


#: name -> case, every hostile page.
CASES: dict[str, HostileCase] = {case.name: case for case in (*_refused(), *_read())}
