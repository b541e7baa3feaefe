"""The notebook preview in a real browser, inside JupyterLab's own stylesheet.

The sample collection's ``MediaTables._repr_html_`` becomes the output of a notebook cell
(a crop gallery and a search below it), exported with nbconvert's ``lab`` template
(JupyterLab's CSS, light and dark themes) and its ``classic`` one (classic Notebook's CSS),
and opened in headless Chromium. The page is narrower than the objects table, the case where
JupyterLab's ``img {max-width: 100%}`` rendered every thumbnail 0×0. The test measures the
thumbnails (``getBoundingClientRect`` against the declared width and height), which headers
are shown, and the cells' alignment.

Chromium: ``$COREVIZ_FRAMES_CHROMIUM`` or the first of ``chromium``, ``chromium-browser``,
``google-chrome`` on the PATH (``.ci/run`` installs Debian's ``chromium`` when apt can),
driven through the ``playwright`` package (dev extra; no browser download). Without one the
test is skipped, the reason printed by ``pytest -ra``. Screenshots of each rendering go to
``$COREVIZ_FRAMES_SCREENSHOTS``, else ``build/preview-screenshots/`` at the repository root.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import coreviz_frames as cvf

BROWSER_ENV = "COREVIZ_FRAMES_CHROMIUM"
SCREENSHOTS_ENV = "COREVIZ_FRAMES_SCREENSHOTS"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: Narrower than the objects table at 12 columns: the layout that squeezed thumbnails to 0×0.
VIEWPORT = {"width": 900, "height": 900}
RENDERINGS = [("lab", "light"), ("lab", "dark"), ("classic", "light")]

_MEASURE = """() => {
  const rect = (e) => { const r = e.getBoundingClientRect();
                        return {left: r.left, width: r.width, height: r.height}; };
  const out = {thumbs: [], grains: {}};
  for (const d of document.querySelectorAll('.coreviz-frames details')) {
    const grain = d.querySelector('summary').textContent.split(' ')[0];
    const opened = d.open;
    d.open = true;
    const table = d.querySelector('table');
    out.grains[grain] = {
      headers: Array.from(table.querySelectorAll('thead th')).map(
        (th) => ({text: th.textContent, ...rect(th)})),
      cells: Array.from(table.querySelector('tbody tr').children).map(
        (td) => getComputedStyle(td).textAlign),
    };
    if (grain === 'objects') {
      out.thumbs = Array.from(table.querySelectorAll('img')).map((img) => (
        {declared: [Number(img.getAttribute('width')), Number(img.getAttribute('height'))],
         ...rect(img)}));
    }
    d.open = opened;
  }
  out.gallery = Array.from(document.querySelectorAll('.coreviz-frames figure img')).map(
    (img) => ({declared: [Number(img.getAttribute('width')), Number(img.getAttribute('height'))],
               ...rect(img)}));
  const hits = document.querySelector('.coreviz-frames table caption').closest('table');
  out.hits = Array.from(hits.querySelectorAll('thead th')).map(
    (th) => ({text: th.textContent, ...rect(th)}));
  return out;
}"""
_OPEN_ALL = "() => document.querySelectorAll('.coreviz-frames details').forEach(d => d.open = true)"


def _executable() -> str:
    chosen = os.environ.get(BROWSER_ENV)
    if chosen:
        return chosen
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(
        f"no Chromium: none of {', '.join(BROWSERS)} on the PATH and ${BROWSER_ENV} unset "
        "(Debian/Ubuntu: apt-get install chromium)"
    )


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    executable = _executable()
    with sync_api.sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(
                executable_path=executable, args=["--no-sandbox", "--disable-gpu"]
            )
        except sync_api.Error as exc:
            pytest.skip(f"Chromium at {executable} did not start: {str(exc).splitlines()[0]}")
        page = browser.new_page(viewport=VIEWPORT)
        # the exported page names CDN scripts (require.js, MathJax): offline, never fetched
        page.route("**/*", _local_only)
        yield page
        browser.close()


def _local_only(route: Any) -> None:
    if route.request.url.startswith(("file:", "data:", "about:")):
        route.continue_()
    else:
        route.abort()


@pytest.fixture(scope="module")
def outputs(sample_api, tmp_path_factory) -> dict[str, str]:
    """The HTML of three notebook cells on the sample collection, at notebook 01's
    ``display.max_columns=12``: the tables' preview with the crops in the disk cache (as after
    ``show_crops``; the repr itself downloads nothing), a crop gallery and a search."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COREVIZ_FRAMES_CACHE", str(cache))
        with cvf.Client(api_key="local-sample", base_url=sample_api.base_url) as client:
            tables = cvf.to_tables(client.browse(sample_api.collection_id, progress=False))
            cvf.load_crops(tables, source="blob", on_error="record", progress=False)
            gallery = cvf.show_crops(tables, n=6, size=64)
            results = client.search("rocket launch", limit=5)
        with pd.option_context("display.max_columns", 12):
            return {
                "tables": tables._repr_html_(),
                "cvf.show_crops(tables, n=6, size=64)": gallery._repr_html_(),
                "client.search('rocket launch', limit=5)": results._repr_html_(),
            }


