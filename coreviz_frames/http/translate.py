"""Error translation: :func:`translate_error`, the one place where requests/urllib3
exceptions and HTTP statuses become the exception tree of :mod:`coreviz_frames.errors`.

Text from the server goes through :func:`~coreviz_frames.http.credentials.mask_secrets`
and URLs through :func:`~coreviz_frames.http.urls.message_url` (no ``user:password@``, no
paging parameters) before they reach a message or a log.

Example:
    >>> err = translate_error("https://h/api/media/x", what="media 'x'", media_id="x",
    ...                       exc=requests.ConnectionError("refused"))
    >>> type(err).__name__, err.media_id
    ('NetworkError', 'x')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from coreviz_frames.errors import (
    APIStatusError,
    AuthenticationError,
    ConfigError,
    CorevizError,
    InvalidResponseError,
    NetworkError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
)
from coreviz_frames.http.credentials import mask_secrets
from coreviz_frames.http.retry import retry_after_seconds
from coreviz_frames.http.urls import message_url, request_label

__all__ = ["translate_error"]


def _detail(body: Any) -> str | None:
    """The API's own error message from a JSON body (``error`` and/or ``message``)."""
    if not isinstance(body, Mapping):
        return None
    parts = [str(body[k]) for k in ("error", "message") if body.get(k) not in (None, "")]
    parts = list(dict.fromkeys(parts))
    return ": ".join(parts) if parts else None


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
    402: PaymentRequiredError,
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
    ``secrets`` that the server echoed back is masked, in the URL too (a redirect may carry
    it in a query string) and in the status line's reason phrase.

    Example:
        >>> err = translate_error("https://h/api/media/x", what="media 'x'", media_id="x",
        ...                       response=None, exc=requests.ConnectionError("refused"))
        >>> type(err).__name__
        'NetworkError'
    """
    safe = mask_secrets(message_url(url), secrets)
    if response is not None:
        return _status_error(safe, what, media_id, response, exc, body, secrets)
    return _exception_error(safe, what, media_id, exc, secrets)


def _status_error(
    safe: str,
    what: str | None,
    media_id: str | None,
    response: requests.Response,
    exc: BaseException | None,
    body: Any,
    secrets: tuple[str, ...],
) -> CorevizError:
    """:func:`translate_error` for a response: an error status, or a body that is not JSON."""
    status = response.status_code
    if exc is not None:  # the body could not be decoded as JSON
        ctype = response.headers.get("Content-Type", "?")
        snippet = mask_secrets(response.text, secrets, 80)
        return InvalidResponseError(
            f"{request_label(what, safe)} returned {status} with a body that is not JSON "
            f"(Content-Type {ctype}): {snippet!r}",
            url=safe,
            media_id=media_id,
        )
    detail = _detail(body)
    detail = mask_secrets(detail, secrets) if detail else None
    reason = mask_secrets(response.reason or "", secrets)
    if detail and reason and detail.lower().startswith(reason.lower()):
        detail = detail[len(reason) :].lstrip(" :-") or None  # "401 Unauthorized" said once
    text = f"{request_label(what, safe)} failed: {status} {reason}".rstrip()
    if detail:
        text += f": {detail}"
    kwargs: dict[str, Any] = {"status": status, "url": safe, "media_id": media_id}
    kwargs["detail"] = detail
    if 200 <= status < 300:
        return APIStatusError(text + " (error in a successful response)", **kwargs)
    if status == 429:
        after = retry_after_seconds(response.headers.get("Retry-After"))
        if after is not None:
            text += f" (Retry-After {after:g} s)"
        return RateLimitError(text, retry_after=after, **kwargs)
    if status >= 500:
        return ServerError(text, **kwargs)
    if status == 402 and "credit" not in text.lower():
        text += " (insufficient credits)"
    return _STATUS_TYPES.get(status, APIStatusError)(text, **kwargs)


def _exception_error(
    safe: str,
    what: str | None,
    media_id: str | None,
    exc: BaseException | None,
    secrets: tuple[str, ...],
) -> CorevizError:
    """:func:`translate_error` for a request that got no usable answer."""
    root = _root_cause(exc) if exc is not None else None
    name = type(root).__name__ if root is not None else "unknown error"
    label = request_label(what, safe)
    if isinstance(exc, requests.exceptions.InvalidHeader):  # ours, refused before sending
        return ConfigError(
            f"{label} was not sent: a request header is invalid "
            f"({mask_secrets(str(exc), secrets, 200)}); check the API key or token"
        )
    timed_out = isinstance(exc, (requests.Timeout, ConnectTimeoutError, ReadTimeoutError))
    timed_out |= isinstance(root, (ConnectTimeoutError, ReadTimeoutError, TimeoutError))
    if timed_out and not isinstance(root, NewConnectionError):
        return RequestTimeoutError(f"{label} timed out ({name})", url=safe, media_id=media_id)
    cause = mask_secrets(str(root), secrets, 200)
    if isinstance(exc, (requests.ConnectionError, MaxRetryError, ProtocolError, OSError)):
        cause = f"connection error ({name}: {cause})"
    else:
        cause = f"{name}: {cause}"
    return NetworkError(f"{label} failed: {cause}", url=safe, media_id=media_id)
