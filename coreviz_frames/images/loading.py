"""Download and decode images safely: capped, time-limited, bomb-proof, cached, concurrent.

- :func:`load_image` reads one local path or http(s) URL into a fully loaded RGB
  ``PIL.Image`` (EXIF orientation applied, no file handle left open).
- :func:`load_images` loads many concurrently, keeps input order and downloads each
  distinct URL once; with ``on_error="record"`` it returns :class:`ImageResult` rows
  whose ``image`` is None and ``error`` says why, and the rest of the batch goes on.
- :func:`load_blob` loads a blob URL taken from a record (crops and training use it).

URLs taken from records (every ``str`` given to :func:`load_images`, every blob used by
crops and training) are fetched only over http(s): a local path or ``file://`` URL in a
record is refused (reason ``"not an http(s) URL"``). A local file is read only when the
caller names it: any path given to :func:`load_image`, a ``pathlib.Path`` given to
:func:`load_images`; and only a regular file (a FIFO or device would block).

Blob URLs are public: downloads go through a per-thread pooled session that never
sends credentials (no ``x-api-key``, no ``Authorization``, no ``.netrc``), even when
a caller passes a session that has them. Retries (urllib3 ``Retry``, at most 3) cover
connection errors, 429 and 5xx with a short backoff.

Safety: the body is streamed and aborted past ``max_bytes`` (``Content-Length`` is
checked first); ``timeout`` is the total deadline of each attempt (connect, headers and
body together, enforced by :class:`coreviz_frames.http.deadline.Deadline`, so a server that
trickles bytes cannot hold a download); images of more than ``max_pixels`` pixels are
refused before decoding; only common raster formats are decoded; truncated files are
errors (``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` is never changed). The options travel
as one :class:`~coreviz_frames.images.options.DownloadOptions` value.

Example:
    >>> img = load_image("https://blob.example/frame.jpg", max_size=256)   # doctest: +SKIP
    >>> img.mode, max(img.size) <= 256                                    # doctest: +SKIP
    ('RGB', True)
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import threading
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import unquote, urljoin, urlsplit

import requests
import urllib3
from PIL import Image, ImageOps
from requests.utils import requote_uri

from coreviz_frames._util.checks import check_int, check_on_error
from coreviz_frames._util.concurrency import run_fail_fast
from coreviz_frames._util.diskcache import DiskCache
from coreviz_frames._util.progress import progress_bar
from coreviz_frames.errors import ImageLoadError, RequestTimeoutError
from coreviz_frames.http.deadline import Deadline, deadline_for
from coreviz_frames.http.translate import translate_error
from coreviz_frames.http.transport import build_session
from coreviz_frames.http.urls import safe_url
from coreviz_frames.images.options import (
    IMAGE_ON_ERROR,
    DownloadKwargs,
    DownloadOptions,
    MaxSize,
    OnError,
    download_options,
    size_pair,
)

if TYPE_CHECKING:
    from typing import Unpack

__all__ = [
    "ImageResult",
    "is_http_url",
    "load_blob",
    "load_blob_bytes",
    "load_image",
    "load_images",
    "original_suffix",
    "refuse_url",
    "run_ordered",
]
#: Decoders tried on downloaded bytes (others, e.g. FITS or EPS, are never attempted).
IMAGE_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO", "AVIF")
_FALLBACK_MAX_PIXELS = 89_478_485  # Pillow's default MAX_IMAGE_PIXELS
_CHUNK = 64 * 1024
_MAX_REDIRECTS = 10
_CREDENTIAL_HEADERS = ("authorization", "x-api-key", "cookie")
#: ``ImageLoadError.reason`` of a URL from a record that is not http(s).
NOT_HTTP = "not an http(s) URL"

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class ImageResult:
    """One entry of ``load_images(..., on_error="record")``: the image, or None and why.

    Example:
        >>> r = ImageResult("https://x/a.jpg", None, "HTTP 404")
        >>> r.ok
        False
    """

    url: str
    image: Image.Image | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the image loaded."""
        return self.image is not None


# --------------------------------------------------------------------------- session


