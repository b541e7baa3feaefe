"""load_image / load_images against a real HTTP server on 127.0.0.1 serving hostile files."""

from __future__ import annotations

import io
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from PIL import Image, ImageFile

from coreviz_frames.errors import ConfigError, ImageLoadError
from coreviz_frames.images.loading import ImageResult, decode_image, load_image, load_images


def jpeg_bytes(size=(64, 48), color=(200, 30, 30), **save) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG", quality=90, **save)
    return buf.getvalue()


def noise_jpeg(size=(320, 240)) -> bytes:
    buf = io.BytesIO()
    Image.effect_noise(size, 60).convert("RGB").save(buf, "JPEG", quality=90)
    return buf.getvalue()


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


Route = tuple[int, dict[str, str], bytes] | Callable[[BaseHTTPRequestHandler], None]


class BlobServer:
    """A ThreadingHTTPServer with fixed routes; records (path, headers) of every request."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.hits: dict[str, int] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                outer.requests.append((path, dict(self.headers)))
                outer.hits[path] = outer.hits.get(path, 0) + 1
                route = outer.routes.get(path)
                if route is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if callable(route):
                    route(self)
                    return
                status, headers, body = route
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address) -> None:
                pass  # clients that hang up early (timeouts, size caps) are expected

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def add(
        self,
        path: str,
        body: bytes,
        *,
        status: int = 200,
        ctype: str = "image/jpeg",
        headers: dict[str, str] | None = None,
    ) -> str:
        self.routes[path] = (status, {"Content-Type": ctype, **(headers or {})}, body)
        return self.url + path

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _no_length(body: bytes):
    def handler(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "image/jpeg")
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(body)
        h.close_connection = True

    return handler


def _jpeg_head(h: BaseHTTPRequestHandler, body: bytes) -> None:
    """Status 200 and the headers of a JPEG of ``len(body)`` bytes."""
    h.send_response(200)
    h.send_header("Content-Type", "image/jpeg")
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()


def _slow(delay: float, body: bytes):
    def handler(h: BaseHTTPRequestHandler) -> None:
        time.sleep(delay)
        _jpeg_head(h, body)
        h.wfile.write(body)

    return handler


def _trickle(body: bytes, pause: float):
    def handler(h: BaseHTTPRequestHandler) -> None:
        _jpeg_head(h, body)
        try:
            for i in range(0, len(body), 64):
                h.wfile.write(body[i : i + 64])
                h.wfile.flush()
                time.sleep(pause)
        except OSError:
            pass
        h.close_connection = True

    return handler


def _trickle_headers(body: bytes, pause: float):
    """The status line and headers one byte every ``pause`` seconds, then the body."""

    def handler(h: BaseHTTPRequestHandler) -> None:
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\n"
            f"X-Padding: {'x' * 80}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        try:
            for i in range(len(head)):
                h.wfile.write(head[i : i + 1])
                h.wfile.flush()
                time.sleep(pause)
            h.wfile.write(body)
        except OSError:
            pass
        h.close_connection = True

    return handler


def _flaky(failures: int, body: bytes):
    state = {"n": 0}

    def handler(h: BaseHTTPRequestHandler) -> None:
        state["n"] += 1
        if state["n"] <= failures:
            h.send_response(503)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        _jpeg_head(h, body)
        h.wfile.write(body)

    return handler


def bomb_png(width: int = 20000, height: int = 20000) -> bytes:
    """A PNG header claiming ``width`` x ``height`` pixels, with a tiny (too short) body."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
        + chunk(b"IEND", b"")
    )


BOMB = bomb_png()  # 400 Mpx declared, a few hundred bytes on the wire
GOOD = jpeg_bytes()
NOISE = noise_jpeg()


