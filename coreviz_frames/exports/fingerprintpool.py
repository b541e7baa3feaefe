"""Fingerprints of response bodies, computed in a small pool of side processes.

:class:`FingerprintPool` keeps fingerprinting out of the main process's GIL: ``submit(body,
rows)`` hands the raw bytes of a browse page (or of a Get Media answer) to a side process,
which runs :func:`~coreviz_frames.exports.bodyfingerprints.body_fingerprints` (each record's
fingerprint from its own text in the body) and answers ``{normalised media id: fingerprint}``.
The main process only copies bytes to a pipe and reads a small answer back.

Processes: ``workers`` (default 1: one keeps up with an export, at about 5 ms of CPU per page
of 100 media against the export's 13) fresh interpreters, started as
``python -c ...`` (a fork *and exec*: never a bare fork of a process with threads), each
fed by one thread of the pool over its stdin/stdout. Bodies queued together travel
together (up to 64 bodies, 4 MiB) so that small Get Media bodies cost one round trip.

Where processes cannot be started (``COREVIZ_FRAMES_PROCESSES=0`` in the environment,
``processes=False``, no Python executable, a sandbox that refuses to start or kills them),
or should not be (inside a ``multiprocessing`` worker, such as those of an export split
across processes: its siblings already use the cores),
the pool computes in one thread of this process instead; :attr:`FingerprintPool.mode`
says ``"processes"`` or ``"thread"`` and :meth:`FingerprintPool.describe` why (also logged
on the ``coreviz_frames.exports`` logger). Results are the same either way.

Shutdown: leaving the ``with`` block normally waits for the submitted bodies; leaving it by
an exception (``KeyboardInterrupt`` included) cancels what has not started and kills the
side processes. Side processes ignore SIGINT (a Ctrl-C reaches the whole process group;
the parent decides) and end by themselves when the parent is gone (their stdin closes,
or their parent pid changes: a SIGTERM or SIGKILL of the parent leaves no orphan). A side
process that dies mid-work fails the futures of its bodies with
:class:`~coreviz_frames.errors.FingerprintError` naming each body; the next body gets a
fresh process.

Example:
    >>> body = b'{"media": [{"id": "m1", "blob": "https://h/a.jpg?sig=x"}]}'
    >>> with FingerprintPool(workers=1) as pool:
    ...     future = pool.submit(body, what="page 0")
    ...     prints = future.result()
    >>> from coreviz_frames.exports.fingerprint import fingerprint
    >>> prints == {"m1": fingerprint({"id": "m1", "blob": "https://h/a.jpg"})}
    True
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import queue
import selectors
import signal
import struct
import subprocess
import sys
import threading
import weakref
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, NamedTuple

try:  # pipes' size can be set on Linux only
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from coreviz_frames._util.checks import check_int
from coreviz_frames._util.ids import id_key
from coreviz_frames.errors import FingerprintError
from coreviz_frames.exports.bodyfingerprints import body_fingerprints

if TYPE_CHECKING:  # the side processes import this module: keep pyarrow out of their start
    from coreviz_frames.tables.pagechunks import PageRows

__all__ = ["PROCESSES_ENV", "FingerprintPool", "SentPage", "page_fingerprints"]

#: Set to ``0`` (or ``false``/``no``/``off``) to compute fingerprints in-process.
PROCESSES_ENV = "COREVIZ_FRAMES_PROCESSES"
MAX_BATCH_BODIES = 64
MAX_BATCH_BYTES = 4 << 20
#: Seconds a side process may take to start (import the package) before the pool gives up.
START_TIMEOUT = 60.0
_HEADER = struct.Struct(">Q")
_PIPE_BYTES = 1 << 20
_HELLO_LIMIT = 1 << 16  # the "ready" frame is short: a longer one is stray output
_STOP = object()
_LOG = logging.getLogger("coreviz_frames.exports")
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
# The side process imports as this one does: this process's sys.path (and the folder this
# package was imported from, if that is no longer on it), never PYTHONPATH edits that would
# put site-packages before the standard library.
_CHILD = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
    "from coreviz_frames.exports.fingerprintpool import _serve_child; _serve_child()"
)


class _SideDied(Exception):
    """The side process closed its pipe (killed, crashed, or never started)."""


@dataclass
class _Job:
    body: bytes
    rows: list[int] | None
    hydrated: dict[int, bytes]
    what: str
    future: Future[dict[str, str]]

    @property
    def size(self) -> int:
        return len(self.body) + sum(map(len, self.hydrated.values()))

    def frames(self) -> list[bytes]:
        """The bodies as they travel: the page, then each hydrated row's body."""
        return [self.body, *self.hydrated.values()]