class _NoCredentials(requests.auth.AuthBase):
    """A requests auth hook that removes every credential header (and blocks .netrc)."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        for name in list(r.headers):
            if name.lower() in _CREDENTIAL_HEADERS:
                del r.headers[name]
        return r


_NO_CREDENTIALS = _NoCredentials()
_local = threading.local()


def _strip_on_redirect(prepared: requests.PreparedRequest, response: requests.Response) -> None:
    _NO_CREDENTIALS(prepared)


def _new_blob_session() -> requests.Session:
    session = build_session(retries=3, pool_size=4, backoff_factor=0.1, backoff_max=2.0)
    session.headers["Accept"] = "image/*,*/*;q=0.5"
    session.auth = _NO_CREDENTIALS  # stops requests from reading ~/.netrc, strips headers
    session.rebuild_auth = _strip_on_redirect  # type: ignore[method-assign]
    return session


def _blob_session() -> requests.Session:
    """This thread's pooled credential-free session (a new one after a fork)."""
    session = getattr(_local, "session", None)
    if session is None or _local.pid != os.getpid():
        session = _new_blob_session()
        _local.session, _local.pid = session, os.getpid()
    return session


# --------------------------------------------------------------------------- fetching


def is_http_url(src: object) -> bool:
    """True for an ``http://`` or ``https://`` URL: the only blob URLs taken from records.

    Example:
        >>> is_http_url("https://x/a.jpg"), is_http_url("file:///etc/passwd"), is_http_url("/a")
        (True, False, False)
    """
    if not isinstance(src, str):
        return False
    try:
        scheme = urlsplit(src).scheme
    except ValueError:  # an unbalanced "[": the download then fails as an ImageLoadError
        scheme = src.partition("://")[0] if "://" in src else ""
    return scheme.lower() in ("http", "https")


def refuse_url(url: str) -> ImageLoadError:
    """The error for a URL from a record that is not http(s) (a local path, ``file://``...)."""
    return _fail(
        url,
        NOT_HTTP,
        "URLs from records are fetched only over http(s); pass a local file to load_image",
    )


def _local_path(src: str | os.PathLike[str]) -> Path:
    if isinstance(src, str) and src.lower().startswith("file://"):
        return Path(unquote(urlsplit(src).path))
    return Path(src)


def _fail(url: str, reason: str, detail: str = "") -> ImageLoadError:
    text = f"cannot load image {url}: {reason}"
    if detail:
        text += f" ({detail})"
    return ImageLoadError(text, url=url, reason=reason)


def _chunks(resp: requests.Response) -> Iterator[bytes]:
    """The body as it arrives: each piece after at most one socket read (so deadlines hold)."""
    read1 = getattr(resp.raw, "read1", None)
    if read1 is None:  # urllib3 < 2
        yield from resp.iter_content(_CHUNK)
        return
    while True:
        chunk = read1(_CHUNK, decode_content=True)
        if not chunk:
            return
        yield chunk


def _get(sess: requests.Session, url: str, *, timeout: float, safe: str) -> requests.Response:
    """GET ``url``, following redirects here: every hop is prepared without credentials.

    requests' own redirect handling re-adds the session's cookies and ``.netrc``
    credentials on each hop of a caller-provided session, after the auth hook ran.
    """
    for _ in range(_MAX_REDIRECTS + 1):
        resp = sess.get(
            url, stream=True, timeout=timeout, auth=_NO_CREDENTIALS, allow_redirects=False
        )
        target = sess.get_redirect_target(resp)
        if target is None:
            return resp
        resp.close()
        url = requote_uri(urljoin(resp.url, target))
        if not is_http_url(url):  # a redirect never leads to a local file
            raise _fail(safe, NOT_HTTP, f"redirected to {safe_url(url)}")
    raise _fail(safe, "download failed", f"more than {_MAX_REDIRECTS} redirects")


