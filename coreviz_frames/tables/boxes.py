"""Box conversions for the ``objects`` table, and a small validated :class:`Box`.

The ``objects`` table stores COCO boxes (``bbox_x, bbox_y, bbox_w, bbox_h``:
left, top, width, height in pixels of the owning frame, whose size is in
``frame_width, frame_height``). These helpers return new DataFrames indexed
like their input; a null box (no polygon) stays null (NaN) in every format.

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"bbox_x": [10.0], "bbox_y": [20.0], "bbox_w": [30.0],
    ...                    "bbox_h": [40.0], "frame_width": [100], "frame_height": [200],
    ...                    "label": ["dog"]})
    >>> boxes_to_xyxy(df).iloc[0].tolist()
    [10.0, 20.0, 40.0, 60.0]
    >>> boxes_to_yolo(df).iloc[0].tolist()
    [0.0, 0.25, 0.2, 0.3, 0.2]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Box", "boxes_to_normalized_xywh", "boxes_to_xyxy", "boxes_to_yolo"]

_BOX = ("bbox_x", "bbox_y", "bbox_w", "bbox_h")


def _xywh(df: pd.DataFrame) -> tuple[np.ndarray, ...]:
    missing = [c for c in _BOX if c not in df.columns]
    if missing:
        raise KeyError(f"missing box columns {missing}: expected an objects table")
    return tuple(pd.to_numeric(df[c]).astype("float64").to_numpy(na_value=np.nan) for c in _BOX)


def _frame_size(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    for c in ("frame_width", "frame_height"):
        if c not in df.columns:
            raise KeyError(f"missing column {c!r}: expected an objects table")
    w = df["frame_width"].astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
    h = df["frame_height"].astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
    # A zero or missing frame size cannot normalise: null, not infinity.
    w = np.where(w > 0, w, np.nan)
    h = np.where(h > 0, h, np.nan)
    return w, h


def boxes_to_xyxy(df: pd.DataFrame) -> pd.DataFrame:
    """Corner boxes ``x1, y1, x2, y2`` in frame pixels.

    Example:
        >>> boxes_to_xyxy(pd.DataFrame({"bbox_x": [1.0], "bbox_y": [2.0],
        ...                             "bbox_w": [3.0], "bbox_h": [4.0]})).x2.tolist()
        [4.0]
    """
    x, y, w, h = _xywh(df)
    return pd.DataFrame({"x1": x, "y1": y, "x2": x + w, "y2": y + h}, index=df.index)


def boxes_to_normalized_xywh(df: pd.DataFrame) -> pd.DataFrame:
    """``x, y, w, h`` divided by the owning frame's width and height (0..1 inside the frame).

    Example:
        >>> boxes_to_normalized_xywh(pd.DataFrame({"bbox_x": [10.0], "bbox_y": [0.0],
        ...     "bbox_w": [50.0], "bbox_h": [20.0], "frame_width": [100],
        ...     "frame_height": [40]})).iloc[0].tolist()
        [0.1, 0.0, 0.5, 0.5]
    """
    x, y, w, h = _xywh(df)
    fw, fh = _frame_size(df)
    return pd.DataFrame({"x": x / fw, "y": y / fh, "w": w / fw, "h": h / fh}, index=df.index)


def boxes_to_yolo(
    df: pd.DataFrame, classes: Sequence[str] | Mapping[str, int] | None = None
) -> pd.DataFrame:
    """YOLO rows: ``class_index`` and normalized centre ``cx, cy`` and size ``w, h``.

    ``classes`` maps labels to indices: a sequence (index = position), a
    mapping, or None for the sorted distinct labels of ``df``. A label outside
    ``classes`` (or a null label) gets a null ``class_index``.

    Example:
        >>> df = pd.DataFrame({"bbox_x": [0.0], "bbox_y": [0.0], "bbox_w": [50.0],
        ...     "bbox_h": [20.0], "frame_width": [100], "frame_height": [40], "label": ["cat"]})
        >>> boxes_to_yolo(df, classes=["dog", "cat"]).iloc[0].tolist()
        [1.0, 0.25, 0.25, 0.5, 0.5]
    """
    if classes is None:
        labels: Iterable = df["label"].dropna().unique() if "label" in df.columns else []
        mapping = {str(label): i for i, label in enumerate(sorted(map(str, labels)))}
    elif isinstance(classes, Mapping):
        mapping = {str(k): int(v) for k, v in classes.items()}
    else:
        mapping = {str(label): i for i, label in enumerate(classes)}
    if "label" in df.columns:
        class_index = df["label"].map(mapping).astype("Int64")
    else:
        class_index = pd.Series(pd.NA, index=df.index, dtype="Int64")
    norm = boxes_to_normalized_xywh(df)
    return pd.DataFrame(
        {
            "class_index": class_index.to_numpy(),
            "cx": (norm["x"] + norm["w"] / 2).to_numpy(),
            "cy": (norm["y"] + norm["h"] / 2).to_numpy(),
            "w": norm["w"].to_numpy(),
            "h": norm["h"].to_numpy(),
        },
        index=df.index,
    ).astype({"class_index": "Int64"})


@dataclass(frozen=True)
class Box:
    """An axis-aligned box ``(x, y, w, h)`` in pixels (left, top, width, height).

    Validated on creation: finite numbers, non-negative width and height.

    Example:
        >>> box = Box(10, 10, 20, 10)
        >>> box.xyxy
        (10.0, 10.0, 30.0, 20.0)
        >>> box.square().xyxy
        (10.0, 5.0, 30.0, 25.0)
        >>> Box(-5, 0, 20, 10).clamp(100, 100)
        (Box(x=0.0, y=0.0, w=15.0, h=10.0), True)
    """

    x: float
    y: float
    w: float
    h: float

    def __post_init__(self) -> None:
        for name in ("x", "y", "w", "h"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise TypeError(f"Box.{name} must be a number, got {value!r}")
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"Box.{name} must be finite, got {value!r}")
            object.__setattr__(self, name, value)
        if self.w < 0 or self.h < 0:
            raise ValueError(f"Box width and height must be >= 0, got w={self.w}, h={self.h}")

    @classmethod
    def from_xyxy(cls, x1: float, y1: float, x2: float, y2: float) -> Box:
        """A box from its corners (``x2 >= x1``, ``y2 >= y1``)."""
        return cls(x1, y1, float(x2) - float(x1), float(y2) - float(y1))

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        """Corners ``(x1, y1, x2, y2)``, e.g. for ``PIL.Image.crop``."""
        return (self.x, self.y, self.x + self.w, self.y + self.h)

    @property
    def area(self) -> float:
        """``w * h`` in square pixels."""
        return self.w * self.h

    def clamp(self, width: float, height: float) -> tuple[Box, bool]:
        """This box cut to the image ``[0, width] x [0, height]``, and whether it changed.

        A box entirely outside the image becomes an empty box on the nearest edge.
        """
        x1, y1, x2, y2 = self.xyxy
        cx1, cy1 = min(max(x1, 0.0), width), min(max(y1, 0.0), height)
        cx2, cy2 = min(max(x2, cx1), width), min(max(y2, cy1), height)
        clamped = (cx1, cy1, cx2, cy2) != (x1, y1, x2, y2)
        return (Box.from_xyxy(cx1, cy1, cx2, cy2) if clamped else self), clamped

    def pad(self, frac: float) -> Box:
        """Grow each side by ``frac`` of the width (left/right) and height (top/bottom)."""
        if frac < -0.5:
            raise ValueError(f"pad fraction must be >= -0.5, got {frac}")
        dx, dy = self.w * frac, self.h * frac
        return Box(self.x - dx, self.y - dy, self.w + 2 * dx, self.h + 2 * dy)

    def square(self) -> Box:
        """The smallest square with the same centre that contains this box."""
        side = max(self.w, self.h)
        cx, cy = self.x + self.w / 2, self.y + self.h / 2
        return Box(cx - side / 2, cy - side / 2, side, side)
