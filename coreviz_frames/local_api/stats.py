"""Request counters of the local API: :class:`ServerStats` (live) and :class:`StatsSnapshot`.

Example:
    >>> stats = ServerStats()
    >>> stats.enter("/api/media/x", {"x-api-key": "k"}); stats.leave()
    >>> stats.snapshot().paths["/api/media/x"], stats.max_in_flight
    (1, 1)
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass, field

__all__ = ["ServerStats", "StatsSnapshot"]

#: How many ``(path, headers)`` pairs :class:`ServerStats` remembers.
HEADER_HISTORY = 10_000


#: Request headers that carry credentials: recorded, but never sent back or shown.
CREDENTIAL_HEADERS = frozenset({"x-api-key", "authorization", "cookie", "proxy-authorization"})


def _masked(headers: dict[str, str]) -> dict[str, str]:
    return {k: "***" if k in CREDENTIAL_HEADERS else v for k, v in headers.items()}


@dataclass(frozen=True)
class StatsSnapshot:
    """Counters at one moment (also what ``POST /_local/stats`` returns, as JSON: there the
    credential headers read ``***``; the repr leaves the headers out)."""

    requests: int = 0
    max_in_flight: int = 0
    paths: Counter = field(default_factory=Counter)
    # [(path, {lower-case name: value}), ...]
    headers: list = field(default_factory=list, repr=False)

    def to_json(self) -> dict:
        return {
            "requests": self.requests,
            "max_in_flight": self.max_in_flight,
            "paths": dict(self.paths),
            "headers": [[path, _masked(headers)] for path, headers in self.headers],
        }

    @classmethod
    def from_json(cls, doc: dict) -> StatsSnapshot:
        return cls(
            requests=doc["requests"],
            max_in_flight=doc["max_in_flight"],
            paths=Counter(doc["paths"]),
            headers=[(path, headers) for path, headers in doc["headers"]],
        )


class ServerStats:
    """Thread-safe request counters of one :class:`LocalAPI` (API and blob servers).

    ``requests`` counts every answered or dropped request, ``max_in_flight`` the most
    requests being handled at once, ``paths`` the request paths (without query string),
    ``headers`` the ``(path, headers)`` of the last 10,000 requests (names lower-cased).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests = 0
            self._in_flight = 0
            self._max_in_flight = 0
            self._paths: Counter = Counter()
            self._headers: deque = deque(maxlen=HEADER_HISTORY)

    def enter(self, path: str, headers: dict[str, str]) -> None:
        with self._lock:
            self._requests += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            self._paths[path] += 1
            self._headers.append((path, headers))

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    @property
    def requests(self) -> int:
        return self._requests

    @property
    def max_in_flight(self) -> int:
        return self._max_in_flight

    @property
    def paths(self) -> Counter:
        with self._lock:
            return Counter(self._paths)

    @property
    def headers(self) -> list[tuple[str, dict[str, str]]]:
        with self._lock:
            return list(self._headers)

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            return StatsSnapshot(
                self._requests, self._max_in_flight, Counter(self._paths), list(self._headers)
            )