@pytest.fixture(scope="module")
def server():
    srv = BlobServer()
    srv.add("/good.jpg", GOOD)
    srv.add("/noise.jpg", NOISE)
    srv.add("/bomb.png", BOMB, ctype="image/png")
    srv.add("/truncated.jpg", NOISE[: len(NOISE) // 2])
    srv.add("/html.jpg", b"<!doctype html><html><body>Not found</body></html>")
    srv.add("/html-ctype.jpg", b"<html></html>", ctype="text/html")
    srv.add("/big.jpg", NOISE + b"\0" * 200_000)
    srv.routes["/big-nolength.jpg"] = _no_length(NOISE + b"\0" * 200_000)
    srv.routes["/slow.jpg"] = _slow(1.5, GOOD)
    srv.routes["/trickle.jpg"] = _trickle(NOISE, 0.02)
    srv.routes["/flaky.jpg"] = _flaky(2, GOOD)
    srv.routes["/trickle-headers.jpg"] = _trickle_headers(GOOD, 0.5)
    srv.routes["/trickle-body.jpg"] = _trickle(NOISE, 0.5)
    srv.add("/missing.jpg", b"", status=404)
    srv.add("/redirect.jpg", b"", status=302, headers={"Location": "/good.jpg"})
    rgba = Image.new("RGBA", (10, 10), (255, 0, 0, 0))
    srv.add("/rgba.png", png_bytes(rgba), ctype="image/png")
    yield srv
    srv.close()


def test_loads_a_fully_loaded_rgb_image(server):
    img = load_image(server.url + "/good.jpg")
    assert isinstance(img, Image.Image)
    assert img.mode == "RGB" and img.size == (64, 48)
    assert getattr(img, "fp", None) is None  # no lazy file handle
    assert img.getpixel((5, 5))[0] > 150


def test_transparent_png_is_composited_on_white(server):
    img = load_image(server.url + "/rgba.png")
    assert img.mode == "RGB" and img.getpixel((0, 0)) == (255, 255, 255)


def test_local_path_and_file_url_leave_no_open_file(tmp_path):
    path = tmp_path / "a.jpg"
    path.write_bytes(GOOD)
    before = len(os.listdir("/proc/self/fd"))
    imgs = [load_image(path), load_image(str(path)), load_image(path.as_uri())]
    assert all(i.size == (64, 48) for i in imgs)
    assert len(os.listdir("/proc/self/fd")) == before
    os.remove(path)  # nothing holds it


def test_exif_orientation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    path.write_bytes(jpeg_bytes((40, 20), exif=exif.tobytes()))
    assert load_image(path).size == (20, 40)
    assert load_image(path, max_size=10).size == (5, 10)


def test_max_size_gives_a_thumbnail_via_draft(tmp_path):
    path = tmp_path / "large.jpg"
    path.write_bytes(noise_jpeg((2000, 1500)))
    img = load_image(path, max_size=200)
    assert img.size == (200, 150) and img.mode == "RGB"
    assert load_image(path, max_size=(100, 300)).size == (100, 75)
    with pytest.raises(ConfigError):
        load_image(path, max_size=0)


@pytest.mark.parametrize(
    ("path", "reason", "kwargs"),
    [
        ("/bomb.png", "decompression bomb", {}),
        ("/good.jpg", "decompression bomb", {"max_pixels": 1000}),
        ("/big.jpg", "too large", {"max_bytes": 100_000}),
        ("/big-nolength.jpg", "too large", {"max_bytes": 100_000}),
        ("/truncated.jpg", "cannot decode", {}),
        ("/html.jpg", "not an image", {}),
        ("/html-ctype.jpg", "not an image", {}),
        ("/missing.jpg", "HTTP 404", {}),
    ],
)
def test_hostile_files_raise_image_load_error_naming_the_url(server, path, reason, kwargs):
    url = server.url + path
    with pytest.raises(ImageLoadError) as info:
        load_image(url, **kwargs)
    assert info.value.url == url
    assert url in str(info.value)
    assert info.value.reason == reason
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_bomb_is_refused_before_decoding_local_file(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(BOMB)
    with pytest.raises(ImageLoadError, match="decompression bomb"):
        load_image(path)


def test_timeouts(server):
    start = time.monotonic()
    with pytest.raises(ImageLoadError) as info:
        load_image(server.url + "/slow.jpg", timeout=0.2)
    assert info.value.reason == "timeout"
    assert time.monotonic() - start < 3.0  # 4 attempts of 0.2 s plus short backoffs
    with pytest.raises(ImageLoadError, match="timeout"):  # every read in time, the total not
        load_image(server.url + "/trickle.jpg", timeout=0.05)


def test_retries_503_then_succeeds(server):
    assert load_image(server.url + "/flaky.jpg").size == (64, 48)
    assert server.hits["/flaky.jpg"] == 3


def test_batch_records_failures_and_loads_the_rest(server):
    bad = ["/bomb.png", "/big.jpg", "/truncated.jpg", "/html.jpg", "/missing.jpg"]
    urls = [server.url + p for p in ["/good.jpg", *bad, "/noise.jpg"]]
    results = load_images(urls, on_error="record", max_bytes=150_000, workers=4, progress=False)
    assert [type(r) for r in results] == [ImageResult] * len(urls)
    assert [r.url for r in results] == urls
    assert [r.ok for r in results] == [True, False, False, False, False, False, True]
    for r in results[1:-1]:
        assert r.image is None and r.url in r.error
    assert results[-1].image.size == (320, 240)


def test_batch_raise_mode(server):
    urls = [server.url + "/good.jpg", server.url + "/truncated.jpg"]
    with pytest.raises(ImageLoadError, match="truncated"):
        load_images(urls, progress=False)
    imgs = load_images([server.url + "/good.jpg", server.url + "/noise.jpg"], progress=False)
    assert [i.size for i in imgs] == [(64, 48), (320, 240)]
    with pytest.raises(ConfigError):
        load_images(urls, on_error="skip")


def test_a_missing_url_is_a_recorded_failure_not_a_crash(server):
    urls = [None, float("nan"), server.url + "/good.jpg"]
    results = load_images(urls, on_error="record", progress=False)
    assert [r.ok for r in results] == [False, False, True]
    assert all("not an http(s) URL" in r.error for r in results[:2])
    with pytest.raises(ImageLoadError, match="None: not an http"):
        load_images([None], progress=False)


def test_each_distinct_url_downloaded_once_order_kept(server):
    server.hits.pop("/noise.jpg", None)
    server.hits.pop("/good.jpg", None)
    urls = [server.url + p for p in ["/noise.jpg", "/good.jpg", "/noise.jpg", "/noise.jpg"]]
    imgs = load_images(urls, workers=4, progress=False)
    assert [i.size for i in imgs] == [(320, 240), (64, 48), (320, 240), (320, 240)]
    assert imgs[0] is not imgs[2]  # independent copies
    assert server.hits["/noise.jpg"] == 1 and server.hits["/good.jpg"] == 1


def test_no_credentials_ever_sent(server, monkeypatch, tmp_path):
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login user password hunter2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    leaky = requests.Session()
    leaky.headers.update({"x-api-key": "sk-secret", "Authorization": "Bearer tok"})
    start = len(server.requests)
    load_image(server.url + "/good.jpg")
    load_image(server.url + "/redirect.jpg")
    load_image(server.url + "/good.jpg", session=leaky)
    load_images([server.url + "/noise.jpg"], session=leaky, progress=False)
    sent = server.requests[start:]
    assert len(sent) >= 5
    for _, headers in sent:
        names = {k.lower() for k in headers}
        assert not names & {"authorization", "x-api-key", "cookie"}, headers


def test_decode_image_bytes():
    assert decode_image(GOOD, url="mem").size == (64, 48)
    with pytest.raises(ImageLoadError, match="not an image"):
        decode_image(b"", url="mem")


def test_missing_local_file():
    with pytest.raises(ImageLoadError, match="cannot read"):
        load_image("/nonexistent/x.jpg")
    with pytest.raises(ImageLoadError, match="unsupported URL scheme"):
        load_image("ftp://host/x.jpg")


def test_caller_session_sends_no_cookie_or_netrc_across_a_redirect(server, monkeypatch, tmp_path):
    # requests' own redirect handling re-adds a session's cookies and .netrc credentials
    # on every hop, after the per-request auth hook has stripped them
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login user password hunter2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    leaky = requests.Session()
    leaky.headers.update({"x-api-key": "sk-secret"})
    leaky.cookies.set("session", "cookie-secret")
    start = len(server.requests)
    assert load_image(server.url + "/redirect.jpg", session=leaky).size == (64, 48)
    sent = server.requests[start:]
    assert [path for path, _ in sent] == ["/redirect.jpg", "/good.jpg"]
    for _, headers in sent:
        names = {k.lower() for k in headers}
        assert not names & {"authorization", "x-api-key", "cookie"}, headers


def test_a_redirect_to_a_local_file_is_refused(server, tmp_path):
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(GOOD)
    server.add("/to-file.jpg", b"", status=302, headers={"Location": secret.as_uri()})
    with pytest.raises(ImageLoadError, match="redirected to file://") as info:
        load_image(server.url + "/to-file.jpg")
    assert info.value.reason == "not an http(s) URL"


def test_redirect_loop_is_an_image_load_error(server):
    server.add("/loop.jpg", b"", status=302, headers={"Location": "/loop.jpg"})
    with pytest.raises(ImageLoadError, match="redirects") as info:
        load_image(server.url + "/loop.jpg")
    assert info.value.url == server.url + "/loop.jpg"


def test_an_unusable_cache_directory_does_not_fail_the_load(server, tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    results = load_images(
        [server.url + "/good.jpg"], cache_dir=not_a_dir, on_error="record", progress=False
    )
    assert results[0].ok, results[0].error
    assert load_image(server.url + "/good.jpg", cache_dir=not_a_dir).size == (64, 48)


def run_within(fn, seconds: float = 20.0):
    """``fn()`` run in a thread: its value, or its exception raised here; fails (instead of
    hanging the suite) if it is still running after ``seconds``."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]


@pytest.mark.parametrize("path", ["/trickle-headers.jpg", "/trickle-body.jpg"])
def test_a_trickling_server_cannot_hold_a_download_past_its_deadline(server, path):
    # one byte every 0.5 s: every read in time, the headers alone took 45 s with timeout=1
    url = server.url + path
    with pytest.raises(ImageLoadError) as info:
        run_within(lambda: load_image(url, timeout=1), 15.0)
    assert info.value.reason == "timeout" and info.value.url == url
    results = load_images([url], timeout=1, on_error="record", progress=False)
    assert not results[0].ok and "timeout" in results[0].error


def test_a_record_url_that_cannot_be_parsed_is_an_image_load_error(server):
    """A blob URL or redirect with an unbalanced ``[`` (urlsplit's ValueError) fails that
    image, typed, and never the batch."""
    bad = ["http://a]b/x.jpg", "https://[::1/x.jpg"]
    for url in bad:
        with pytest.raises(ImageLoadError):
            load_image(url, timeout=2)
    server.add("/bad-redirect.jpg", b"", status=302, headers={"Location": "http://[oops/x.jpg"})
    with pytest.raises(ImageLoadError, match="bad-redirect"):
        load_image(server.url + "/bad-redirect.jpg", timeout=2)
    results = load_images([*bad, server.url + "/good.jpg"], on_error="record", timeout=2)
    assert [r.ok for r in results] == [False, False, True]
    assert all("cannot load image" in (r.error or "") for r in results[:2]), results
