"""The one HTTP layer of coreviz_frames: a pooled session, retries, timeouts, error translation.

- :func:`build_session` makes a ``requests.Session`` whose adapter pools connections and
  retries through urllib3 ``Retry``: connection and read errors, 429 and 5xx, on GET only,
  with exponential backoff plus jitter, honouring ``Retry-After`` (capped at 60 s).
- :class:`Transport` sends GETs with a timeout on every request, adds the credentials
  *per request* and only for URLs on the API's own origin (never as session defaults),
  follows redirects itself so a hop to another origin never carries them, and decodes JSON.
- :func:`translate_error` is the single place where requests/urllib3 exceptions and HTTP
  statuses become the exception tree of :mod:`coreviz_frames.errors`.
- :func:`is_same_origin` tells whether a URL may receive the credentials (the image loader
  reuses it).

Example:
    >>> session = build_session(retries=2, backoff_factor=0.1, pool_size=8)
    >>> is_same_origin("https://lab.coreviz.io/api/media/x", "https://lab.coreviz.io/api")
    True
    >>> is_same_origin("https://x.public.blob.vercel-storage.com/a.jpg", "https://lab.coreviz.io/api")
    False
"""

from __future__ import annotations

import email.utils
import inspect
import logging
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.util.retry import Retry

from .errors import (
    APIStatusError,
    AuthenticationError,
    CorevizError,
    InvalidResponseError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
)

__all__ = [
    "DEFAULT_USER_AGENT",
    "RETRY_AFTER_CAP",
    "RETRY_STATUSES",
    "Credentials",
    "Secret",
    "Transport",
    "build_retry",
    "build_session",
    "is_same_origin",
    "origin_of",
    "translate_error",
]

logger = logging.getLogger("coreviz_frames.http")

#: Statuses retried by urllib3 (then translated by :func:`translate_error` if they persist).
RETRY_STATUSES = frozenset([429, *range(500, 600)])
#: A ``Retry-After`` longer than this many seconds is shortened to it.
RETRY_AFTER_CAP = 60.0
#: Redirect hops followed by :class:`Transport` before giving up.
MAX_REDIRECTS = 5
DEFAULT_USER_AGENT = "coreviz-frames"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Secret:
    """Holds an API key or token; its repr and str are ``'***'``, so it never leaks by accident.

    Example:
        >>> s = Secret("sk-123")
        >>> s, str(s), s.reveal()
        (***, '***', 'sk-123')
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself: only for building a request header."""
        return self._value

    def __repr__(self) -> str:
        return "***"

    __str__ = __repr__

    def __reduce__(self):  # never pickled along with a client
        raise TypeError("a Secret cannot be pickled")


class Credentials:
    """How to authenticate: an API key (``x-api-key``) or a session token (Bearer).

    Example:
        >>> Credentials.api_key("sk-1")
        Credentials(api_key=***)
        >>> Credentials.token("t").header()
        {'Authorization': 'Bearer t'}
    """

    __slots__ = ("_secret", "kind")

    def __init__(self, kind: str, secret: Secret) -> None:
        if kind not in ("api_key", "token"):
            raise ValueError(f"unknown credentials kind {kind!r}")
        self.kind = kind
        self._secret = secret

    @classmethod
    def api_key(cls, value: str) -> Credentials:
        return cls("api_key", Secret(value))

    @classmethod
    def token(cls, value: str) -> Credentials:
        return cls("token", Secret(value))

    def header(self) -> dict[str, str]:
        """The request header carrying the secret."""
        if self.kind == "token":
            return {"Authorization": f"Bearer {self._secret.reveal()}"}
        return {"x-api-key": self._secret.reveal()}

    def secrets(self) -> tuple[str, ...]:
        """Strings to mask wherever text from the server is repeated."""
        return (self._secret.reveal(),)

    def __repr__(self) -> str:
        return f"Credentials({self.kind}=***)"

    def __reduce__(self):
        raise TypeError("Credentials cannot be pickled")


