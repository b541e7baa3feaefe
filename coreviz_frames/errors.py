"""The exception tree of coreviz_frames.

Every error the package raises derives from :class:`CorevizError`, so one
``except cvf.CorevizError`` catches them all::

    CorevizError
    ├── ConfigError              missing API key, bad base URL, bad option
    │   └── MissingDependencyError an optional extra is not installed (also an ImportError)
    ├── InvalidIdError           an id with characters other than letters, digits, - and _
    ├── APIStatusError           the API answered with an error status (.status, .url)
    │   ├── AuthenticationError  401: missing or invalid credentials
    │   ├── PaymentRequiredError 402: insufficient credits (never retried)
    │   ├── PermissionDeniedError 403: no access to this organization's media
    │   ├── NotFoundError        404
    │   ├── RateLimitError       429 (.retry_after, seconds or None)
    │   └── ServerError          5xx
    ├── TransportError           no usable answer came back (.url)
    │   ├── RequestTimeoutError  connect or read timeout, or the total deadline of an attempt
    │   ├── RequestCancelledError not sent, or given up: its batch was cancelled
    │   └── NetworkError         connection refused, reset or dropped
    ├── InvalidResponseError     the body is not JSON, or not the expected shape
    │   └── MediaIdMismatchError  Get Media answered with another media's id
    ├── SchemaError              a malformed record (.media_id, .field)
    ├── ImageLoadError           an image could not be downloaded or decoded (.url)
    ├── ExportError              a Parquet export cannot proceed (.path)
    └── FingerprintError         a body's fingerprints were not computed (.page)

The package's warnings derive from :class:`CorevizWarning` (a ``UserWarning``), so
``warnings.filterwarnings("ignore", category=cvf.CorevizWarning)`` silences them all::

    CorevizWarning
    ├── PaginationWarning        the API's pagination is inconsistent
    └── SkippedRecordWarning     a record or listed item was skipped (and reported)

Messages name what was wrong (the media id, the URL, the field) and never
contain the API key or token.

A caller catches as narrowly as it needs (``client`` is a :class:`~coreviz_frames.Client`)::

    try:
        record = client.get_media(media_id)
    except NotFoundError as exc:       # this media is gone
        print(exc.status, exc.media_id)
    except CorevizError as exc:        # anything else the package raises
        print(exc)

Example:
    >>> issubclass(NotFoundError, APIStatusError), issubclass(APIStatusError, CorevizError)
    (True, True)
    >>> issubclass(MissingDependencyError, ImportError), issubclass(RateLimitError, ServerError)
    (True, False)
"""

from __future__ import annotations

__all__ = [
    "APIStatusError",
    "AuthenticationError",
    "ConfigError",
    "CorevizError",
    "CorevizWarning",
    "EmptySplitWarning",
    "ExportError",
    "FingerprintError",
    "ImageLoadError",
    "InvalidIdError",
    "InvalidResponseError",
    "MediaIdMismatchError",
    "MissingDependencyError",
    "NetworkError",
    "NotFoundError",
    "PaginationWarning",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestCancelledError",
    "RequestTimeoutError",
    "SchemaError",
    "ServerError",
    "SkippedRecordWarning",
    "TransportError",
]


class CorevizError(Exception):
    """Base class of every error raised by coreviz_frames."""


class CorevizWarning(UserWarning):
    """Base class of every warning issued by coreviz_frames."""


class PaginationWarning(CorevizWarning):
    """The API's pagination is inconsistent (wrong total, empty or repeated page)."""


class SkippedRecordWarning(CorevizWarning):
    """A record or a listed item was skipped; it is listed in the report of the call."""


class EmptySplitWarning(CorevizWarning):
    """A dataset split asked for has no media (too few media for its fraction, or none
    of its listed media in the data)."""


class ConfigError(CorevizError, ValueError):
    """The configuration is incomplete or invalid (no API key, bad option value)."""


