"""JSON decoding and canonical encoding: the standard library's results, computed faster.

Three functions, each a drop-in for a standard-library expression, exact in its result (or
the error it raises) and only faster:

- :func:`loads` (``bytes`` -> value) is ``json.loads(data.decode("utf-8", "replace"))``,
  what ``requests``' ``response.json()`` gives for a UTF-8 body. The fast parser is
  ``msgspec`` (chosen by ``benchmarks/bench_json.py``: it keeps integers beyond 64 bits,
  which ``orjson`` turns into floats, and it counts nesting against the same recursion
  budget as the standard library). Whatever it refuses (lone surrogate escapes such as
  ``"\\ud800"``, ``NaN``/``Infinity``, numbers beyond the float range, invalid UTF-8, a
  BOM, malformed or too deeply nested input) is decoded again by the standard library, so
  the value or the raised error is the standard library's own.
- :func:`response_json` is ``response.json()`` of ``requests``, through :func:`loads`
  whenever ``requests`` would decode the body as UTF-8.
- :func:`canonical_dumps` is ``json.dumps(value, sort_keys=True, separators=(",", ":"),
  ensure_ascii=False, default=str).encode("utf-8", "surrogatepass")`` (the bytes
  fingerprints hash), written by ``orjson`` wherever its bytes provably agree.

Both fast libraries are optional: without them (or with the module attributes ``msgspec`` /
``orjson`` set to ``None``) every function takes the standard-library path.

Large parses run inside :func:`paused_gc` (see there for why that is safe and worth it).

Example:
    >>> loads(b'{"n": 1, "f": 1.0, "big": 1180591620717411303424, "s": "\\\\ud800"}')
    {'n': 1, 'f': 1.0, 'big': 1180591620717411303424, 's': '\\ud800'}
    >>> canonical_dumps({"b": [1e-05, 2.5], "a": "é"})
    b'{"a":"\\xc3\\xa9","b":[1e-05,2.5]}'
"""

from __future__ import annotations

import codecs
import gc
import json
import marshal
import threading
from types import ModuleType, TracebackType
from typing import Any, Protocol

try:  # pragma: no cover - the import is exercised either way by the test-suite
    import msgspec
    import msgspec.json
except ImportError:  # pragma: no cover
    msgspec = None  # type: ignore[assignment]
try:  # pragma: no cover
    import orjson
except ImportError:  # pragma: no cover
    orjson = None  # type: ignore[assignment]

__all__ = [
    "canonical_dumps",
    "fast_canonical_dumps",
    "fast_canonical_redumps",
    "loads",
    "loads_checked",
    "paused_gc",
    "response_json",
    "stdlib_canonical_dumps",
]

#: Inputs at least this long are parsed with the cyclic GC paused (bench_json.py: below
#: about 64 KiB one parse allocates too few containers to trigger a costly collection).
GC_PAUSE_MIN_BYTES = 64 * 1024

# The standard-library fallback decodes through its own decoder so that the frames between
# a caller and the C scanner are the same as for json.loads (loads -> decode -> raw_decode):
# the nesting depth at which RecursionError is raised is then the caller's json.loads depth.
_DECODER = json.JSONDecoder()
# msgspec counts nesting against the same recursion budget as the standard library's
# scanner but needs a few levels fewer; it is called this many Python frames deeper so that
# it always gives up first (the standard library then decides), never succeeds where
# json.loads would have raised RecursionError. tests/_util/test_jsoncodec.py sweeps the boundary.
_MSGSPEC_EXTRA_FRAMES = 8


class _Response(Protocol):
    """What :func:`response_json` needs of a ``requests.Response``."""

    @property
    def encoding(self) -> str | None: ...

    @property
    def content(self) -> bytes: ...

    def json(self) -> Any: ...


# --------------------------------------------------------------------------- GC pause


