"""URLs as the HTTP layer sees them: origins, and the forms messages and logs show.

- :func:`origin_of` and :func:`is_same_origin` tell whether a URL may receive the
  credentials (only URLs on the API's own origin do; the image loader reuses them).
- :func:`safe_url` drops any ``user:password@``; :func:`message_url` also drops the paging
  and sorting parameters; :func:`request_label` names a request in a message.

Example:
    >>> is_same_origin("https://lab.coreviz.io/api/media/x", "https://lab.coreviz.io/api")
    True
    >>> is_same_origin("https://x.public.blob.vercel-storage.com/a.jpg", "https://lab.coreviz.io/api")
    False
    >>> request_label("media 'x'", safe_url("https://me:pw@h/api/media/x"))
    "GET media 'x' (https://h/api/media/x)"
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "is_same_origin",
    "message_url",
    "origin_of",
    "request_label",
    "safe_url",
]

_DEFAULT_PORTS = {"http": 80, "https": 443}


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


def safe_url(url: str) -> str:
    """``url`` without any ``user:password@`` part: the only form put in messages and logs.

    Example:
        >>> safe_url("https://me:hunter2@lab.coreviz.io/api"), safe_url("http://u:p@[::1")
        ('https://lab.coreviz.io/api', 'http://[::1')
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket: strip by hand
        scheme, sep, rest = url.partition("://")
        netloc, slash, path = rest.partition("/")
        return f"{scheme}{sep}{netloc.rsplit('@', 1)[-1]}{slash}{path}" if sep else url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


#: Query parameters left out of the URLs in messages: paging and sorting say nothing about
#: what failed (``?recursive=true&sortBy=createdAt&...&offset=0``).
PAGING_PARAMS = frozenset(
    {"limit", "offset", "page", "pageSize", "cursor", "sortBy", "sortDirection", "recursive"}
)


def message_url(url: str) -> str:
    """:func:`safe_url` without its paging and sorting parameters: the form errors show.

    Example:
        >>> message_url("https://h/api/dataset/c1/media?recursive=true&limit=100&offset=0")
        'https://h/api/dataset/c1/media'
        >>> message_url("https://h/api/search?q=rocket&organizationId=o1&limit=20")
        'https://h/api/search?q=rocket&organizationId=o1'
    """
    safe = safe_url(url)
    base, sep, query = safe.partition("?")
    if not sep:
        return safe
    kept = [p for p in query.split("&") if p and p.split("=", 1)[0] not in PAGING_PARAMS]
    return f"{base}?{'&'.join(kept)}" if kept else base


def request_label(what: str | None, url: str) -> str:
    """How a message names a request: ``GET``, what it was about (if said) and its URL
    (already in the form messages show: :func:`safe_url` or :func:`message_url`).

    Example:
        >>> request_label(None, "https://h/api/collections")
        'GET (https://h/api/collections)'
    """
    return f"GET {what} ({url})" if what else f"GET ({url})"