# ------------------------------------------------------------------ framing (both sides)


def _write_frame(out: IO[bytes], data: bytes) -> None:
    out.write(_HEADER.pack(len(data)))
    out.write(data)


def _read_frame(inp: IO[bytes], limit: int | None = None) -> bytes | None:
    """The next frame, or None at a clean end of stream; ``_SideDied`` if cut mid-frame
    (or longer than ``limit``: not a frame, something else wrote to the stream)."""
    head = inp.read(_HEADER.size)
    if not head:
        return None
    if len(head) < _HEADER.size:
        raise _SideDied("the stream ended inside a frame header")
    (size,) = _HEADER.unpack(head)
    if limit is not None and size > limit:
        raise _SideDied(f"it wrote {head!r}..., not its answer")
    data = inp.read(size)
    if len(data) < size:
        raise _SideDied("the stream ended inside a frame")
    return data


def _compute(body: bytes, rows: list[int] | None, hydrated: dict[int, bytes]) -> list[Any]:
    """``["ok", fingerprints]`` or ``["error", message]`` for one body (both modes)."""
    try:
        return ["ok", body_fingerprints(body, rows, hydrated or None)]
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        return ["error", f"{type(exc).__name__}: {exc}"]


# ------------------------------------------------------------------ the side process


def _watch_parent(parent: int) -> None:
    """End this process as soon as its parent is gone (a daemon thread polls)."""

    def watch() -> None:
        while True:
            threading.Event().wait(0.25)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="coreviz-fp-watch", daemon=True).start()


def _serve_child() -> None:
    """The side process: answer frames from stdin until it closes (the parent's end)."""
    if hasattr(signal, "SIGINT"):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent decides
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print goes to stderr, never into the answers
    inp = os.fdopen(os.dup(0), "rb")
    _watch_parent(os.getppid())
    _write_frame(out, json.dumps(["ready", os.getpid(), os.path.realpath(__file__)]).encode())
    out.flush()
    try:
        while (head := _read_frame(inp)) is not None:
            answers = []
            for rows, hydrated_rows in json.loads(head):  # [[rows, [hydrated row, ...]], ...]
                frames = [_read_frame(inp) for _ in range(1 + len(hydrated_rows))]
                if None in frames:
                    return  # the parent went away between frames
                body, *more = [frame or b"" for frame in frames]
                hydrated = dict(zip(hydrated_rows, more, strict=True))
                answers.append(_compute(body, rows, hydrated))
            _write_frame(out, json.dumps(answers).encode())
            out.flush()
    except (_SideDied, BrokenPipeError):
        pass  # the parent went away mid-frame


# ------------------------------------------------------------------ the parent's side


