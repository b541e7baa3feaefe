"""Who may talk to the local API: the Host and Origin rules, the key, the control routes.

A web page in a browser on the same machine can send requests to 127.0.0.1 (a form or
``fetch`` with ``text/plain``, no preflight), and through DNS rebinding (a name of its own
that resolves to 127.0.0.1) can even read the answers. :class:`Guard` refuses them:

- **Host** (both servers, every route): the ``Host`` header must name the server the
  request came to: its bound address or ``localhost``, with its port; a server bound to
  every interface (``0.0.0.0``, ``::``) also takes any IP address literal and this machine's
  name. A name of someone else's (DNS rebinding) is a 403. No ``Host`` at all (HTTP/1.0
  tools; no browser) is allowed.
- **Origin** (the API server): a request that carries ``Origin`` must come from the API's
  own origin (403 otherwise, ``null`` included).
- **Key** (the API server, ``/api/...`` and ``/_local/...`` alike): the API key, when one is
  set, as ``x-api-key`` or ``Authorization: Bearer`` (401 otherwise).
- **Control routes** (``/_local/...``): ``POST`` only (405) with ``Content-Type:
  application/json`` (415), which a page cannot send to another origin without a CORS
  preflight, which this server never grants.

Example:
    >>> guard = Guard("127.0.0.1", api_key="sk-local-key")
    >>> guard.bind({"api": 8000, "blob": 8001})
    >>> guard.host_allowed("localhost:8000", "api"), guard.host_allowed("evil.example:8000", "api")
    (True, False)
    >>> guard.origin_allowed("https://evil.example"), guard.origin_allowed("http://127.0.0.1:8000")
    (False, True)
"""

from __future__ import annotations

import hmac
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from coreviz_frames.http.credentials import is_loopback_host

__all__ = ["Guard", "carries_key", "exposure_warning"]

#: Bind addresses that listen on every interface.
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


def _ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _split_host(value: str) -> tuple[str, int] | None:
    """``(host, port)`` of a ``Host`` header value (port 80 if none); None if unreadable."""
    try:
        parts = urlsplit(f"//{value.strip()}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname or parts.username is not None or parts.path or parts.query:
        return None
    return parts.hostname.lower(), 80 if port is None else port


def carries_key(headers: Any, api_key: str | None) -> bool:
    """True if ``api_key`` is None, or ``headers`` carry it as ``x-api-key`` or
    ``Authorization: Bearer`` (compared in constant time).

    Example:
        >>> carries_key({"x-api-key": "k"}, "k"), carries_key({}, "k"), carries_key({}, None)
        (True, False, True)
    """
    if api_key is None:
        return True
    expected = api_key.encode()
    given = headers.get("x-api-key")
    if given is not None and hmac.compare_digest(given.encode(errors="replace"), expected):
        return True
    bearer = headers.get("Authorization") or ""
    return hmac.compare_digest(bearer.encode(errors="replace"), b"Bearer " + expected)


class Guard:
    """The rules of the module docstring for a server bound to ``host`` (ports set by
    :meth:`bind` once the servers listen)."""

    def __init__(self, host: str, *, api_key: str | None) -> None:
        self.host = host.strip("[]").lower()
        self._api_key = api_key
        self._ports: dict[str, int] = {}
        self._names = {self.host, "localhost"}
        if self.wildcard:
            self._names.add(socket.gethostname().lower())

    def __repr__(self) -> str:
        return f"<Guard {self.host} {self._ports}>"  # never shows the API key

    @property
    def wildcard(self) -> bool:
        """True if the servers listen on every interface."""
        return self.host in WILDCARD_HOSTS

    def bind(self, ports: dict[str, int]) -> None:
        """The port of each server role (``"api"``, ``"blob"``)."""
        self._ports = dict(ports)

    def host_allowed(self, value: str | None, role: str) -> bool:
        """Whether a ``Host`` header ``value`` names the ``role`` server (None: allowed)."""
        if value is None:
            return True
        parsed = _split_host(value)
        if parsed is None or parsed[1] != self._ports.get(role):
            return False
        name = parsed[0]
        return name in self._names or (self.wildcard and _ip_literal(name))

    def origin_allowed(self, value: str | None) -> bool:
        """Whether an ``Origin`` header ``value`` is the API server's own (None: allowed)."""
        if value is None:
            return True
        try:
            parts = urlsplit(value.strip())
        except ValueError:
            return False
        if parts.scheme != "http" or parts.path not in ("", "/"):
            return False
        return self.host_allowed(parts.netloc, "api")

    @property
    def ports(self) -> dict[str, int]:
        """The port of each server role, once bound."""
        return dict(self._ports)

    def authorized(self, headers: Any) -> bool:
        """True if no key is set, or ``headers`` carry it (see :func:`carries_key`)."""
        return carries_key(headers, self._api_key)

    def refusal(self, request: Any) -> tuple[int, str] | None:
        """``(status, message)`` refusing ``request`` (a :class:`~.wire.Request`) by the
        Host, Origin, key and control-route rules; None if it may be answered."""
        headers = request.headers
        if not self.host_allowed(headers.get("Host"), request.role):
            return 403, "the Host header does not name this server (DNS rebinding?)"
        if request.role != "api":
            return None
        if not self.origin_allowed(headers.get("Origin")):
            return 403, "requests from another origin are refused"
        if not request.path.startswith("/_local/"):
            return None  # /api routes check the key themselves (401 before 404)
        if not self.authorized(headers):
            return 401, "Invalid or missing API key"
        if request.method != "POST":
            return 405, "control routes take POST only"
        content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return 415, "control routes take Content-Type: application/json only"
        return None


def exposure_warning(guard: Guard, *, media: int, keyed: bool) -> str | None:
    """What a bind to a non-loopback address makes reachable, or None on loopback.

    Example:
        >>> exposure_warning(Guard("127.0.0.1", api_key=None), media=5, keyed=False) is None
        True
    """
    if is_loopback_host(guard.host):
        return None
    where = "every interface" if guard.wildcard else guard.host
    ports = " and ".join(str(p) for p in guard.ports.values())
    key = (
        "every request to the API needs the key"
        if keyed
        else "no API key is set (--api-key or COREVIZ_LOCAL_API_KEY), so anyone can read "
        "every record and change the collection through /_local/mutate"
    )
    return (
        f"warning: the local API listens on {where} (ports {ports}): anyone who can reach "
        f"this machine can read the {media:,} media records and their images (the blob server "
        f"never asks for a key) and use the control routes /_local/... ; {key}"
    )