def _read_body(resp: requests.Response, safe: str, max_bytes: int) -> bytes:
    """The body of an answered GET, checked (status, size, type) and capped at ``max_bytes``."""
    if resp.status_code >= 400:
        raise _fail(safe, f"HTTP {resp.status_code}", resp.reason or "")
    length = resp.headers.get("Content-Length")
    if length and length.isdigit() and int(length) > max_bytes:
        raise _fail(safe, "too large", f"Content-Length {length} > max_bytes {max_bytes}")
    ctype = (resp.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if ctype.startswith("text/") or ctype in ("application/json", "application/xml"):
        raise _fail(safe, "not an image", f"Content-Type {ctype}")
    buf = bytearray()
    for chunk in _chunks(resp):
        buf += chunk
        if len(buf) > max_bytes:
            raise _fail(safe, "too large", f"more than max_bytes {max_bytes} bytes")
    return bytes(buf)


def _download(url: str, download: DownloadOptions) -> bytes:
    """The body of ``url``, streamed and capped at ``max_bytes``.

    Each attempt (connect, headers and body together) must finish within ``timeout``
    seconds: the package's one deadline mechanism (:class:`coreviz_frames.http.deadline.Deadline`)
    cuts a server that trickles its headers or body.
    """
    safe = safe_url(url)
    timeout = download.timeout
    sess = download.session if download.session is not None else _blob_session()
    late = f"not complete within its total deadline of {timeout:g} s"
    with Deadline(deadline_for(timeout), session=sess) as deadline:
        try:
            with _get(sess, url, timeout=timeout, safe=safe) as resp:
                data = _read_body(resp, safe, download.max_bytes)
        except ImageLoadError:
            raise
        except ValueError as exc:  # a redirect to a URL that cannot be parsed
            raise _fail(safe, "download failed", f"invalid URL ({exc})") from None
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            if deadline.expired:
                raise _fail(safe, "timeout", late) from None
            err = translate_error(safe, exc=exc)  # the package's one classification of failures
            detail = str(err).split(" failed: ", 1)[-1].split(" timed out ", 1)[-1]
            reason = "timeout" if isinstance(err, RequestTimeoutError) else "download failed"
            raise _fail(safe, reason, detail) from None
        if deadline.expired:  # the socket was cut: what arrived is not the whole body
            raise _fail(safe, "timeout", late)
    return data


_formats_cache: tuple[str, ...] | None = None


def _formats() -> tuple[str, ...]:
    global _formats_cache
    if _formats_cache is None:
        Image.init()  # registers every plugin, so the names below can be looked up
        _formats_cache = tuple(f for f in IMAGE_FORMATS if f in Image.OPEN)
    return _formats_cache


def _max_pixels(max_pixels: int | None) -> int:
    if max_pixels is not None:
        return max_pixels
    return Image.MAX_IMAGE_PIXELS or _FALLBACK_MAX_PIXELS


def _to_rgb(image: Image.Image) -> Image.Image:
    """``image`` in RGB mode; transparent pixels composited on white."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        out = Image.new("RGB", rgba.size, (255, 255, 255))
        out.paste(rgba, mask=rgba.getchannel("A"))
        return out
    return image.convert("RGB")


def decode_image(
    source: bytes | str | os.PathLike[str],
    *,
    url: str,
    max_size: MaxSize = None,
    max_pixels: int | None = None,
) -> Image.Image:
    """Decode ``source`` (bytes or a path) into a loaded RGB image; errors name ``url``."""
    limit = _max_pixels(max_pixels)
    target = size_pair(max_size)
    fp = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    try:
        with Image.open(fp, formats=_formats()) as im:
            width, height = im.size
            if width * height > limit:
                raise _fail(url, "decompression bomb", f"{width}x{height} pixels > {limit}")
            if target is not None and im.format == "JPEG":
                want = target
                if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # rotated by 90 degrees
                    want = (target[1], target[0])
                im.draft("RGB", want)
            im.load()
            out = _to_rgb(ImageOps.exif_transpose(im))  # a copy, detached from the file
        if target is not None:
            out.thumbnail(target, Image.Resampling.LANCZOS)
        return out
    except ImageLoadError:
        raise
    except Image.DecompressionBombError as exc:
        raise _fail(url, "decompression bomb", str(exc)) from None
    except Image.UnidentifiedImageError:
        raise _fail(url, "not an image", "no JPEG, PNG, WebP, GIF, BMP or TIFF data") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError, IndexError, TypeError) as exc:
        # UnidentifiedImageError (not an image), "image file is truncated", broken chunks...
        raise _fail(url, "cannot decode", f"{type(exc).__name__}: {str(exc)[:200]}") from None


def _fetch_url(
    url: str, *, max_size: MaxSize, download: DownloadOptions, cache: DiskCache | None
) -> Image.Image:
    """Download (or read from ``cache``) and decode the http(s) URL ``url``."""
    return _fetch_both(url, max_size=max_size, download=download, cache=cache)[1]


def _fetch_both(
    url: str, *, max_size: MaxSize, download: DownloadOptions, cache: DiskCache | None
) -> tuple[bytes, Image.Image]:
    """The bytes of the http(s) URL ``url`` (downloaded, or read from ``cache``) and
    their decoded image."""
    safe = safe_url(url)
    max_pixels = download.max_pixels
    if cache is not None:
        cached = cache.read(url, download.max_bytes)  # a regular file within the cap, or None
        if cached is not None:
            try:
                image = decode_image(cached, url=safe, max_size=max_size, max_pixels=max_pixels)
                return cached, image
            except ImageLoadError as exc:
                cache.discard(url)  # corrupt or truncated entry: fetch it again
                if exc.reason == "decompression bomb":
                    raise
    data = _download(url, download)
    image = decode_image(data, url=safe, max_size=max_size, max_pixels=max_pixels)
    if cache is not None:
        # only bytes that decoded are cached; the cache is best effort (a full disk, a
        # read-only or invalid directory must not fail a load that succeeded)
        with contextlib.suppress(OSError):
            cache.put(url, data)
    return data, image


def load_blob_bytes(
    url: str, *, download: DownloadOptions | None = None
) -> tuple[bytes, Image.Image]:
    """The original bytes of a blob URL and their decoded RGB image (checked as
    :func:`load_blob` checks it): what a writer copies when no conversion is needed.

    Example:
        >>> data, image = load_blob_bytes("https://blob.example/f.jpg")   # doctest: +SKIP
    """
    if not is_http_url(url):
        raise refuse_url(str(url))
    download = download if download is not None else DownloadOptions()
    return _fetch_both(url, max_size=None, download=download, cache=download.cache())


_KEPT_FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}


def original_suffix(data: bytes) -> str | None:
    """The file suffix under which ``data`` can be kept as it is (``.jpg``, ``.png`` or
    ``.webp``), or None: RGB or grey pixels shown as stored (no EXIF rotation or flip).

    Example:
        >>> original_suffix(b"not an image") is None
        True
    """
    try:
        with Image.open(io.BytesIO(data), formats=tuple(_KEPT_FORMATS)) as im:
            plain = im.mode in ("RGB", "L") and im.getexif().get(0x0112, 1) == 1
            return _KEPT_FORMATS.get(im.format or "") if plain else None
    except (OSError, SyntaxError, ValueError):
        return None


def _read_local(
    src: str | os.PathLike[str], *, max_size: MaxSize, download: DownloadOptions
) -> Image.Image:
    """Decode the local file ``src`` (a path or ``file://`` URL): a regular file only."""
    name = str(src)
    if isinstance(src, str) and "://" in src and not src.lower().startswith("file://"):
        raise _fail(name, "unsupported URL scheme")
    path = _local_path(src)
    try:
        st = path.stat()
    except OSError as exc:
        raise _fail(name, "cannot read", f"{type(exc).__name__}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):  # a FIFO or a device would block or never end
        raise _fail(name, "not a regular file")
    if st.st_size > download.max_bytes:
        raise _fail(name, "too large", f"{st.st_size} bytes > max_bytes {download.max_bytes}")
    return decode_image(path, url=name, max_size=max_size, max_pixels=download.max_pixels)


def load_blob(
    url: str, *, max_size: MaxSize = None, download: DownloadOptions | None = None
) -> Image.Image:
    """Load the image of a blob URL taken from a record: fetched only over http(s).

    A local path or ``file://`` URL is refused with an
    :class:`~coreviz_frames.errors.ImageLoadError` (reason ``"not an http(s) URL"``),
    never read. Crops and training load every image through this.

    Example:
        >>> load_blob("/etc/passwd")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        coreviz_frames.errors.ImageLoadError: cannot load image /etc/passwd: not an http(s) URL ...
    """
    if not is_http_url(url):
        raise refuse_url(str(url))
    download = download if download is not None else DownloadOptions()
    return _fetch_url(url, max_size=max_size, download=download, cache=download.cache())


def load_image(
    url_or_path: str | os.PathLike[str],
    *,
    max_size: MaxSize = None,
    download: DownloadOptions | None = None,
    **options: Unpack[DownloadKwargs],
) -> Image.Image:
    """Load one image (local path, ``file://`` or http(s) URL) as a loaded RGB ``PIL.Image``.

    ``max_size`` (int or ``(w, h)``) returns a thumbnail no larger than that, decoding a
    JPEG at reduced scale first. The download options (``timeout``, ``max_bytes``,
    ``max_pixels``, ``cache_dir``, ``session``: see
    :class:`~coreviz_frames.images.options.DownloadOptions`) are keywords, or one ``download=``
    value. ``cache_dir`` (or ``$COREVIZ_FRAMES_CACHE``) keeps the downloaded bytes on disk.
    Any failure raises :class:`~coreviz_frames.errors.ImageLoadError` naming the URL.

    Example:
        >>> img = load_image(tables.frames.blob[0], max_size=512)   # doctest: +SKIP
    """
    opts = download_options(options, download)
    if is_http_url(url_or_path):
        return load_blob(str(url_or_path), max_size=max_size, download=opts)
    return _read_local(url_or_path, max_size=max_size, download=opts)


def run_ordered(
    keys: Sequence[K],
    task: Callable[[K], object],
    *,
    workers: int,
    on_error: OnError,
    progress: bool | None,
    desc: str,
) -> dict[K, object]:
    """Run ``task`` once per distinct key on ``workers`` threads: ``{key: result or error}``.

    With ``on_error="raise"`` the first :class:`ImageLoadError` cancels what has not
    started and is raised; otherwise it is stored as the key's value.

    Example:
        >>> done = run_ordered(["a", "b", "a"], str.upper, workers=2, on_error="raise",
        ...                    progress=False, desc="demo")
        >>> sorted(done.items())   # keys in completion order
        [('a', 'A'), ('b', 'B')]
    """
    distinct = list(dict.fromkeys(keys))
    check_int("workers", workers, minimum=1)
    if not distinct:
        return {}

    def guarded(key: K) -> object:
        try:
            return task(key)
        except ImageLoadError as exc:
            if on_error == "raise":
                raise
            return exc

    with progress_bar(total=len(distinct), desc=desc, unit="img", progress=progress) as bar:
        if workers > 1 and len(distinct) > 1:
            return run_fail_fast(
                distinct, guarded, workers=workers, on_done=lambda *_: bar.update(1)
            )
        out: dict[K, object] = {}
        for key in distinct:
            out[key] = guarded(key)
            bar.update(1)
        return out


def load_images(
    urls: Iterable[str | os.PathLike[str]],
    *,
    workers: int = 8,
    on_error: OnError = "raise",
    max_size: MaxSize = None,
    progress: bool | None = None,
    download: DownloadOptions | None = None,
    **options: Unpack[DownloadKwargs],
) -> list[Image.Image] | list[ImageResult]:
    """Load many images concurrently, in input order, each distinct URL once.

    A ``str`` is a URL, as records carry them, and is fetched only over http(s) (a local
    path or ``file://`` string is refused); a ``pathlib.Path`` is a local file chosen by
    the caller and is read. The download options are those of :func:`load_image`.
    ``on_error="raise"`` returns a list of images and raises the first
    :class:`~coreviz_frames.errors.ImageLoadError`; ``on_error="record"`` returns one
    :class:`ImageResult` per input (``image`` None and ``error`` set on failure).
    A repeated URL yields independent copies of the same image.

    Example:
        >>> results = load_images(tables.frames.blob, on_error="record")   # doctest: +SKIP
        >>> [r.error for r in results if not r.ok]                        # doctest: +SKIP
        []
    """
    check_on_error(on_error, allowed=IMAGE_ON_ERROR)
    opts = download_options(options, download)
    # A path object is the caller's local file; anything else is a URL, as records carry
    # them (http(s) only: a missing blob, None or NaN, is refused like a local path).
    items = [(os.fspath(u), True) if isinstance(u, os.PathLike) else (str(u), False) for u in urls]

    def task(item: tuple[str, bool]) -> Image.Image:
        src, local = item
        if local:
            return _read_local(src, max_size=max_size, download=opts)
        return load_blob(src, max_size=max_size, download=opts)

    done = run_ordered(
        items, task, workers=workers, on_error=on_error, progress=progress, desc="images"
    )
    seen: set[tuple[str, bool]] = set()
    images: list[Image.Image | None] = []
    errors: list[str | None] = []
    for item in items:
        value = done[item]
        if isinstance(value, ImageLoadError):
            images.append(None)
            errors.append(str(value))
            continue
        assert isinstance(value, Image.Image)
        images.append(value.copy() if item in seen else value)
        errors.append(None)
        seen.add(item)
    if on_error == "raise":
        return images  # type: ignore[return-value]
    srcs = [src for src, _ in items]
    return [ImageResult(src, img, err) for src, img, err in zip(srcs, images, errors, strict=True)]
