"""The one HTTP client of coreviz_frames: a pooled session and :class:`Transport`.

- :func:`build_session` makes a ``requests.Session`` whose adapter pools connections and
  retries with the package's policy (:func:`~coreviz_frames.http.retry.build_retry`), its
  connections watched by :class:`~coreviz_frames.http.deadline.Deadline`.
- :class:`Transport` sends GETs, gives every attempt the total deadline
  :func:`~coreviz_frames.http.deadline.deadline_for` ``timeout``, adds the credentials
  *per request* and only for URLs on the API's own origin (never as session defaults),
  follows redirects itself so a hop to another origin never carries them, decodes JSON,
  and turns every failure into a typed error
  (:func:`~coreviz_frames.http.translate.translate_error`).

The sibling modules: :mod:`.urls` (origins, the URLs messages show), :mod:`.deadline`
(cancellation and total deadlines), :mod:`.retry` (the retry policy), :mod:`.translate`
(error translation) and :mod:`.credentials` (keys and tokens).

Example:
    >>> session = build_session(retries=2, backoff_factor=0.1, pool_size=8)
    >>> session.get_adapter("https://lab.coreviz.io").max_retries.total
    2
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, ProtocolError, ReadTimeoutError
from urllib3.util.retry import Retry

from coreviz_frames._util.jsoncodec import response_json
from coreviz_frames.errors import (
    CorevizError,
    InvalidResponseError,
    NotFoundError,
    RequestCancelledError,
)
from coreviz_frames.http.credentials import Credentials, mask_secrets
from coreviz_frames.http.deadline import Cancellation, Deadline, deadline_for, watch_session
from coreviz_frames.http.notfound import (
    PROBE_PATH,
    PROBE_SECONDS,
    explain_not_found,
    verdict_of,
)
from coreviz_frames.http.retry import build_retry
from coreviz_frames.http.translate import translate_error
from coreviz_frames.http.urls import is_same_origin, request_label, safe_url

__all__ = ["Transport", "build_session", "pin_environment"]

logger = logging.getLogger("coreviz_frames.http")

#: Redirect hops followed by :class:`Transport` before giving up.
MAX_REDIRECTS = 5
#: Bytes asked of the socket per read of a response body whose length is not declared, or
#: is declared above :data:`WHOLE_READ_MAX` (requests' own ``content`` reads 10 KiB at a
#: time: ~100 reads, each holding the GIL, for a 1 MB page).
BODY_CHUNK = 1 << 20
#: A body whose ``Content-Length`` is at most this is read in one call: one copy from the
#: socket (reads of :data:`BODY_CHUNK` cost two more copies in urllib3's buffer). Beyond
#: it, a declared length is not allocated up front: the body is read as it comes.
WHOLE_READ_MAX = 64 << 20
DEFAULT_USER_AGENT = "coreviz-frames"


def read_whole(response: requests.Response) -> bytes:
    """Read the body of a ``stream=True`` response and keep it as its ``content``
    (``response.json()``, ``.text`` then use it, as for ``stream=False``): in one read when
    its declared length is at most :data:`WHOLE_READ_MAX`, else in :data:`BODY_CHUNK` reads.

    Read errors are those of ``response.content`` (``ChunkedEncodingError``,
    ``ConnectionError``, ...); call it inside the attempt's :class:`Deadline`.

    Example:
        >>> # response = session.get(url, stream=True); data = read_whole(response)
    """
    if response._content is False:  # not read yet (what requests' own .content checks)
        if response.raw is None or response.status_code == 0:
            response._content = None
        else:
            length = _declared_length(response)
            chunk = None if length is not None and length <= WHOLE_READ_MAX else BODY_CHUNK
            response._content = b"".join(response.iter_content(chunk)) or b""
        response._content_consumed = True
    return response._content or b""


def _declared_length(response: requests.Response) -> int | None:
    """The body's ``Content-Length``, or None when absent, malformed or overridden by a
    ``Transfer-Encoding`` (then the length is not known before the end)."""
    if "Transfer-Encoding" in response.headers:
        return None
    value = response.headers.get("Content-Length", "").strip()
    return int(value) if value.isdigit() else None


def build_session(
    *,
    retries: int = 5,
    pool_size: int = 10,
    backoff_factor: float = 0.5,
    backoff_max: float = 30.0,
    backoff_jitter: float | None = None,
) -> requests.Session:
    """A ``requests.Session`` with a pooled, retrying adapter on http:// and https://.

    ``pool_size`` should be at least the number of threads that share the session. No
    credentials are set on the session: :class:`Transport` adds them per request.

    Example:
        >>> s = build_session(retries=3, pool_size=32)
        >>> s.get_adapter("https://lab.coreviz.io").max_retries.total
        3
    """
    session = requests.Session()
    retry = build_retry(
        retries,
        backoff_factor=backoff_factor,
        backoff_max=backoff_max,
        backoff_jitter=backoff_jitter,
    )
    size = max(1, pool_size)
    for prefix in ("http://", "https://"):
        session.mount(prefix, HTTPAdapter(pool_connections=4, pool_maxsize=size, max_retries=retry))
    session.headers["User-Agent"] = DEFAULT_USER_AGENT
    session.headers["Accept"] = "application/json"
    return watch_session(session)


def pin_environment(session: requests.Session, url: str) -> requests.Session:
    """Resolve the environment's proxy and CA-bundle settings for ``url`` once, then stop
    ``session`` from reading the environment again (``trust_env = False``).

    requests otherwise re-reads every proxy variable (``HTTPS_PROXY``, ``NO_PROXY``, ...)
    on every request, a large share of a small request's CPU. Use it only for a session
    that talks to one origin (the API's): the settings resolved for ``url`` then hold for
    every request. ``.netrc`` is no longer consulted, which the API (key or token in a
    header) never needed. Returns ``session``.

    Example:
        >>> s = pin_environment(build_session(), "https://lab.coreviz.io/api")
        >>> s.trust_env
        False
    """
    if not session.trust_env:
        return session
    no_proxy = session.proxies.get("no_proxy")
    for scheme, proxy in requests.utils.get_environ_proxies(url, no_proxy=no_proxy).items():
        session.proxies.setdefault(scheme, proxy)
    if session.verify is True:
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            session.verify = bundle
    session.trust_env = False
    return session


class JsonBody:
    """A 2xx answer of :meth:`Transport.get_body`, decoded on demand by :meth:`json`.

    Example:
        >>> # body = transport.get_body("media/abc"); record = body.json()
    """

    def __init__(
        self,
        response: requests.Response,
        url: str,
        *,
        what: str | None,
        media_id: str | None,
        secrets: tuple[str, ...],
    ) -> None:
        self._response = response
        self.url = mask_secrets(response.url or url, secrets)  # for messages only
        self._what = what
        self._media_id = media_id
        self._secrets = secrets

    def error(self, *, exc: BaseException | None = None, body: Any = None) -> CorevizError:
        """The error for this answer, naming ``what``: from ``exc`` (a decoding error), or
        from the status and ``body`` (the answer's own JSON when not given)."""
        response = self._response
        if exc is None and body is None:
            try:
                body = response.json()
            except ValueError:
                body = None
        return translate_error(
            self.url,
            what=self._what,
            media_id=self._media_id,
            response=response,
            secrets=self._secrets,
            exc=exc,
            body=body,
        )

    @property
    def content(self) -> bytes:
        """The body's bytes, as received (read whole by the transport)."""
        return self._response.content or b""

    def json(self, *, array_key: str | None = None) -> dict:
        """The decoded JSON object (see :meth:`Transport.get_json` for ``array_key``)."""
        try:
            body = response_json(self._response)
        except (ValueError, RecursionError) as exc:  # RecursionError: absurdly nested JSON
            raise self.error(exc=exc) from None
        if array_key is not None and isinstance(body, list):
            body = {array_key: body}
        if not isinstance(body, dict):
            raise InvalidResponseError(
                f"{request_label(self._what, safe_url(self.url))} returned JSON "
                f"{type(body).__name__}, expected an object",
                url=safe_url(self.url),
                media_id=self._media_id,
            )
        if "error" in body and body["error"] not in (None, False, ""):
            raise self.error(body=body)
        return body


class Transport:
    """Sends JSON GETs to one API: timeouts, per-request credentials, redirects, decoding.

    ``credentials`` (a :class:`Credentials`, or None) are attached only to URLs on
    ``base_url``'s origin. ``timeout`` is seconds, or a ``(connect, read)`` pair, for
    connecting and for each read; ``deadline`` (default :func:`deadline_for` ``timeout``:
    the seconds, or connect + read) bounds each attempt as a whole — connect, headers and
    body together — through a :class:`Deadline` (retries may follow, within the session's
    ``Retry`` budget). An attempt cut by it ends as :class:`RequestTimeoutError`.

    Cancelling: :meth:`cancel` stops every request of this transport for good (as for a
    closed client); a :class:`Cancellation` passed to :meth:`get_json` as ``cancel=``
    stops just the requests given it (one batch). Either way no new request starts,
    back-off sleeps end at once, requests in flight are cut and give up at their retry
    decision, and :class:`RequestCancelledError` is raised.

    Example:
        >>> t = Transport("http://127.0.0.1:8000/api", session=build_session(),
        ...               credentials=Credentials.api_key("k"))
        >>> t.url("media/abc")
        'http://127.0.0.1:8000/api/media/abc'
        >>> batch = Cancellation()
        >>> # worker threads: t.get_json("media/a", cancel=batch); on a fatal error:
        >>> batch.cancel("media 'a' failed: 401")
    """

    def __init__(
        self,
        base_url: str,
        *,
        session: requests.Session,
        credentials: Credentials | None = None,
        timeout: float | tuple[float, float] = 30.0,
        deadline: float | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = watch_session(session)
        self._credentials = credentials
        self.timeout = timeout
        self.deadline = deadline_for(timeout) if deadline is None else float(deadline)
        Deadline(self.deadline)  # validates it (ConfigError)
        self._cancellation = Cancellation()
        self._probe_lock = threading.Lock()
        self._probe: tuple[str | None, int | None] | None = None

    def cancel(self, reason: str = "the transport was cancelled") -> None:
        """Stop every request of this transport, now and later (see the class docstring)."""
        self._cancellation.cancel(reason)

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._cancellation.cancelled

    def url(self, path: str) -> str:
        """``base_url`` joined with a relative ``path`` (which must already be safe)."""
        return f"{self.base_url}/{path.lstrip('/')}"

    def headers_for(self, url: str) -> dict[str, str]:
        """The credentials header for ``url``: empty unless it is on the API's origin."""
        if self._credentials is None or not is_same_origin(url, self.base_url):
            return {}
        return self._credentials.header()

    def _secrets(self) -> tuple[str, ...]:
        return self._credentials.secrets() if self._credentials else ()

    def _shown(self, url: str) -> str:
        """``url`` as messages and logs show it: no password, and no secret a redirect put
        in its query string."""
        return mask_secrets(safe_url(url), self._secrets())

    def get_json(
        self,
        path_or_url: str,
        *,
        params: Mapping[str, str] | None = None,
        what: str | None = None,
        media_id: str | None = None,
        cancel: Cancellation | None = None,
        array_key: str | None = None,
    ) -> dict:
        """GET a JSON object; any failure raises a :class:`CorevizError` naming ``what``.

        ``cancel``: a :class:`Cancellation` shared by a batch of requests (see the class
        docstring); when it is cancelled this raises :class:`RequestCancelledError`.
        ``array_key``: for endpoints that answer either an object or a bare JSON array
        (e.g. the collections list), a top-level array is returned as ``{array_key: [...]}``.
        """
        body = self.get_body(
            path_or_url, params=params, what=what, media_id=media_id, cancel=cancel
        )
        return body.json(array_key=array_key)

    def get_body(
        self,
        path_or_url: str,
        *,
        params: Mapping[str, str] | None = None,
        what: str | None = None,
        media_id: str | None = None,
        cancel: Cancellation | None = None,
    ) -> JsonBody:
        """GET a 2xx answer, its JSON not decoded yet (:meth:`JsonBody.json` decodes it).

        A worker thread can fetch while the thread that needs the value decodes it: bytes
        waiting in a queue cost the garbage collector nothing, decoded pages would. An
        HTTP error is raised here, as by :meth:`get_json`.
        """
        url = path_or_url if "://" in path_or_url else self.url(path_or_url)
        token = self._cancellation if cancel is None else Cancellation(self._cancellation, cancel)
        response = self._send(url, params=params, what=what, media_id=media_id, cancel=token)
        body = JsonBody(response, url, what=what, media_id=media_id, secrets=self._secrets())
        if not 200 <= response.status_code < 300:
            error = body.error()
            if isinstance(error, NotFoundError) and url.startswith(self.base_url + "/"):
                error = self._explained_404(error)
            raise error
        return body

    def _explained_404(self, error: NotFoundError) -> NotFoundError:
        """``error`` saying whether the base URL is the API (asked once per transport)."""
        with self._probe_lock:
            if self._probe is None:
                self._probe = self._ask_base_url()
        verdict, status = self._probe
        return explain_not_found(error, verdict, self._shown(self.base_url), status)

    def _ask_base_url(self) -> tuple[str | None, int | None]:
        """``(verdict, status)`` of ``GET {base_url}/me`` (see :mod:`.notfound`): one
        attempt, no retry (a busy server must not hold the 404 back), at most 5 s, through
        the session's proxies and certificates, its body never read; no answer at all gives
        ``(None, None)``."""
        url = self.url(PROBE_PATH)
        probe = requests.Session()
        probe.trust_env = self.session.trust_env
        probe.proxies, probe.verify, probe.cert = (
            self.session.proxies,
            self.session.verify,
            self.session.cert,
        )
        try:
            with probe, Deadline(min(self.deadline, PROBE_SECONDS), cancel=self._cancellation):
                response = probe.get(  # stream: the status and headers say it all; the
                    url,  # body (any size a server sends) is never read
                    headers=self.headers_for(url),
                    timeout=PROBE_SECONDS,
                    allow_redirects=False,
                    stream=True,
                )
                response.close()
        except (requests.RequestException, CorevizError, ValueError):
            return None, None
        return verdict_of(response.status_code, response.headers.get("Content-Type")), (
            response.status_code
        )

    def _send(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None,
        what: str | None,
        media_id: str | None,
        cancel: Cancellation,
    ) -> requests.Response:
        """One GET plus at most :data:`MAX_REDIRECTS` redirect hops, each re-authorised."""
        for _ in range(MAX_REDIRECTS + 1):
            deadline = Deadline(self.deadline, cancel=cancel)
            try:
                cancel.check()
                with deadline:
                    response = self._get(url, params)
            except RequestCancelledError:
                raise cancel.error(self._shown(url), what=what, media_id=media_id) from None
            except requests.RequestException as exc:
                shown = self._shown(url)
                if cancel.cancelled:  # cut by the cancellation
                    raise cancel.error(shown, what=what, media_id=media_id) from None
                if deadline.expired:
                    raise deadline.timeout_error(shown, what=what, media_id=media_id) from None
                raise translate_error(
                    url, what=what, media_id=media_id, exc=exc, secrets=self._secrets()
                ) from None
            except ValueError as exc:  # e.g. a redirect to an unparsable Location
                raise InvalidResponseError(
                    f"{request_label(what, self._shown(url))} failed: invalid URL in the "
                    f"response ({mask_secrets(str(exc), self._secrets())})",
                    url=self._shown(url),
                    media_id=media_id,
                ) from None
            logger.debug("GET %s -> %s", self._shown(response.url or url), response.status_code)
            if not response.is_redirect:
                return response
            location = response.headers["Location"]
            url = urljoin(response.url or url, location)
            params = None  # the Location already carries the query
            response.close()
        raise InvalidResponseError(
            f"{request_label(what, self._shown(url))}: more than {MAX_REDIRECTS} redirects",
            url=self._shown(url),
            media_id=media_id,
        )

    def _get(self, url: str, params: Mapping[str, str] | None) -> requests.Response:
        """One GET, its body read whole (:func:`read_whole`: one read), retried like a
        read error when the connection breaks *while the body is read* (the body is read
        after urllib3's ``Retry`` has returned, so ``Retry`` alone never retries a truncated
        body); the adapter's own ``Retry`` budget and backoff apply.
        """
        retry = None
        while True:
            try:
                response = self.session.get(
                    url,
                    params=params,
                    headers=self.headers_for(url),
                    timeout=self.timeout,
                    allow_redirects=False,
                    stream=True,
                )
                try:
                    read_whole(response)
                except BaseException:
                    response.close()
                    raise
                return response
            except (requests.exceptions.ChunkedEncodingError, requests.ConnectionError) as exc:
                cause = exc.args[0] if exc.args else None
                if not isinstance(cause, (ProtocolError, ReadTimeoutError)):
                    raise  # not a body-read failure: urllib3 already retried it
                if retry is None:
                    retry = getattr(self.session.get_adapter(url), "max_retries", None)
                    if not isinstance(retry, Retry):
                        raise
                try:
                    retry = retry.increment(method="GET", url=url, error=cause)
                except (MaxRetryError, ProtocolError, ReadTimeoutError):
                    raise exc from None
                logger.debug("GET %s: body read failed (%s), retrying", self._shown(url), cause)
                retry.sleep()

    def close(self) -> None:
        """Close the session's pooled connections."""
        self.session.close()
