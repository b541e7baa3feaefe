"""The notebook HTML: compact rows, columns people look for first, cached crop thumbnails at
their declared size (never a download), one style for tables, search results and listings."""

from __future__ import annotations

import io
import re

import pandas as pd
import pyarrow as pa
import pytest
from helpers import ScriptedServer
from PIL import Image

import coreviz_frames as cvf
from coreviz_frames._util.diskcache import DiskCache
from coreviz_frames.api.search import SearchResults
from coreviz_frames.images.crops import CropGallery
from coreviz_frames.local_api.synthetic import synthetic_media
from coreviz_frames.tables.listings import typed_frame


@pytest.fixture
def server():
    srv = ScriptedServer()
    yield srv
    srv.close()


def _tables_with_blobs(origin: str) -> cvf.MediaTables:
    tables = cvf.to_tables([synthetic_media(i) for i in range(4)])
    objects = tables.objects.copy()
    objects["blob"] = [f"{origin}/crops/{i}.jpg?sig=abc" for i in range(len(objects))]
    objects["label"] = objects["label"].astype("string")
    objects.loc[0, "label"] = "a very long label " * 6 + "\nwith a newline"
    return cvf.MediaTables(tables.media, tables.frames, tables.captions, objects, tables.tags)


def _jpeg(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


def _objects_section(html: str) -> str:
    return html.split("<summary>objects", 1)[1].split("</details>", 1)[0]


def test_preview_rows_are_compact(server, monkeypatch, tmp_path):
    monkeypatch.setenv("COREVIZ_FRAMES_CACHE", str(tmp_path / "cache"))
    tables = _tables_with_blobs(server.origin)
    with pd.option_context("display.max_columns", 0):
        html = tables._repr_html_()
    objects = _objects_section(html)
    first_id = tables.objects.object_id.iloc[0]
    assert f'title="{first_id}">{first_id[:8]}…</td>' in objects  # short id, full in tooltip
    assert "\n" not in html.split("</style>", 1)[1]  # no newline inside a cell
    assert re.search(r">\d+ pts</td>", objects)
    (shown,) = re.findall(r">(a very long label[^<]*)</td>", objects)
    assert len(shown) == 40 and shown.endswith("…")  # clipped
    assert 'title="a very long label' in objects and "with a newline" in objects  # in the tooltip


def _headers(section: str) -> list[str]:
    return re.findall(r"<th[^>]*>([^<]*)</th>", section.split("</thead>", 1)[0])


def _section(html: str, grain: str) -> str:
    return html.split(f"<summary>{grain} (", 1)[1].split("</details>", 1)[0]


def test_columns_people_look_for_come_first_and_the_rest_is_named():
    tables = cvf.to_tables([synthetic_media(i) for i in range(6)])
    with pd.option_context("display.max_columns", 12):  # notebook 01's setting
        html = tables._repr_html_()
    objects = _headers(_objects_section(html))
    assert objects[1:5] == ["label", "type", "bbox_w", "bbox_h"]  # after the thumbnail column
    assert objects.index("bbox_h") < objects.index("blob") < len(objects) - 1
    assert "object_id" not in objects and objects[-1] == "…"  # ids beyond the 12 shown
    hidden = re.search(r'title="(\d+) more columns: ([^"]*)"', _objects_section(html))
    assert hidden and "object_id" in hidden.group(2) and hidden.group(2).endswith("extra")
    assert len(objects) == 1 + 12 + 1
    media = _headers(_section(html, "media"))
    assert media[:2] == ["name", "type"] and {"width", "height", "created_at"} <= set(media)
    captions = _headers(_section(html, "captions"))
    assert captions[0] == "text" and captions.index("timestamp") < captions.index("caption_id")
    with pd.option_context("display.max_columns", 0):
        everything = _headers(_section(tables._repr_html_(), "media"))
    ids = [everything.index(c) for c in ("media_id", "dataset_id")]
    sparse = [everything.index(c) for c in ("updated_by_id", "source_media_id", "extra")]
    assert max(ids) < min(sparse)  # ids before mostly-empty columns, those last


def test_cells_are_aligned_inline_so_notebook_stylesheets_cannot_right_align_text():
    tables = cvf.to_tables([synthetic_media(i) for i in range(3)])
    objects = _objects_section(tables._repr_html_())
    label = tables.objects.label.iloc[0]
    assert f'<td style="text-align:left">{label}</td>' in objects
    assert re.search(r'<td style="text-align:right[^"]*">\d', objects)  # numbers right
    assert '<th style="text-align:left">label</th>' in objects


def test_objects_preview_shows_cached_crops_and_never_downloads(server, monkeypatch, tmp_path):
    monkeypatch.setenv("COREVIZ_FRAMES_CACHE", str(tmp_path / "cache"))
    tables = _tables_with_blobs(server.origin)
    DiskCache(tmp_path / "cache").put(tables.objects.blob.iloc[1], _jpeg((40, 20)))
    html = tables._repr_html_()
    assert _objects_section(html).count('src="data:image/jpeg;base64,') == 1
    assert server.requests == 0  # the other rows are not in the cache: nothing fetched
    # sizes as attributes and inline, so JupyterLab's img {max-width:100%} cannot shrink it
    (img,) = re.findall(r"<img [^>]*>", html)
    assert 'width="48" height="24"' in img
    assert 'style="max-width:none;width:48px;height:24px;' in img
    assert html.count('<td style="min-width:48px;width:48px') == 5  # every row's thumb cell


def test_summary_aligns_its_number_columns():
    tables = cvf.to_tables([synthetic_media(i) for i in range(40)])
    lines = [line for line in str(tables.summary()).splitlines() if line.startswith("  ")]
    assert len({len(line) for line in lines}) == 1  # every number ends in the same column
    assert len({line.rstrip("0123456789,").rstrip().__len__() for line in lines}) > 1


def test_show_crops_scales_small_crops_up_to_the_thumbnail_size():
    tiny = Image.new("RGB", (12, 6), (0, 0, 255))
    html = CropGallery([tiny], ["face"], size=96)._repr_html_()
    assert 'width="96" height="48"' in html
    assert html.startswith('<div class="coreviz-frames"><style>')  # the shared style
    assert "max-width:none;width:96px;height:48px" in html


def _search_body() -> dict:
    ids = [f"{i:032x}" for i in range(1, 4)]
    results = [
        {"id": ids[i], "media": {"id": ids[0], "name": "rocket.jpg"}, "rank": 1 - i / 10}
        for i in range(3)
    ]
    return {"results": results}


def test_search_results_say_the_query_once_with_short_ids():
    res = SearchResults.from_response(_search_body(), query="rocket launch")
    html = res._repr_html_()
    assert html.count("rocket launch") == 1  # in the caption, not on every row
    assert "<caption>3 hit(s) for &#x27;rocket launch&#x27; in 1 media</caption>" in html
    frame_id = res.hits.frame_id.iloc[1]
    assert f'title="{frame_id}">{frame_id[:8]}…</td>' in html and f">{frame_id}<" not in html
    assert _headers(html)[:3] == ["hit_rank", "name", "rank"]
    assert html.count(">rocket.jpg</td>") == 3
    assert html.startswith('<div class="coreviz-frames"><style>')


def test_listings_render_in_the_shared_style_and_derive_plain_frames():
    listing = typed_frame(
        [("collection_id", pa.string()), ("name", pa.string()), ("extra", pa.string())],
        [{"collection_id": "c" * 32, "name": "Sample"}],
    )
    html = listing._repr_html_()
    assert html.startswith('<div class="coreviz-frames"><style>')
    assert f'title="{"c" * 32}">cccccccc…</td>' in html
    assert _headers(html) == ["name", "collection_id", "extra"]
    assert type(listing[["name"]]) is pd.DataFrame  # a selection is a plain DataFrame
    assert "cvf-preview" not in listing[["name"]]._repr_html_()
    with pd.option_context("display.max_rows", 4, "display.min_rows", 2):
        long = typed_frame([("name", pa.string())], [{"name": f"n{i}"} for i in range(9)])
        assert long._repr_html_().count("<tr>") == 1 + 2 and "7 more rows" in long._repr_html_()
