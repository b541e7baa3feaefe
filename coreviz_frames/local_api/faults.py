"""Injected faults of the local API: error statuses, dropped connections, trickled answers.

A :class:`Fault` applies to the next ``count`` requests whose target (path and query)
starts with ``prefix``. It answers ``status`` (with a ``Retry-After`` header if
``retry_after`` is set: a number of seconds, or any text such as ``"soon"``), or drops the
connection, or serves the normal answer slowly: ``trickle_headers`` / ``trickle_body``
seconds between single bytes of the status line and headers / of the body.

:class:`RandomFaults` fails a share of requests at random (seeded), for fault soaks.

Example:
    >>> table = FaultTable()
    >>> table.add(Fault("/api/media/", status=429, retry_after="0.5"))
    >>> fault = table.take("/api/media/abc")
    >>> fault.status, fault.retry_after_header(), table.take("/api/media/abc")
    (429, '0.5', None)
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from coreviz_frames.errors import ConfigError

__all__ = ["Fault", "FaultTable", "RandomFaults"]


@dataclass
class Fault:
    """One injected fault (``remaining`` counts down as requests take it).

    ``status`` None serves the normal answer (useful with the trickle options).
    """

    prefix: str
    status: int | None = 503
    remaining: int = 1
    retry_after: float | str | None = None
    drop: bool = False
    trickle_headers: float = 0.0
    trickle_body: float = 0.0

    def __post_init__(self) -> None:
        if self.status is not None and not 100 <= int(self.status) <= 599:
            raise ConfigError(f"fault status must be 100..599, not {self.status!r}")
        for name in ("trickle_headers", "trickle_body"):
            value = float(getattr(self, name))
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"fault {name} must be seconds >= 0, not {value!r}")
            setattr(self, name, value)

    @classmethod
    def from_options(
        cls,
        path_prefix: str,
        *,
        status: int | None = None,
        count: int = 1,
        retry_after: float | str | None = None,
        drop: bool = False,
        trickle_headers: float = 0.0,
        trickle_body: float = 0.0,
    ) -> Fault:
        """The fault of :meth:`LocalAPI.add_fault`'s keywords: ``status`` defaults to 503,
        or to the normal answer when ``drop`` or a trickle is asked for."""
        if status is None and not (drop or trickle_headers or trickle_body):
            status = 503
        return cls(
            prefix=str(path_prefix),
            status=None if status is None else int(status),
            remaining=int(count),
            retry_after=retry_after,
            drop=bool(drop),
            trickle_headers=float(trickle_headers or 0.0),
            trickle_body=float(trickle_body or 0.0),
        )

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Fault:
        """A fault from the JSON body of ``POST /_local/fault`` (the same keywords)."""
        names = ("status", "count", "retry_after", "drop", "trickle_headers", "trickle_body")
        return cls.from_options(doc["path_prefix"], **{k: doc[k] for k in names if k in doc})

    def to_json(self) -> dict[str, Any]:
        """The JSON body of ``POST /_local/fault`` for this fault."""
        return {
            "path_prefix": self.prefix,
            "status": self.status,
            "count": self.remaining,
            "retry_after": self.retry_after,
            "drop": self.drop,
            "trickle_headers": self.trickle_headers,
            "trickle_body": self.trickle_body,
        }

    def retry_after_header(self) -> str | None:
        """The ``Retry-After`` value sent: numbers as ``%g``, text as given."""
        if self.retry_after is None:
            return None
        if isinstance(self.retry_after, (int, float)):
            return f"{self.retry_after:g}"
        return str(self.retry_after)

    def phrase(self) -> str:
        """The reason phrase of ``status``."""
        if self.status is None or self.status not in HTTPStatus._value2member_map_:
            return "Error"
        return HTTPStatus(self.status).phrase


class FaultTable:
    """Thread-safe list of pending faults; :meth:`take` uses up the first that matches."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, target: str) -> Fault | None:
        """The first pending fault for ``target`` (its count decremented), or None."""
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and target.startswith(fault.prefix):
                    fault.remaining -= 1
                    return fault
            self._faults = [f for f in self._faults if f.remaining > 0]
            return None


#: What :class:`RandomFaults` answers, in equal shares: a 429 with a fractional
#: ``Retry-After``, a 500, a 503, a dropped connection.
RANDOM_FAULTS = (
    Fault("", status=429, retry_after="0.1"),
    Fault("", status=500),
    Fault("", status=503),
    Fault("", status=None, drop=True),
)


class RandomFaults:
    """Each request under ``prefix`` fails with probability ``rate`` (one of
    :data:`RANDOM_FAULTS`), drawn from a generator seeded with ``seed`` (thread-safe).

    Example:
        >>> faults = RandomFaults(0.5, seed=1)
        >>> sum(faults.take("/api/media/x") is not None for _ in range(1000)) in range(400, 600)
        True
        >>> RandomFaults(1.0).take("/synthetic/0.jpg") is None   # outside the prefix
        True
    """

    def __init__(self, rate: float, *, seed: int = 0, prefix: str = "/api/") -> None:
        rate = float(rate)
        if not 0.0 <= rate <= 1.0:
            raise ConfigError(f"fault_rate must be between 0 and 1, not {rate!r}")
        self.rate = rate
        self.prefix = prefix
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def take(self, target: str) -> Fault | None:
        """A fault for this request, or None."""
        if not self.rate or not target.startswith(self.prefix):
            return None
        with self._lock:
            if self._random.random() >= self.rate:
                return None
            return self._random.choice(RANDOM_FAULTS)