class MissingDependencyError(ConfigError, ImportError):
    """An optional dependency is not installed; the message gives the ``pip install`` line.

    Also an :class:`ImportError` (``.name``: the module that could not be imported), so
    ``except ImportError`` keeps working. Raised by
    :func:`coreviz_frames._util.optional.import_optional`.
    """

    def __init__(self, message: str, *, name: str | None = None) -> None:
        super().__init__(message)
        self.name = name


class InvalidIdError(CorevizError, ValueError):
    """An id that may not be sent to the API (checked before any request)."""

    def __init__(self, message: str, *, value: object = None) -> None:
        super().__init__(message)
        self.value = value


class APIStatusError(CorevizError):
    """The API answered with an error status.

    Attributes: ``status`` (int), ``url`` (without any secret), ``media_id``
    (the media or collection id the request was about, or None) and
    ``detail`` (the API's own error message, if any).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        url: str | None = None,
        media_id: str | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.url = url
        self.media_id = media_id
        self.detail = detail


class AuthenticationError(APIStatusError):
    """401: the API key or token is missing or invalid."""


class PaymentRequiredError(APIStatusError):
    """402: the organization has insufficient credits for this call (CoreViz bills some
    calls); not retried. Top up the credits, then call again."""


class PermissionDeniedError(APIStatusError):
    """403: the credentials are valid but have no access to this resource."""


class NotFoundError(APIStatusError):
    """404: no such media or collection."""


class RateLimitError(APIStatusError):
    """429 after every retry; ``retry_after`` is the server's last hint in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """5xx after every retry."""


class TransportError(CorevizError):
    """The request did not get a usable HTTP answer."""

    def __init__(self, message: str, *, url: str | None = None, media_id: str | None = None):
        super().__init__(message)
        self.url = url
        self.media_id = media_id


class RequestTimeoutError(TransportError):
    """The server did not answer within the timeout (after every retry)."""


class RequestCancelledError(TransportError):
    """A request was not sent, or gave up, because its batch was cancelled
    (e.g. another request of the same batch failed fatally); see ``http.Cancellation``."""


class NetworkError(TransportError):
    """The connection could not be made, or broke (after every retry)."""


class InvalidResponseError(CorevizError):
    """The response body is not JSON, or does not have the documented shape."""

    def __init__(self, message: str, *, url: str | None = None, media_id: str | None = None):
        super().__init__(message)
        self.url = url
        self.media_id = media_id


class MediaIdMismatchError(InvalidResponseError):
    """Get Media for one id answered with the record of another (``.media_id`` is the id
    asked for, ``.answered_id`` the one that came back): a failure of that id, never a
    record of either."""

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        media_id: str | None = None,
        answered_id: object = None,
    ):
        super().__init__(message, url=url, media_id=media_id)
        self.answered_id = answered_id


class SchemaError(CorevizError, ValueError):
    """A record that cannot be flattened: names the media id and the field."""

    def __init__(self, message: str, *, media_id: str | None = None, field: str | None = None):
        super().__init__(message)
        self.media_id = media_id
        self.field = field


class ImageLoadError(CorevizError):
    """An image could not be downloaded, was too large, or could not be decoded."""

    def __init__(self, message: str, *, url: str | None = None, reason: str | None = None):
        super().__init__(message)
        self.url = url
        self.reason = reason


class ExportError(CorevizError):
    """A Parquet export cannot proceed (non-empty directory, incompatible manifest)."""

    def __init__(self, message: str, *, path: str | None = None):
        super().__init__(message)
        self.path = path


class FingerprintError(CorevizError):
    """The fingerprints of one response body could not be computed: the body is not a page
    or record (its JSON or its shape), or the side process computing them died. ``.page``
    names the body (as the caller labelled it)."""

    def __init__(self, message: str, *, page: str | None = None):
        super().__init__(message)
        self.page = page
