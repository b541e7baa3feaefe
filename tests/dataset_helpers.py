"""Shared by the dataset tests: tables of the local API, and boxes read back by supervision."""

from __future__ import annotations

import numpy as np
import pandas as pd

import coreviz_frames as cvf


def browse_tables(api) -> cvf.MediaTables:
    """The tables of the collection served by ``api``."""
    with cvf.Client(api_key="k", base_url=api.base_url) as client:
        return cvf.to_tables(client.browse(api.collection_id, progress=False))


def table_boxes(tables) -> dict[str, np.ndarray]:
    """``{object id: xyxy}`` of every object with a box, clipped to its frame."""
    objs = tables.objects[tables.objects.bbox_x.notna()]
    xyxy = cvf.boxes_to_xyxy(objs).to_numpy()
    w = objs.frame_width.astype("float64").to_numpy()
    h = objs.frame_height.astype("float64").to_numpy()
    xyxy = np.clip(xyxy, 0, np.stack([w, h, w, h], axis=1))
    return dict(zip(objs.object_id.tolist(), xyxy, strict=True))


def with_frame_blob(tables, frame_id: str, blob) -> cvf.MediaTables:
    """``tables`` with one frame's blob replaced."""
    frames = tables.frames.copy()
    frames.loc[frames.frame_id == frame_id, "blob"] = blob
    return cvf.MediaTables(tables.media, frames, tables.captions, tables.objects, tables.tags)


def objects_with_geometry(tables) -> pd.DataFrame:
    objs = tables.objects
    return objs[objs.bbox_x.notna() & objs.label.notna()]


def claiming(tables, frame_id: str, width: int, height: int) -> cvf.MediaTables:
    """``tables`` whose frame ``frame_id`` (and its objects) claim ``width`` x ``height``."""
    frames, objects = tables.frames.copy(), tables.objects.copy()
    frames.loc[frames.frame_id == frame_id, ["width", "height"]] = (width, height)
    mine = objects.frame_id == frame_id
    objects.loc[mine, ["frame_width", "frame_height"]] = (width, height)
    return cvf.MediaTables(tables.media, frames, tables.captions, objects, tables.tags)
