"""The local CoreViz-compatible read API: two HTTP servers on 127.0.0.1.

The API server answers ``/api/media/{id}``, ``/api/dataset/{id}/media`` and
``/api/dataset/{id}/tags``, and the catalogue reads: user, organisations, collections,
versions and search (see :mod:`.routes` and :mod:`.catalogue`; plus the control routes
``POST /_local/stats``, ``/_local/info``, ``/_local/reset``, ``/_local/mutate`` and
``/_local/fault``, JSON in and out, outside ``/api`` but behind the API key like it);
the blob server, on another port (another origin), serves the images behind the records'
``blob://`` URLs. :class:`~.guard.Guard` refuses requests a web page could send (a foreign
``Host`` or ``Origin``, a control request that is not a JSON ``POST``). Both speak HTTP/1.1
keep-alive with TCP_NODELAY (see :mod:`.wire`), count requests and the most simultaneous
requests seen (:mod:`.stats`), and can inject latency and faults (:mod:`.faults`).
Options: :class:`~.options.LocalAPIOptions`.

Example:
    >>> import requests
    >>> with LocalAPI() as api:
    ...     page = requests.get(f"{api.base_url}/dataset/{api.collection_id}/media").json()
    >>> page["pagination"]["limit"]
    10
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import unquote

from coreviz_frames.errors import ConfigError, CorevizWarning
from coreviz_frames.local_api.faults import Fault, FaultTable, RandomFaults
from coreviz_frames.local_api.guard import Guard, exposure_warning
from coreviz_frames.local_api.images import FileBlobs, SyntheticBlobs
from coreviz_frames.local_api.mutations import (
    EDIT_KINDS,
    Changes,
    MutableCollection,
    random_changes,
)
from coreviz_frames.local_api.options import (
    LocalAPIOptions,
)
from coreviz_frames.local_api.routes import ApiRoutes, RecordCache, json_reply
from coreviz_frames.local_api.stats import ServerStats
from coreviz_frames.local_api.store import Collection, FileCollection, SyntheticCollection
from coreviz_frames.local_api.wire import HTTPServer, Reply, Request, error_reply

__all__ = ["LocalAPI", "serve_forever", "serve_local_api"]


class LocalAPI:
    """A CoreViz-compatible read API on 127.0.0.1, serving ``data_dir`` or a synthetic collection.

    Takes a :class:`~.options.LocalAPIOptions` (``options=``) and/or its fields as keywords
    (``LocalAPI(synthetic=1000, latency=0.02)``). Each record is serialised once (blob URLs
    rewritten) into an LRU bounded by ``record_cache_bytes`` (256 MB by default: 10,000
    synthetic media take about 100 MB), and a page body joins the cached bytes.
    ``warm=True`` fills that cache in :meth:`start` (see :meth:`warm`), so no request pays
    for building records.

    Example:
        >>> with LocalAPI(synthetic=1000, latency=0.02) as api:
        ...     api.add_fault("/api/media/", status=429, retry_after="0.5")
        ...     api.add_fault("/api/dataset/", trickle_body=0.5)
        ...     api.base_url.startswith("http://127.0.0.1:")
        True
    """

    def __init__(
        self,
        data_dir: str | Path | None = None,
        *,
        options: LocalAPIOptions | None = None,
        **kwargs: Any,
    ) -> None:
        if data_dir is not None:
            kwargs["data_dir"] = data_dir
        self.options = opts = LocalAPIOptions.build(options, **kwargs)
        self.collection: Collection
        if opts.synthetic is not None:
            self.collection = SyntheticCollection(opts.synthetic)
            self.blobs: FileBlobs | SyntheticBlobs = SyntheticBlobs(self.collection)
        else:
            self.collection = FileCollection(opts.data_dir)
            self.blobs = FileBlobs(opts.data_dir / "blobs")
        self.collection_id: str = self.collection.collection_id
        self.routes = ApiRoutes(
            self.collection,
            api_key=opts.api_key,
            forbidden_ids=opts.forbidden_ids,
            light=opts.light,
            browse_quirk=opts.browse_quirk,
            record_cache_bytes=opts.record_cache_bytes,
            max_page_size=opts.max_page_size,
        )
        self.guard = Guard(opts.host, api_key=opts.api_key)
        self.stats = ServerStats()
        self.faults = FaultTable()
        self.random_faults = RandomFaults(opts.fault_rate, seed=opts.fault_seed)
        #: Set by :meth:`stop`: trickling answers end.
        self.stopping = threading.Event()
        self._servers: list[HTTPServer] = []
        self._threads: list[threading.Thread] = []
        self._base_url: str | None = None
        self._blob_url: str | None = None

    def __repr__(self) -> str:
        state = self._base_url or "stopped"
        return f"<LocalAPI {self.collection_id} {state}>"  # never shows the API key

    @property
    def latency(self) -> float:
        """Seconds slept before each counted answer."""
        return self.options.latency

    @property
    def light(self) -> bool:
        return self.options.light

    @property
    def browse_quirk(self) -> str | None:
        return self.options.browse_quirk

    @property
    def host(self) -> str:
        return self.options.host

    @property
    def _records(self) -> RecordCache:  # the record cache (tests look at its size)
        return self.routes.records

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/api`` (set by :meth:`start`)."""
        if self._base_url is None:
            raise RuntimeError("LocalAPI is not started")
        return self._base_url

    @property
    def blob_url(self) -> str:
        """``http://127.0.0.1:<blob_port>``, a different origin from the API."""
        if self._blob_url is None:
            raise RuntimeError("LocalAPI is not started")
        return self._blob_url

    def info(self) -> dict[str, str]:
        return {
            "base_url": self.base_url,
            "blob_url": self.blob_url,
            "collection_id": self.collection_id,
        }

    def reset_stats(self) -> None:
        """Zero every counter (and forget recorded headers)."""
        self.stats.reset()

    def add_fault(self, path_prefix: str, **options: Any) -> None:
        """Inject a fault (the keywords of :meth:`.faults.Fault.from_options`): the next
        ``count`` requests whose path starts with ``path_prefix`` answer ``status`` (503 by
        default, with ``Retry-After`` if given: seconds, or any text such as ``"soon"``), or
        with ``drop=True`` lose their connection, or get their normal answer trickled one
        byte every ``trickle_headers`` (status line and headers) or ``trickle_body`` seconds.
        """
        self.faults.add(Fault.from_options(path_prefix, **options))

    def mutable(self) -> MutableCollection:
        """The served collection, made changeable on first use (see :mod:`.mutations`)."""
        if not isinstance(self.collection, MutableCollection):
            self.collection = MutableCollection(self.collection)
            self.routes.collection = self.routes.catalogue.collection = self.collection
        return self.collection

    def mutate(
        self,
        *,
        seed: int = 0,
        adds: int = 0,
        edits: int = 0,
        deletes: int = 0,
        kinds: Sequence[str] = EDIT_KINDS,
        newest: int | None = None,
    ) -> Changes:
        """Change the collection between runs: ``deletes`` media deleted, ``edits`` edited
        (``kinds`` in turn: captions, objects, frames, tags, names) and ``adds`` added,
        picked with ``seed`` (see :func:`.mutations.random_changes`); returns the ids.

        Example:
            >>> with LocalAPI(synthetic=50) as api:
            ...     changes = api.mutate(seed=3, adds=2, edits=2, deletes=1)
            >>> len(changes.added), len(api.collection)
            (2, 51)
        """
        changes = random_changes(
            self.mutable(),
            seed=seed,
            adds=adds,
            edits=edits,
            deletes=deletes,
            kinds=kinds,
            newest=newest,
        )
        self.routes.records.clear()  # cached bodies are addressed by row
        return changes

    def start(self) -> LocalAPI:
        """Bind both servers and serve them from daemon threads; return ``self``."""
        if self._servers:
            return self
        opts = self.options
        self.stopping.clear()
        api_server = HTTPServer((opts.host, opts.port), self, "api")
        blob_server = HTTPServer((opts.host, opts.blob_port), self, "blob")
        self._servers = [api_server, blob_server]
        host = opts.host if ":" not in opts.host else f"[{opts.host}]"
        self._base_url = f"http://{host}:{api_server.server_address[1]}/api"
        self._blob_url = f"http://{host}:{blob_server.server_address[1]}"
        self.routes.set_blob_url(self._blob_url)  # the blob origin may have changed
        self.guard.bind({s.role: s.server_address[1] for s in self._servers})
        exposure = self.exposure()
        if exposure is not None:
            warnings.warn(exposure, CorevizWarning, stacklevel=2)
        if opts.warm:
            self.warm()
        for server in self._servers:
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"local-api-{server.role}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def exposure(self) -> str | None:
        """The warning for a server bound beyond this machine (what anyone who can reach
        it can read and do), or None on a loopback address."""
        return exposure_warning(
            self.guard, media=len(self.collection), keyed=self.options.api_key is not None
        )

    def warm(self) -> int:
        """Serialise every record into the record cache now (after :meth:`start`); return
        how many are cached (stops early when ``record_cache_bytes`` is reached)."""
        if self._blob_url is None:
            raise RuntimeError("LocalAPI is not started")
        return self.routes.warm()

    def stop(self) -> None:
        """Stop both servers (idempotent)."""
        self.stopping.set()
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers, self._threads = [], []
        self._base_url = self._blob_url = None

    def __enter__(self) -> LocalAPI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the application served by .wire.RequestHandler -------------------------------

    def counted(self, request: Request) -> bool:
        """Control requests (``/_local/...`` on the API server) are not counted."""
        return not (request.role == "api" and request.path.startswith("/_local/"))

    def respond(self, request: Request) -> Reply:
        """A refusal by the :class:`~.guard.Guard`, or latency, then an injected fault if
        one matches, else the real answer."""
        refusal = self.guard.refusal(request)
        if refusal is not None:
            return error_reply(*refusal)
        if not self.counted(request):
            return self._control(request)
        if self.latency > 0:
            time.sleep(self.latency)
        fault = self.faults.take(request.target) or self.random_faults.take(request.target)
        if fault is not None and (fault.drop or fault.status is not None):
            return self._fault_reply(fault)
        reply = self._answer(request)
        if fault is not None:
            return reply._replace(
                trickle_headers=fault.trickle_headers, trickle_body=fault.trickle_body
            )
        return reply

    def _answer(self, request: Request) -> Reply:
        if request.role == "blob":
            return self._blob(request.method, request.path)
        return self.routes.route(request.method, request.path, request.query, request.headers)

    @staticmethod
    def _fault_reply(fault: Fault) -> Reply:
        if fault.drop:
            return Reply(0, [], drop=True)
        retry_after = fault.retry_after_header()
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        assert fault.status is not None
        reply = json_reply(
            fault.status, {"error": fault.phrase(), "message": "Injected fault"}, headers
        )
        return reply._replace(
            trickle_headers=fault.trickle_headers, trickle_body=fault.trickle_body
        )

    def _blob(self, method: str, path: str) -> Reply:
        if method not in ("GET", "HEAD"):
            return json_reply(405, {"error": "Method not allowed"})
        found = self.blobs.get(unquote(path))
        if found is None:
            return json_reply(404, {"error": "Not found"})
        data, content_type = found
        return Reply(200, [data], content_type, {"Cache-Control": "public, max-age=31536000"})

    def _control(self, request: Request) -> Reply:
        """``POST /_local/...`` (the guard checked method, type and key): a JSON object in,
        a JSON object out."""
        try:
            payload = json.loads(request.body or b"{}")
        except ValueError as exc:
            return error_reply(400, f"the body is not JSON: {exc}")
        if not isinstance(payload, dict):
            return error_reply(400, "the body must be a JSON object")
        try:
            answer = self._control_answer(request.path, payload)
        except (ValueError, KeyError, TypeError, ConfigError) as exc:
            return json_reply(400, {"error": "Bad request", "message": str(exc)})
        if answer is None:
            return json_reply(404, {"error": "Not found"})
        return json_reply(200, answer)

    def _control_answer(self, path: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        if path == "/_local/stats":
            return self.stats.snapshot().to_json()
        if path == "/_local/info":
            return dict(self.info())
        if path == "/_local/reset":
            self.reset_stats()
            return {"ok": True}
        if path == "/_local/mutate":
            return self.mutate(**payload).to_json()
        if path == "/_local/fault":
            self.faults.add(Fault.from_json(payload))
            return {"ok": True}
        return None


@contextlib.contextmanager
def serve_local_api(**kwargs: Any) -> Iterator[str]:
    """Run a :class:`LocalAPI` for the ``with`` block and yield its base URL.

    Example:
        >>> with serve_local_api(synthetic=100) as base_url:
        ...     base_url.endswith("/api")
        True
    """
    with LocalAPI(**kwargs) as api:
        yield api.base_url


def serve_forever(
    *, stream: TextIO | None = None, options: LocalAPIOptions | None = None, **kwargs: Any
) -> None:
    """Start a :class:`LocalAPI`, print its URLs as one JSON line, serve until interrupted.

    Example:
        >>> serve_forever(synthetic=10_000, latency=0.02)   # doctest: +SKIP
        {"base_url": "http://127.0.0.1:40123/api", "blob_url": ..., "collection_id": "synthetic"}
    """
    stream = stream or sys.stdout
    with warnings.catch_warnings():  # the exposure warning is printed below, plainly
        warnings.simplefilter("ignore", CorevizWarning)
        api = LocalAPI(options=options, **kwargs).start()
    exposure = api.exposure()
    if exposure is not None:
        print(exposure, file=sys.stderr, flush=True)
    try:
        stream.write(json.dumps(api.info()) + "\n")
        stream.flush()
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        api.stop()
