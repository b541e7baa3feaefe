"""Run the local API in its own Python process (so it does not share the client's GIL).

:class:`LocalAPIProcess` starts ``python -m coreviz_frames.local_api`` with a
:class:`~.options.LocalAPIOptions` (or its fields as keywords, as
:class:`~.server.LocalAPI`), reads the URLs from its first stdout line, and
reaches stats, reset, faults and mutations over the control routes (``POST /_local/...``,
JSON, with the API key when one is set).

Example:
    >>> with LocalAPIProcess(synthetic=10_000, latency=0.02) as server:
    ...     server.reset_stats()
    ...     # ... benchmark against server.base_url ...
    ...     server.stats.max_in_flight
    0
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from coreviz_frames.local_api.faults import Fault
from coreviz_frames.local_api.options import API_KEY_ENV, LocalAPIOptions
from coreviz_frames.local_api.stats import StatsSnapshot

__all__ = ["LocalAPIProcess"]

_REPO_ROOT = Path(__file__).resolve().parents[2]


def command_line(options: LocalAPIOptions | None = None, **kwargs: Any) -> list[str]:
    """The ``python -m coreviz_frames.local_api`` command for these options (never the API
    key: :class:`LocalAPIProcess` passes it in :data:`API_KEY_ENV`).

    Example:
        >>> command_line(synthetic=10, warm=True)[-3:]
        ['--synthetic', '10', '--warm']
    """
    options = LocalAPIOptions.build(options, **kwargs)
    return [sys.executable, "-m", "coreviz_frames.local_api", *options.to_argv()]


class LocalAPIProcess:
    """A :class:`LocalAPI` in a child process; same options, used as a context manager."""

    def __init__(
        self,
        *,
        options: LocalAPIOptions | None = None,
        start_timeout: float = 60.0,
        **kwargs: Any,
    ) -> None:
        self.options = LocalAPIOptions.build(options, **kwargs)
        self._args = command_line(self.options)
        self._api_key = self.options.api_key
        self._start_timeout = start_timeout
        self._proc: subprocess.Popen | None = None
        self.base_url = ""
        self.blob_url = ""
        self.collection_id = ""

    def __repr__(self) -> str:
        return f"<LocalAPIProcess {self.base_url or 'stopped'}>"

    def start(self) -> LocalAPIProcess:
        """Start the child and wait for its URLs."""
        if self._proc is not None:
            return self
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(_REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        env.pop(API_KEY_ENV, None)
        if self._api_key is not None:
            env[API_KEY_ENV] = self._api_key
        self._proc = subprocess.Popen(self._args, stdout=subprocess.PIPE, env=env, text=True)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            code = self._proc.wait(timeout=self._start_timeout)
            self._proc = None
            raise RuntimeError(f"local API process exited with status {code} before starting")
        info = json.loads(line)
        self.base_url = info["base_url"]
        self.blob_url = info["blob_url"]
        self.collection_id = info["collection_id"]
        return self

    def stop(self) -> None:
        """Terminate the child (kill it if it does not exit within 5 s)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> LocalAPIProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _control(self, path: str, payload: dict | None = None) -> dict:
        """``POST /_local/{path}`` with ``payload`` as JSON (and the key, if one is set)."""
        root = self.base_url.rsplit("/api", 1)[0]
        headers = {"Content-Type": "application/json"}
        if self._api_key is not None:
            headers["x-api-key"] = self._api_key
        request = urllib.request.Request(
            f"{root}/_local/{path}",
            data=json.dumps(payload or {}).encode(),
            method="POST",
            headers=headers,
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    @property
    def stats(self) -> StatsSnapshot:
        """A fresh snapshot of the child's counters."""
        return StatsSnapshot.from_json(self._control("stats"))

    def reset_stats(self) -> None:
        self._control("reset", {})

    def add_fault(self, path_prefix: str, **options: Any) -> None:
        """As :meth:`LocalAPI.add_fault`, in the child."""
        fault = Fault.from_options(path_prefix, **options)
        self._control("fault", fault.to_json())

    def mutate(
        self,
        *,
        seed: int = 0,
        adds: int = 0,
        edits: int = 0,
        deletes: int = 0,
        newest: int | None = None,
    ) -> dict:
        """As :meth:`LocalAPI.mutate`, in the child: ``{"added", "edited", "deleted"}`` ids."""
        payload = {"seed": seed, "adds": adds, "edits": edits, "deletes": deletes}
        if newest is not None:
            payload["newest"] = newest
        return self._control("mutate", payload)