# --------------------------------------------------------------------------- origins


def origin_of(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of ``url``, lower case, with the default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, host, port if port is not None else _DEFAULT_PORTS.get(scheme, -1)


def is_same_origin(url: str, base_url: str) -> bool:
    """True if ``url`` has the scheme, host and port of ``base_url`` (may receive credentials).

    Example:
        >>> is_same_origin("http://127.0.0.1:8000/x", "http://127.0.0.1:8001/api")
        False
    """
    return origin_of(url) == origin_of(base_url)


def _safe_url(url: str) -> str:
    """``url`` without any ``user:password@`` part, for messages and logs."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


# --------------------------------------------------------------------------- session


class _CappedRetry(Retry):
    """urllib3 ``Retry`` whose ``Retry-After`` wait is capped at :data:`RETRY_AFTER_CAP`.

    urllib3 >= 2.5 has ``retry_after_max`` (default 6 hours); older versions do not cap at
    all, so the cap is applied here for every version.
    """

    def parse_retry_after(self, retry_after: str) -> float:
        return min(float(super().parse_retry_after(retry_after)), RETRY_AFTER_CAP)


_RETRY_PARAMS = set(inspect.signature(Retry.__init__).parameters)


def build_retry(
    retries: int = 5,
    *,
    backoff_factor: float = 0.5,
    backoff_max: float = 30.0,
    backoff_jitter: float | None = None,
) -> Retry:
    """The urllib3 ``Retry`` policy: ``retries`` attempts on connect/read errors, 429 and 5xx.

    Backoff is ``backoff_factor * 2 ** (n - 1)`` seconds (at most ``backoff_max``) plus a
    uniform jitter of up to ``backoff_jitter`` (default: ``backoff_factor``). Only GET and
    HEAD are retried. ``raise_on_status=False``: the last response is returned and translated
    by :func:`translate_error`.
    """
    kwargs: dict[str, Any] = {
        "total": retries,
        "connect": retries,
        "read": retries,
        "status": retries,
        "redirect": 0,
        "raise_on_redirect": False,
        "allowed_methods": frozenset(["GET", "HEAD"]),
        "status_forcelist": RETRY_STATUSES,
        "backoff_factor": backoff_factor,
        "respect_retry_after_header": True,
        "raise_on_status": False,
    }
    optional = {
        "backoff_max": backoff_max,
        "backoff_jitter": backoff_factor if backoff_jitter is None else backoff_jitter,
        "retry_after_max": int(RETRY_AFTER_CAP),
    }
    kwargs.update({k: v for k, v in optional.items() if k in _RETRY_PARAMS})
    return _CappedRetry(**kwargs)


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
    return session


# --------------------------------------------------------------------------- errors


def _subject(what: str | None) -> str:
    return f" {what}" if what else ""


def _detail(body: Any) -> str | None:
    """The API's own error message from a JSON body (``error`` and/or ``message``)."""
    if not isinstance(body, Mapping):
        return None
    parts = [str(body[k]) for k in ("error", "message") if body.get(k) not in (None, "")]
    parts = list(dict.fromkeys(parts))
    return ": ".join(parts) if parts else None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return None
    return max(0.0, email.utils.mktime_tz(parsed) - time.time())


def _root_cause(exc: BaseException) -> BaseException:
    """The urllib3 reason inside a requests exception (unwrapping ``MaxRetryError``)."""
    seen = 0
    while seen < 5:
        seen += 1
        inner = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None
        if isinstance(exc, MaxRetryError) and exc.reason is not None:
            exc = exc.reason
        elif inner is not None:
            exc = inner
        else:
            break
    return exc


_STATUS_TYPES: dict[int, type[APIStatusError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
}


def translate_error(
    url: str,
    *,
    what: str | None = None,
    media_id: str | None = None,
    response: requests.Response | None = None,
    exc: BaseException | None = None,
    body: Any = None,
    secrets: tuple[str, ...] = (),
) -> CorevizError:
    """Turn a failed request into a :class:`~coreviz_frames.errors.CorevizError`.

    The one translation point of the package. Give ``exc`` (a requests/urllib3 exception,
    or a JSON decoding error together with ``response``) and/or ``response`` with its decoded
    ``body``. ``what`` names the subject in the message (e.g. ``"media 'abc'"``). Any of
    ``secrets`` that the server echoed back is masked.

    Example:
        >>> err = translate_error("https://h/api/media/x", what="media 'x'", media_id="x",
        ...                       response=None, exc=requests.ConnectionError("refused"))
        >>> type(err).__name__
        'NetworkError'
    """
    safe = _safe_url(url)
    subject = _subject(what)

    def clean(text: str) -> str:
        for secret in secrets:
            if secret:
                text = text.replace(secret, "***")
        return text

    if response is not None:
        status = response.status_code
        reason = response.reason or ""
        if exc is not None:  # the body could not be decoded as JSON
            ctype = response.headers.get("Content-Type", "?")
            snippet = clean(response.text[:80])
            return InvalidResponseError(
                f"GET{subject} ({safe}) returned {status} with a body that is not JSON "
                f"(Content-Type {ctype}): {snippet!r}",
                url=safe,
                media_id=media_id,
            )
        detail = _detail(body)
        detail = clean(detail) if detail else None
        text = f"GET{subject} ({safe}) failed: {status} {reason}".rstrip()
        if detail:
            text += f": {detail}"
        kwargs: dict[str, Any] = {
            "status": status,
            "url": safe,
            "media_id": media_id,
            "detail": detail,
        }
        if 200 <= status < 300:
            return APIStatusError(text + " (error in a successful response)", **kwargs)
        if status == 429:
            after = _retry_after(response.headers.get("Retry-After"))
            if after is not None:
                text += f" (Retry-After {after:g} s)"
            return RateLimitError(text, retry_after=after, **kwargs)
        if status >= 500:
            return ServerError(text, **kwargs)
        return _STATUS_TYPES.get(status, APIStatusError)(text, **kwargs)

    root = _root_cause(exc) if exc is not None else None
    name = type(root).__name__ if root is not None else "unknown error"
    timed_out = isinstance(exc, (requests.Timeout, ConnectTimeoutError, ReadTimeoutError))
    timed_out |= isinstance(root, (ConnectTimeoutError, ReadTimeoutError, TimeoutError))
    if timed_out and not isinstance(root, NewConnectionError):
        return RequestTimeoutError(
            f"GET{subject} ({safe}) timed out ({name})", url=safe, media_id=media_id
        )
    if isinstance(exc, (requests.ConnectionError, MaxRetryError, ProtocolError, OSError)):
        return NetworkError(
            f"GET{subject} ({safe}) failed: connection error ({name}: {clean(str(root))[:200]})",
            url=safe,
            media_id=media_id,
        )
    return NetworkError(
        f"GET{subject} ({safe}) failed: {name}: {clean(str(root))[:200]}",
        url=safe,
        media_id=media_id,
    )


# --------------------------------------------------------------------------- transport


class Transport:
    """Sends JSON GETs to one API: timeouts, per-request credentials, redirects, decoding.

    ``credentials`` (a :class:`Credentials`, or None) are attached only to URLs on
    ``base_url``'s origin. ``timeout`` is seconds, or a ``(connect, read)`` pair.

    Example:
        >>> t = Transport("http://127.0.0.1:8000/api", session=build_session(),
        ...               credentials=Credentials.api_key("k"))
        >>> t.url("media/abc")
        'http://127.0.0.1:8000/api/media/abc'
    """

    def __init__(
        self,
        base_url: str,
        *,
        session: requests.Session,
        credentials: Credentials | None = None,
        timeout: float | tuple[float, float] = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session
        self._credentials = credentials
        self.timeout = timeout

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

    def get_json(
        self,
        path_or_url: str,
        *,
        params: Mapping[str, str] | None = None,
        what: str | None = None,
        media_id: str | None = None,
    ) -> dict:
        """GET a JSON object; any failure raises a :class:`CorevizError` naming ``what``."""
        url = path_or_url if "://" in path_or_url else self.url(path_or_url)
        response = self._send(url, params=params, what=what, media_id=media_id)
        final_url = response.url or url
        if not 200 <= response.status_code < 300:
            try:
                body = response.json()
            except ValueError:
                body = None
            raise translate_error(
                final_url,
                what=what,
                media_id=media_id,
                response=response,
                body=body,
                secrets=self._secrets(),
            )
        try:
            body = response.json()
        except (ValueError, RecursionError) as exc:  # RecursionError: absurdly nested JSON
            raise translate_error(
                final_url,
                what=what,
                media_id=media_id,
                response=response,
                exc=exc,
                secrets=self._secrets(),
            ) from None
        if not isinstance(body, dict):
            raise InvalidResponseError(
                f"GET{_subject(what)} ({_safe_url(final_url)}) returned JSON "
                f"{type(body).__name__}, expected an object",
                url=_safe_url(final_url),
                media_id=media_id,
            )
        if "error" in body and body["error"] not in (None, False, ""):
            raise translate_error(
                final_url,
                what=what,
                media_id=media_id,
                response=response,
                body=body,
                secrets=self._secrets(),
            )
        return body

    def _send(self, url, *, params, what, media_id) -> requests.Response:
        """One GET plus at most :data:`MAX_REDIRECTS` redirect hops, each re-authorised."""
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = self._get(url, params)
            except requests.RequestException as exc:
                raise translate_error(
                    url, what=what, media_id=media_id, exc=exc, secrets=self._secrets()
                ) from None
            except ValueError as exc:  # e.g. a redirect to an unparsable Location
                raise InvalidResponseError(
                    f"GET{_subject(what)} ({_safe_url(url)}) failed: invalid URL in the "
                    f"response ({exc})",
                    url=_safe_url(url),
                    media_id=media_id,
                ) from None
            logger.debug("GET %s -> %s", _safe_url(response.url or url), response.status_code)
            if not response.is_redirect:
                return response
            location = response.headers["Location"]
            url = urljoin(response.url or url, location)
            params = None  # the Location already carries the query
            response.close()
        raise InvalidResponseError(
            f"GET{_subject(what)} ({_safe_url(url)}): more than {MAX_REDIRECTS} redirects",
            url=_safe_url(url),
            media_id=media_id,
        )

    def _get(self, url: str, params: Mapping[str, str] | None) -> requests.Response:
        """One GET, retried like a read error when the connection breaks *while the body is
        read* (requests reads it after urllib3's ``Retry`` has returned, so ``Retry`` alone
        never retries a truncated body); the adapter's own ``Retry`` budget and backoff apply.
        """
        retry = None
        while True:
            try:
                return self.session.get(
                    url,
                    params=params,
                    headers=self.headers_for(url),
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except (requests.exceptions.ChunkedEncodingError, requests.ConnectionError) as exc:
                cause = exc.args[0] if exc.args else None
                if not isinstance(cause, (ProtocolError, ReadTimeoutError)):
                    raise  # not a body-read failure: urllib3 already retried it
                if retry is None:
                    retry = self.session.get_adapter(url).max_retries
                    if not isinstance(retry, Retry):
                        raise
                try:
                    retry = retry.increment(method="GET", url=url, error=cause)
                except (MaxRetryError, ProtocolError, ReadTimeoutError):
                    raise exc from None
                logger.debug("GET %s: body read failed (%s), retrying", _safe_url(url), cause)
                retry.sleep()

    def close(self) -> None:
        """Close the session's pooled connections."""
        self.session.close()