def _export(outputs: dict[str, str], template: str, theme: str) -> str:
    """A notebook of one cell per output (source -> HTML), as nbconvert's HTML page."""
    nbformat = pytest.importorskip("nbformat")
    nbconvert = pytest.importorskip("nbconvert", reason="nbconvert not installed")
    cells = []
    for count, (source, html) in enumerate(outputs.items(), 1):
        cell = nbformat.v4.new_code_cell(source, execution_count=count)
        data = {"text/html": html, "text/plain": source}
        cell.outputs = [nbformat.v4.new_output("execute_result", data=data, execution_count=count)]
        cells.append(cell)
    with warnings.catch_warnings():  # jupyter_core's notice about its platformdirs move
        warnings.simplefilter("ignore", DeprecationWarning)
        exporter = nbconvert.HTMLExporter(template_name=template, theme=theme)
        body, _ = exporter.from_notebook_node(nbformat.v4.new_notebook(cells=cells))
    return body


def _screenshots() -> Path:
    folder = os.environ.get(SCREENSHOTS_ENV)
    path = Path(folder) if folder else Path(__file__).parents[2] / "build" / "preview-screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _visible(grain: dict, viewport_width: int) -> set[str]:
    return {h["text"] for h in grain["headers"] if h["width"] > 0 and h["left"] < viewport_width}


@pytest.mark.parametrize(("template", "theme"), RENDERINGS)
def test_preview_renders_at_its_declared_sizes_in_notebook_stylesheets(
    page, outputs, tmp_path, template, theme
):
    exported = tmp_path / f"preview-{template}-{theme}.html"
    exported.write_text(_export(outputs, template, theme), encoding="utf-8")
    page.goto(exported.as_uri(), wait_until="load")
    folder = _screenshots()
    page.screenshot(path=str(folder / f"preview-{template}-{theme}.png"), full_page=True)
    measured = page.evaluate(_MEASURE)
    page.evaluate(_OPEN_ALL)
    page.screenshot(path=str(folder / f"preview-{template}-{theme}-all.png"), full_page=True)
    sizes = [(t["width"], t["height"]) for t in measured["thumbs"]]
    print(f"{template}/{theme}: thumbnails rendered at {sizes}; screenshots in {folder}")

    thumbs = measured["thumbs"]
    assert len(thumbs) >= 3  # the sample's first objects have cached crops
    for thumb in thumbs:
        assert max(thumb["declared"]) == 48, thumb
        assert [thumb["width"], thumb["height"]] == thumb["declared"], thumb
    objects, media = measured["grains"]["objects"], measured["grains"]["media"]
    assert "label" in _visible(objects, VIEWPORT["width"])
    assert {"label", "type", "bbox_w", "bbox_h"} <= _visible(objects, 10_000)
    assert {"name", "type", "width", "height", "created_at"} <= _visible(media, 10_000)
    texts = [h["text"] for h in objects["headers"]]
    aligned = dict(zip(texts, objects["cells"], strict=True))
    assert aligned["label"] == "left" and aligned["type"] == "left"  # not JupyterLab's right
    assert aligned["bbox_w"] == "right"
    gallery = measured["gallery"]
    assert len(gallery) == 6 and all(max(g["declared"]) == 64 for g in gallery), gallery
    assert all([g["width"], g["height"]] == g["declared"] for g in gallery), gallery
    assert {"hit_rank", "name", "rank"} <= _visible({"headers": measured["hits"]}, 10_000)
