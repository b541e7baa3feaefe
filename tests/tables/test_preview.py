"""The notebook preview: compact rows, cached crop thumbnails (never a download), summary."""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest
from helpers import ScriptedServer
from PIL import Image

import coreviz_frames as cvf
from coreviz_frames._util.diskcache import DiskCache
from coreviz_frames.images.crops import CropGallery
from coreviz_frames.local_api.synthetic import synthetic_media


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
    with pd.option_context("display.max_columns", 8):
        html = tables._repr_html_()
    objects = _objects_section(html)
    first_id = tables.objects.object_id.iloc[0]
    assert f'title="{first_id}">{first_id[:8]}…</td>' in objects  # short id, full in tooltip
    assert re.search(r"<td>\d+ pts</td>", objects) is None  # polygon is beyond 8 columns here
    header = objects.split("</thead>", 1)[0]
    assert header.count("<th>") == 1 + 8 + 1  # thumbnail, 8 columns, the ellipsis
    assert "<th>…</th>" in header and "<th>extra</th>" in header
    assert "\n" not in html.split("</style>", 1)[1]  # no newline inside a cell
    with pd.option_context("display.max_columns", 0):
        full = _objects_section(tables._repr_html_())
    assert re.search(r"<td>\d+ pts</td>", full)
    (shown,) = re.findall(r">(a very long label[^<]*)</td>", full)
    assert len(shown) == 40 and shown.endswith("…")  # clipped
    assert 'title="a very long label' in full and "with a newline" in full  # all in the tooltip


def test_objects_preview_shows_cached_crops_and_never_downloads(server, monkeypatch, tmp_path):
    monkeypatch.setenv("COREVIZ_FRAMES_CACHE", str(tmp_path / "cache"))
    tables = _tables_with_blobs(server.origin)
    DiskCache(tmp_path / "cache").put(tables.objects.blob.iloc[1], _jpeg((40, 20)))
    html = tables._repr_html_()
    assert _objects_section(html).count('src="data:image/jpeg;base64,') == 1
    assert server.requests == 0  # the other rows are not in the cache: nothing fetched


def test_summary_aligns_its_number_columns():
    tables = cvf.to_tables([synthetic_media(i) for i in range(40)])
    lines = [line for line in str(tables.summary()).splitlines() if line.startswith("  ")]
    assert len({len(line) for line in lines}) == 1  # every number ends in the same column
    assert len({line.rstrip("0123456789,").rstrip().__len__() for line in lines}) > 1


def test_show_crops_scales_small_crops_up_to_the_thumbnail_size():
    tiny = Image.new("RGB", (12, 6), (0, 0, 255))
    html = CropGallery([tiny], ["face"], size=96)._repr_html_()
    assert 'width="96" height="48"' in html
