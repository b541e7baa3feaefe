"""Download and crop options as small frozen values (as httpx has ``Timeout`` and ``Limits``).

- :class:`DownloadOptions`: how one blob is fetched and what is accepted (timeout, size
  and pixel caps, the disk cache, a caller's session).
- :class:`CropOptions`: which crop is cut for an object (source, padding, square,
  minimum and maximum size).

Each is validated once, when built, and raises :class:`~coreviz_frames.errors.ConfigError`
naming the bad option. The public functions (``load_image``, ``load_crops``,
``CropDataset``, ``export_crops``...) keep their keyword arguments, which build these
values, and also accept a ready value as ``download=`` or ``crop=``, so one set of
options can be shared by a dataset, an export and a gallery.

Example:
    >>> crop = CropOptions(square=True, pad=0.1, max_size=224)
    >>> crop.max_size, crop.fit
    ((224, 224), True)
    >>> DownloadOptions(timeout=5).timeout
    5.0
    >>> CropOptions(source="blob", pad=0.1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    coreviz_frames.errors.ConfigError: pad, square and min_size need the frame: ...
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from coreviz_frames._util.checks import check_choice
from coreviz_frames._util.diskcache import DEFAULT_MAX_BYTES, DiskCache, resolve_cache
from coreviz_frames.errors import ConfigError

if TYPE_CHECKING:
    import requests

__all__ = [
    "IMAGE_ON_ERROR",
    "CropDownloadKwargs",
    "CropOptions",
    "DownloadKwargs",
    "DownloadOptions",
    "MaxSize",
    "OnError",
    "download_options",
    "merge_value",
    "size_pair",
    "split_options",
]

#: Seconds a blob download may take by default (connect, headers and body together).
DEFAULT_TIMEOUT = 30.0

OnError = Literal["raise", "record"]
#: The ``on_error`` modes of image loading and cropping (:data:`OnError`).
IMAGE_ON_ERROR: tuple[str, ...] = ("raise", "record")
Source = Literal["auto", "blob", "frame"]
MaxSize = int | tuple[int, int] | None
CacheArg = DiskCache | str | os.PathLike[str] | bool | None


def size_pair(value: Any, *, name: str = "max_size") -> tuple[int, int] | None:
    """``value`` (None, an int or ``(width, height)``) as a pair of positive ints.

    Example:
        >>> size_pair(64), size_pair((32, 16)), size_pair(None)
        ((64, 64), (32, 16), None)
    """
    if value is None:
        return None
    try:
        pair = (value, value) if isinstance(value, numbers.Integral) else tuple(value)
        ok = len(pair) == 2 and all(
            not isinstance(v, bool) and int(v) >= 1 and int(v) == v for v in pair
        )
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok or isinstance(value, bool):
        raise ConfigError(f"{name} must be a positive int or (width, height), got {value!r}")
    return int(pair[0]), int(pair[1])


def _positive_number(name: str, value: Any, *, integer: bool = False) -> None:
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a positive finite number, got {value!r}")
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {value!r}")


def merge_value(cls: type, value: Any, given: Mapping[str, Any], what: str) -> Any:
    """``value`` if given (then no field of ``given`` may differ from its default), else
    ``cls(**given)``: how each options value is built from a function's keywords.

    Example:
        >>> merge_value(CropOptions, None, {"pad": 0.5}, "crop").pad
        0.5
    """
    if value is None:
        return cls(**given)
    if not isinstance(value, cls):
        raise ConfigError(f"{what} must be a {cls.__name__}, got {type(value).__name__}")
    defaults = {f.name: f.default for f in fields(cls)}
    clash = sorted(k for k, v in given.items() if v is not defaults[k] and v != defaults[k])
    if clash:
        raise ConfigError(f"pass either {what}= or {', '.join(clash)}, not both")
    return value


@dataclass(frozen=True)
class DownloadOptions:
    """How a blob is fetched, and what is accepted.

    ``timeout`` bounds each download as a whole (connecting, headers and body), in
    seconds; ``max_bytes`` caps its size; ``max_pixels`` refuses larger images before
    decoding (default ``PIL.Image.MAX_IMAGE_PIXELS``); ``cache_dir`` is a
    :class:`~coreviz_frames._util.diskcache.DiskCache`, a directory, True/None for
    ``$COREVIZ_FRAMES_CACHE``, or False for none; ``session`` a ``requests.Session``
    to send through (credentials are stripped all the same).

    Example:
        >>> DownloadOptions(max_bytes=10_000_000).max_bytes
        10000000
        >>> DownloadOptions(timeout=0)
        Traceback (most recent call last):
        ...
        coreviz_frames.errors.ConfigError: timeout must be positive, got 0
    """

    timeout: float = DEFAULT_TIMEOUT
    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int | None = None
    cache_dir: CacheArg = None
    session: requests.Session | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        _positive_number("timeout", self.timeout)
        object.__setattr__(self, "timeout", float(self.timeout))
        _positive_number("max_bytes", self.max_bytes, integer=True)
        if self.max_pixels is not None:
            _positive_number("max_pixels", self.max_pixels, integer=True)

    def cache(self) -> DiskCache | None:
        """The disk cache to use (``cache_dir``, else ``$COREVIZ_FRAMES_CACHE``), or None."""
        return resolve_cache(self.cache_dir)

    @classmethod
    def build(cls, download: DownloadOptions | None = None, **given: Any) -> DownloadOptions:
        """``download`` if given, else one made from the keyword arguments ``given``.

        Giving both a value and a keyword that differs from its default is a
        :class:`~coreviz_frames.errors.ConfigError`.

        Example:
            >>> DownloadOptions.build(timeout=3.0).timeout
            3.0
        """
        result: DownloadOptions = merge_value(cls, download, given, "download")
        return result


def _rgb(value: Any) -> tuple[int, int, int]:
    """``value`` (one grey level or an RGB triple, 0..255) as an RGB triple."""
    triple = (value, value, value) if isinstance(value, numbers.Integral) else value
    try:
        ok = len(triple) == 3 and all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and 0 <= int(v) <= 255
            for v in triple
        )
    except TypeError:
        ok = False
    if not ok or isinstance(value, bool):
        raise ConfigError(f"fill must be 0..255 or an (r, g, b) triple of 0..255, got {value!r}")
    return int(triple[0]), int(triple[1]), int(triple[2])


@dataclass(frozen=True)
class CropOptions:
    """Which crop is cut for an object.

    ``source``: ``"blob"`` the crop image, ``"frame"`` the box cut from the frame image,
    ``"auto"`` the blob when there is one (the frame when ``pad``, ``square`` or
    ``min_size`` change the box), else the frame. ``pad`` grows each side by a fraction
    of the box, ``square`` makes it square, ``min_size`` (int or ``(w, h)``) grows small
    boxes, ``max_size`` shrinks crops to thumbnails. Sizes are kept as ``(w, h)`` pairs.
    ``fill`` (an RGB triple or one grey level) pads a square crop where its square
    reaches past the image's edge, so ``square=True`` always gives a square.

    Example:
        >>> CropOptions(min_size=50).min_size
        (50, 50)
        >>> CropOptions(source="blob").adjusts
        False
    """

    source: Source = "auto"
    pad: float = 0.0
    square: bool = False
    min_size: MaxSize = None
    max_size: MaxSize = None
    fill: tuple[int, int, int] | int = (0, 0, 0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fill", _rgb(self.fill))
        check_choice("source", self.source, ("auto", "blob", "frame"))
        pad = self.pad
        if isinstance(pad, bool) or not isinstance(pad, numbers.Real) or not math.isfinite(pad):
            raise ConfigError(f"pad must be a non-negative fraction, got {pad!r}")
        if pad < 0:
            raise ConfigError(f"pad must be a non-negative fraction, got {pad!r}")
        object.__setattr__(self, "pad", float(pad))
        object.__setattr__(self, "square", bool(self.square))
        object.__setattr__(self, "min_size", size_pair(self.min_size, name="min_size"))
        object.__setattr__(self, "max_size", size_pair(self.max_size, name="max_size"))
        if self.source == "blob" and self.adjusts:
            raise ConfigError(
                "pad, square and min_size need the frame: use source='auto' or 'frame'"
            )

    @property
    def adjusts(self) -> bool:
        """True when the box is changed (padded, squared or grown) before cutting."""
        return bool(self.pad) or self.square or self.min_size is not None

    @property
    def fit(self) -> bool:
        """True when a grown box is moved back inside the image rather than cut at its edge."""
        return self.square or self.min_size is not None

    @classmethod
    def build(cls, crop: CropOptions | None = None, **given: Any) -> CropOptions:
        """``crop`` if given, else one made from the keyword arguments ``given``.

        Example:
            >>> CropOptions.build(square=True).square
            True
        """
        result: CropOptions = merge_value(cls, crop, given, "crop")
        return result


class DownloadKwargs(TypedDict, total=False):
    """The keyword arguments that build a :class:`DownloadOptions` (see its fields)."""

    timeout: float
    max_bytes: int
    max_pixels: int | None
    cache_dir: CacheArg
    session: requests.Session | None


class CropKwargs(TypedDict, total=False):
    """The keyword arguments that build a :class:`CropOptions` (see its fields)."""

    source: Source
    pad: float
    square: bool
    min_size: MaxSize
    max_size: MaxSize
    fill: tuple[int, int, int] | int


class CropDownloadKwargs(CropKwargs, DownloadKwargs, total=False):
    """The keyword arguments of both :class:`CropOptions` and :class:`DownloadOptions`."""


_DOWNLOAD_FIELDS = frozenset(DownloadKwargs.__annotations__)
_CROP_FIELDS = frozenset(CropKwargs.__annotations__)


def split_options(
    options: Mapping[str, Any],
    *,
    crop: CropOptions | None = None,
    download: DownloadOptions | None = None,
    allowed: frozenset[str] = _CROP_FIELDS | _DOWNLOAD_FIELDS,
) -> tuple[CropOptions, DownloadOptions]:
    """The crop and download values of a function's keyword arguments ``options``.

    An unknown keyword is a ``TypeError``, as Python gives for any function.

    Example:
        >>> crop, download = split_options({"square": True, "timeout": 5})
        >>> crop.square, download.timeout
        (True, 5.0)
    """
    unknown = set(options) - allowed
    if unknown:
        raise TypeError(f"unexpected keyword arguments: {', '.join(sorted(unknown))}")
    crop_kwargs = {k: v for k, v in options.items() if k in _CROP_FIELDS}
    download_kwargs = {k: v for k, v in options.items() if k in _DOWNLOAD_FIELDS}
    return CropOptions.build(crop, **crop_kwargs), DownloadOptions.build(
        download, **download_kwargs
    )


def download_options(
    options: Mapping[str, Any], download: DownloadOptions | None = None
) -> DownloadOptions:
    """The download value of a function's keyword arguments ``options`` (no crop options).

    Example:
        >>> download_options({"max_bytes": 1000}).max_bytes
        1000
    """
    return split_options(options, download=download, allowed=_DOWNLOAD_FIELDS)[1]