class _GCPause:
    """The context manager returned by :func:`paused_gc` (one per process, re-entrant)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._disabled_by_us = False

    def __enter__(self) -> None:
        with self._lock:
            if self._depth == 0:
                self._disabled_by_us = gc.isenabled()
                if self._disabled_by_us:
                    gc.disable()
            self._depth += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0 and self._disabled_by_us:
                self._disabled_by_us = False
                gc.enable()


class _NoPause:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_GC_PAUSE = _GCPause()
_NO_PAUSE = _NoPause()


def paused_gc(pause: bool = True) -> _GCPause | _NoPause:
    """A context manager that keeps the cyclic garbage collector off inside it.

    Why it is safe: parsed JSON is a tree of fresh dicts, lists, strings and numbers that
    cannot reference each other in a cycle, so the cyclic collector would find nothing to
    free in it; reference counting still frees everything as usual. Why it is worth it: a
    large parse allocates hundreds of thousands of containers, each allocation counts
    towards the collector's thresholds, and the collections it triggers traverse every
    tracked object of the process, the growing parse result included (``bench_json.py``:
    a 1 MB page parses about 4x faster with the collector paused).

    Thread-safe and re-entrant: one process-wide counter; the collector is disabled when the
    first pause starts and enabled again only when the last one ends, and only if it was
    enabled when the first started (a user's ``gc.disable()`` is kept). Cycles that other
    threads create meanwhile are collected after the pause. ``pause=False`` gives a no-op.

    Example:
        >>> import gc
        >>> with paused_gc():
        ...     with paused_gc():
        ...         inside = gc.isenabled()
        ...     still = gc.isenabled()
        >>> inside, still, gc.isenabled()
        (False, False, True)
    """
    return _GC_PAUSE if pause else _NO_PAUSE


# --------------------------------------------------------------------------- decoding


def _at_depth(frames: int, decode: Any, data: bytes) -> Any:
    """``decode(data)`` called ``frames`` Python frames further down the stack."""
    if frames:
        return _at_depth(frames - 1, decode, data)
    return decode(data)


def _fast_decode(data: bytes) -> tuple[bool, Any]:
    """(True, value) when msgspec decodes ``data`` exactly as the standard library would."""
    if msgspec is None:
        return False, None
    try:
        return True, _at_depth(_MSGSPEC_EXTRA_FRAMES, msgspec.json.decode, data)
    except (msgspec.DecodeError, RecursionError):  # ValidationError: number out of range
        return False, None


def loads(data: bytes) -> Any:
    """``json.loads(data.decode("utf-8", "replace"))``, value or error, only faster.

    Example:
        >>> loads(b'[1, 1.0, "\\\\u00e9", NaN]')
        [1, 1.0, 'é', nan]
        >>> try:
        ...     loads(b"\\xef\\xbb\\xbf{}")
        ... except json.JSONDecodeError as exc:
        ...     print(exc.msg)
        Unexpected UTF-8 BOM (decode using utf-8-sig)
    """
    with paused_gc(len(data) >= GC_PAUSE_MIN_BYTES):
        ok, value = _fast_decode(data)
        if ok:
            return value
        text = bytes(data).decode("utf-8", "replace")
        if text.startswith("\ufeff"):  # as json.loads says it
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        return _DECODER.decode(text)


def loads_checked(data: bytes) -> tuple[Any, bool]:
    """``(loads(data), plain)``: ``plain`` is True when the fast parser decoded ``data``;
    the value then holds only exact dict, list, str, int, float, bool and None, and no
    float is NaN or infinite (the fast parser refuses those spellings and numbers beyond
    the float range), so a canonical encoder's type and NaN checks can be skipped.

    Example:
        >>> loads_checked(b'{"a": [1, 0.5]}'), loads_checked(b"[NaN]")
        (({'a': [1, 0.5]}, True), ([nan], False))
    """
    with paused_gc(len(data) >= GC_PAUSE_MIN_BYTES):
        ok, value = _fast_decode(data)
    if ok:
        return value, True
    return loads(data), False


def _is_utf8(encoding: str | None) -> bool:
    if not encoding:
        return False
    try:
        return codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        return False


def response_json(response: _Response) -> Any:
    """``response.json()`` (``requests``), decoded by :func:`loads` where that is the same.

    ``requests`` decodes a body whose encoding is UTF-8 (``application/json`` without a
    charset counts as UTF-8) as ``json.loads(content.decode(encoding, "replace"))``: that is
    :func:`loads`. With no encoding at all it guesses (UTF-8 unless a BOM or NUL bytes say
    otherwise, and a guess again when strict UTF-8 fails): the fast parser's result is used
    when it succeeds (it then was valid UTF-8 JSON), else ``response.json()`` decides. Any
    other charset goes to ``response.json()``. A decoding error is raised as
    ``requests.JSONDecodeError``, as ``response.json()`` raises it.
    """
    if _is_utf8(response.encoding):
        try:
            return loads(response.content)
        except json.JSONDecodeError as exc:
            import requests  # here: the fingerprint side processes never import it

            raise requests.JSONDecodeError(exc.msg, exc.doc, exc.pos) from None
    content = response.content
    if response.encoding is None and len(content) > 3:
        with paused_gc(len(content) >= GC_PAUSE_MIN_BYTES):
            ok, value = _fast_decode(content)
        if ok:
            return value
    return response.json()


# --------------------------------------------------------------------------- canonical


def stdlib_canonical_dumps(value: Any) -> bytes:
    """The canonical bytes as the standard library writes them (the reference).

    Example:
        >>> stdlib_canonical_dumps({"b": float("nan"), "a": (1, "\\ud800")})
        b'{"a":[1,"\\xed\\xa0\\x80"],"b":NaN}'
    """
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return text.encode("utf-8", "surrogatepass")


def _refuse(value: Any) -> Any:
    raise TypeError(type(value).__name__)


def _orjson_options(lib: ModuleType, sort_keys: bool) -> int:
    # subclasses, datetimes and dataclasses go to `default` (which refuses): the standard
    # library writes them differently (str subclasses aside, refused all the same).
    return int(
        (lib.OPT_SORT_KEYS if sort_keys else 0)
        | lib.OPT_PASSTHROUGH_SUBCLASS
        | lib.OPT_PASSTHROUGH_DATETIME
        | lib.OPT_PASSTHROUGH_DATACLASS
    )


_NUMBER_BYTES = frozenset(b"0123456789.-+eE")
_VALUE_STARTS = frozenset(b":,[")
_FLOAT_CODES = frozenset(b"g\xe7")  # marshal's binary float, without and with FLAG_REF


def _python_writes_float_otherwise(out: bytes) -> bool:
    """True if ``out`` may hold a float Python's ``repr`` writes differently.

    The two disagree only between 1e-9 and 1e-4: orjson writes ``1e-6`` and ``0.00001``
    where ``repr`` writes ``1e-06`` and ``1e-05`` (larger, smaller and all other floats are
    written alike; ``tests/_util/test_jsoncodec.py`` checks it). Any number in ``out`` holding
    ``e-`` or starting ``0.0000`` counts; a hit inside a string is checked and skipped.
    """
    for needle in (b"e-", b"0.0000"):
        pos = out.find(needle)
        while pos != -1:
            start = pos
            while start > 0 and out[start - 1] in _NUMBER_BYTES:
                start -= 1
            if start == 0 or out[start - 1] in _VALUE_STARTS:
                return True
            pos = out.find(needle, pos + 1)
    return False


def _holds_nan_or_infinity(packed: bytes) -> bool:
    """True if ``packed`` (marshal output) may hold a NaN or an infinity.

    A marshalled float is a type byte and 8 little-endian bytes; NaN and the infinities
    have all exponent bits set: byte 6 >= 0xF0 and byte 7 0x7F or 0xFF. UTF-8 text never
    holds 0xFF nor a lead byte >= 0xF0 before 0x7F, so the scan rarely checks in vain.
    """
    for last in (b"\x7f", b"\xff"):
        pos = packed.find(last, 8)
        while pos != -1:
            if packed[pos - 1] >= 0xF0 and packed[pos - 8] in _FLOAT_CODES:
                return True
            pos = packed.find(last, pos + 1)
    return False


def fast_canonical_dumps(value: Any, *, sort_keys: bool = True) -> bytes | None:
    """:func:`canonical_dumps` by orjson, or None where its bytes might differ.
    ``sort_keys=False`` keeps each dict's own key order (``json.dumps`` without
    ``sort_keys``), with the same guards.

    None when orjson is missing or refuses ``value`` (non-str keys, lone surrogates,
    integers beyond 64 bits, nesting beyond 255 levels, types without a JSON form), when
    ``marshal`` refuses it (anything but exact dict, list, tuple, str, int, float, bool and
    None: enum members and other subclasses, which orjson may write otherwise), when a float
    is NaN or infinite (orjson writes ``null``) or would be formatted otherwise. Where the
    fast path says None, the standard library gives the bytes.

    Example:
        >>> fast_canonical_dumps({"b": 1, "a": [True, None, 0.5]})
        b'{"a":[true,null,0.5],"b":1}'
        >>> fast_canonical_dumps([float("nan")]) is None, fast_canonical_dumps([1e-05]) is None
        (True, True)
    """
    out = fast_canonical_redumps(value, sort_keys=sort_keys)
    if out is None or _python_writes_float_otherwise(out):
        return None
    try:
        packed = marshal.dumps(value)
    except ValueError:  # "unmarshallable object", or nested too deeply
        return None
    return None if _holds_nan_or_infinity(packed) else out


def fast_canonical_redumps(value: Any, *, sort_keys: bool = True) -> bytes | None:
    """:func:`fast_canonical_dumps` of ``value`` without its guards, for a value derived from
    one that :func:`fast_canonical_dumps` accepted only by putting new exact ``str``,
    ``list`` and ``dict`` objects in place of some (its floats, types and keys otherwise the
    same, so the guards' answers carry over). None if orjson is missing or refuses it.

    Example:
        >>> fast_canonical_redumps({"b": "x", "a": [1]})
        b'{"a":[1],"b":"x"}'
    """
    lib = orjson
    if lib is None:
        return None
    try:
        out: bytes = lib.dumps(value, default=_refuse, option=_orjson_options(lib, sort_keys))
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return None
    return out


def canonical_dumps(value: Any) -> bytes:
    """Exactly :func:`stdlib_canonical_dumps` ``(value)``, by orjson where provably equal.

    Example:
        >>> canonical_dumps({"z": [1, 2.0], "a": None}) == stdlib_canonical_dumps(
        ...     {"z": [1, 2.0], "a": None})
        True
    """
    out = fast_canonical_dumps(value)
    return stdlib_canonical_dumps(value) if out is None else out