class _Side:
    """One side process and its pipes (used by one pool thread at a time)."""

    def __init__(self) -> None:
        path = list(sys.path)
        if _PACKAGE_ROOT not in path:
            path.insert(0, _PACKAGE_ROOT)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, json.dumps(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.pid = self.proc.pid
        _widen(self.proc.stdin)

    def handshake(self, timeout: float) -> None:
        """Wait for the side process's "ready"; ``_SideDied`` if it ends or stays silent."""
        assert self.proc.stdout is not None
        if os.name == "posix":  # (pipes cannot be waited on this way on Windows)
            with selectors.DefaultSelector() as waiting:  # epoll/poll: any fd number
                waiting.register(self.proc.stdout, selectors.EVENT_READ)
                if not waiting.select(timeout):
                    raise _SideDied(f"no answer within {timeout:.0f}s of starting")
        head = _read_frame(self.proc.stdout, limit=_HELLO_LIMIT)
        if head is None:
            code = self.proc.wait()
            raise _SideDied(f"it exited at start (exit code {code})")
        try:
            ready, _, where = json.loads(head)
        except (ValueError, TypeError):
            raise _SideDied(f"it wrote {head[:40]!r}, not its answer") from None
        if ready != "ready" or where != os.path.realpath(__file__):  # not by another copy
            raise _SideDied(f"it imported another copy of the package ({where})")

    def run(self, jobs: list[_Job]) -> list[Any]:
        """The answers for ``jobs``; ``_SideDied`` if the process dies before answering."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            meta = [[job.rows, list(job.hydrated)] for job in jobs]
            _write_frame(self.proc.stdin, json.dumps(meta).encode())
            for job in jobs:
                for frame in job.frames():
                    _write_frame(self.proc.stdin, frame)
            self.proc.stdin.flush()
            answer = _read_frame(self.proc.stdout)
        except (BrokenPipeError, ConnectionResetError, ValueError) as exc:  # ValueError: closed
            raise _SideDied(str(exc)) from None
        if answer is None:
            raise _SideDied("its output closed")
        return list(json.loads(answer))

    def stop(self, *, kill: bool) -> None:
        """End the process: close its stdin and wait briefly, or kill it at once."""
        proc = self.proc
        if not kill:
            with contextlib.suppress(OSError, ValueError):
                proc.stdin.close()  # type: ignore[union-attr]
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError, ValueError):
                stream.close()  # type: ignore[union-attr]

    def exit_note(self) -> str:
        code = self.proc.poll()
        return f"side process {self.pid} " + (
            "is gone" if code is None else f"exited with code {code}"
        )


def _widen(pipe: IO[bytes] | None) -> None:
    """Let ``pipe`` hold a whole page (1 MiB where Linux allows it, instead of 64 KiB), so a
    page crosses in one write instead of a context switch every 64 KiB."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if pipe is not None and set_size is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(pipe.fileno(), set_size, _PIPE_BYTES)


def _kill_all(sides: dict[int, _Side]) -> None:
    """Kill what is left (the pool was never closed: the interpreter exits)."""
    for side in list(sides.values()):
        side.stop(kill=True)


def processes_switched_off() -> str | None:
    """Why side processes may not be used here (:data:`PROCESSES_ENV`), else None."""
    value = os.environ.get(PROCESSES_ENV, "").strip().lower()
    if value in ("0", "false", "no", "off"):
        return f"{PROCESSES_ENV}={value}"
    if not sys.executable:
        return "no Python executable to start (sys.executable is empty)"
    if multiprocessing.parent_process() is not None:
        return "this is a worker process: its sibling processes already use the cores"
    return None


class FingerprintPool:
    """Exact fingerprints of response bodies, off the main process (see the module doc).

    ``workers``: side processes (default 1); ``processes=False`` (or
    :data:`PROCESSES_ENV` ``=0``) computes in one thread of this process instead.

    Example:
        >>> with FingerprintPool(processes=False) as pool:
        ...     pool.submit(b'{"media": {"id": "m1"}}').result().keys(), pool.mode
        (dict_keys(['m1']), 'thread')
    """

    def __init__(self, workers: int | None = None, *, processes: bool = True) -> None:
        if workers is not None:
            check_int("workers", workers, minimum=1)
        self.workers = workers or 1
        off = "processes=False" if not processes else processes_switched_off()
        self.mode: Literal["processes", "thread"] = "thread" if off else "processes"
        #: Why the pool computes in-process (None while it uses side processes).
        self.reason: str | None = off
        self._queue: queue.Queue[Any] = queue.Queue()
        self._lock = threading.Lock()
        self._sides: dict[int, _Side] = {}
        self._threads: list[threading.Thread] = []
        self._started = self._closing = self._closed = self._aborted = False
        self._count = 0
        self._finalizer = weakref.finalize(self, _kill_all, self._sides)

    # -------------------------------------------------------------- public surface

    def describe(self) -> str:
        """One line for a report: where the fingerprints are computed, and why."""
        if self.mode == "processes":
            plural = "es" if self.workers > 1 else ""
            return f"fingerprints computed in {self.workers} side process{plural}"
        return f"fingerprints computed in-process ({self.reason})"

    @property
    def pids(self) -> list[int]:
        """The ids of the side processes running now."""
        with self._lock:
            return [side.pid for side in self._sides.values() if side.proc.poll() is None]

    def start(self) -> FingerprintPool:
        """Start the pool's threads (side processes start with their first body)."""
        with self._lock:
            if self._started:
                return self
            self._started = True
            lanes = self.workers if self.mode == "processes" else 1
            for lane in range(lanes):
                thread = threading.Thread(
                    target=self._serve, args=(lane,), name=f"coreviz-fp-{lane}", daemon=True
                )
                thread.start()
                self._threads.append(thread)
        if self.reason is not None:
            _LOG.info("%s", self.describe())
        return self

    def submit_rows(self, part: PageRows) -> SentPage:
        """:meth:`submit` of a page chunk's kept rows: the future with the page's bytes,
        rows and ids (see :class:`SentPage`)."""
        rows = list(part.rows)
        return SentPage(self.submit(part.page.body, rows), part.page.body, rows, list(part.ids))

    def submit(
        self,
        body: bytes,
        rows: Sequence[int] | None = None,
        *,
        hydrated: Mapping[int, bytes] | None = None,
        what: str | None = None,
    ) -> Future[dict[str, str]]:
        """The future ``{normalised media id: fingerprint}`` of ``body``'s records: a browse
        page's items at ``rows`` (every item but folders when None), or a Get Media body's
        record. ``hydrated`` maps a page row to its Get Media body: that row is fingerprinted
        as the record the client yields for it (the full record plus the listed item's keys
        it lacks). ``what`` names the body in errors (``"collection 'c1' (offset 2000)"``).
        The future raises :class:`~coreviz_frames.errors.FingerprintError` for a body that
        is not JSON or not of that shape, or whose side process died."""
        if self._closing or self._closed:
            raise RuntimeError("submit() on a closed FingerprintPool")
        self.start()
        self._count += 1
        label = what or f"body {self._count} ({len(body)} bytes)"
        future: Future[dict[str, str]] = Future()
        extra = {int(row): _as_bytes(b) for row, b in (hydrated or {}).items()}
        picked = None if rows is None else list(rows)
        if picked == []:  # no row of this page: nothing to decode
            future.set_result({})
            return future
        self._queue.put(_Job(_as_bytes(body), picked, extra, label, future))
        return future

    def close(self) -> None:
        """Wait for the submitted bodies, then end the threads and the side processes."""
        if self._closed:
            return
        self._closing = True
        for _ in self._threads:
            self._queue.put(_STOP)
        try:
            for thread in self._threads:
                thread.join()
        except BaseException:
            self.abort()
            raise
        self._closed = True
        self._finalizer()

    def abort(self) -> None:
        """Cancel what has not started, kill the side processes, end the threads."""
        with self._lock:
            self._closing = self._aborted = True
            sides = list(self._sides.values())
        self._cancel_queued()
        for _ in self._threads:
            self._queue.put(_STOP)
        for side in sides:
            side.stop(kill=True)
        for thread in self._threads:
            thread.join(timeout=10)
        self._closed = True
        self._finalizer()

    def __enter__(self) -> FingerprintPool:
        return self.start()

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            self.close()
        else:
            self.abort()

    def __repr__(self) -> str:
        return f"FingerprintPool(workers={self.workers}, mode={self.mode!r})"

    # -------------------------------------------------------------- the pool's threads

    def _next_batch(self) -> list[_Job] | None:
        """The next bodies for one lane (None: stop): what is queued, within the limits."""
        first = self._queue.get()
        if first is _STOP:
            return None
        batch, size = [first], first.size
        while len(batch) < MAX_BATCH_BODIES and size < MAX_BATCH_BYTES:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is _STOP:
                self._queue.put(_STOP)  # this lane's (or another's): taken again next round
                break
            batch.append(job)
            size += job.size
        return [job for job in batch if job.future.set_running_or_notify_cancel()]

    def _cancel_queued(self) -> None:
        stops = 0
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is _STOP:
                stops += 1
            else:
                job.future.cancel()
        for _ in range(stops):
            self._queue.put(_STOP)

    def _serve(self, lane: int) -> None:
        """One lane: bodies from the queue to its side process (or computed here)."""
        while (jobs := self._next_batch()) is not None:
            if not jobs:
                continue
            try:
                side = None if self.mode == "thread" else self._side_for(lane)
                if side is None:
                    _finish(jobs, [_compute(j.body, j.rows, j.hydrated) for j in jobs])
                    continue
                try:
                    _finish(jobs, side.run(jobs))
                except _SideDied as exc:
                    self._retire(lane, side)
                    _fail(jobs, f"{side.exit_note()} while fingerprinting it ({exc})")
            except Exception as exc:  # never leave a future pending; the lane goes on
                _fail(jobs, f"{type(exc).__name__}: {exc}")
            except BaseException as exc:
                _fail(jobs, f"{type(exc).__name__}: {exc}")
                raise
        with self._lock:
            side = self._sides.pop(lane, None)
        if side is not None:
            side.stop(kill=self._aborted)

    def _side_for(self, lane: int) -> _Side | None:
        """This lane's running side process, started if needed; None when the pool has
        fallen back to computing in-process (now, or because this start failed)."""
        with self._lock:
            side = self._sides.get(lane)
            if side is not None and side.proc.poll() is None:
                return side
            if self._aborted:
                raise _SideDied("the pool was stopped")
        try:
            side = _Side()
        except OSError as exc:
            self._fall_back(f"side processes cannot start here: {exc}")
            return None
        with self._lock:
            self._sides[lane] = side
        try:
            side.handshake(START_TIMEOUT)
        except _SideDied as exc:
            self._retire(lane, side)
            self._fall_back(f"a side process did not start: {exc}")
            return None
        return side

    def _retire(self, lane: int, side: _Side) -> None:
        with self._lock:
            if self._sides.get(lane) is side:
                del self._sides[lane]
        side.stop(kill=True)

    def _fall_back(self, reason: str) -> None:
        """From now on, compute in this process (said once, as a warning)."""
        with self._lock:
            if self.mode == "thread":
                return
            self.mode, self.reason = "thread", reason
        _LOG.warning("%s", self.describe())


def _finish(jobs: list[_Job], answers: list[Any]) -> None:
    """Set each job's future from its answer (``["ok", {...}]`` or ``["error", msg]``)."""
    for job, (status, value) in zip(jobs, answers, strict=True):
        if status == "ok":
            job.future.set_result(value)
        else:
            job.future.set_exception(
                FingerprintError(
                    f"fingerprints of {job.what}: the body is not a page nor a media record "
                    f"({value}); its media are not fingerprinted",
                    page=job.what,
                )
            )


def _fail(jobs: list[_Job], why: str) -> None:
    for job in jobs:
        if not job.future.done():
            job.future.set_exception(
                FingerprintError(
                    f"fingerprints of {job.what} were not computed: {why}; submit it again "
                    f"(or set {PROCESSES_ENV}=0 to compute fingerprints in-process)",
                    page=job.what,
                )
            )


def _as_bytes(body: bytes) -> bytes:
    """``body`` itself when it is bytes (no copy of a large page), else a bytes copy."""
    return body if type(body) is bytes else bytes(body)


class SentPage(NamedTuple):
    """A page's kept rows sent to a :class:`FingerprintPool` (:meth:`FingerprintPool.submit_rows`):
    the pool's future, and what :func:`page_fingerprints` needs to compute the fingerprints
    here if it must (the page's bytes, the rows, their ids). Not the page's Arrow table: a
    batch that holds only these until its fingerprints come lets its pages' tables go as
    soon as it is flattened."""

    future: Future[dict[str, str]]
    body: bytes
    rows: list[int]
    ids: list[str | None]


def page_fingerprints(sent: SentPage) -> dict[str, str]:
    """``{normalised id: fingerprint}`` of a sent page's kept rows: the pool's answer, or,
    where its side process died or the answer lacks an id, computed here from the same
    bytes (the same values).

    Example:
        >>> failed: Future[dict[str, str]] = Future()
        >>> failed.set_exception(FingerprintError("its side process died"))
        >>> list(page_fingerprints(SentPage(failed, b'{"media": [{"id": "m1"}]}', [0], ["m1"])))
        ['m1']
    """
    idents = [ident for ident in map(id_key, sent.ids) if ident is not None]
    try:
        found = sent.future.result()
    except FingerprintError:
        found = {}
    if any(ident not in found for ident in idents):
        found = body_fingerprints(_as_bytes(sent.body), sent.rows)
    return {ident: found[ident] for ident in idents}
