"""The local API's options, in one place: :class:`LocalAPIOptions`.

One frozen, validated value used by :class:`~.server.LocalAPI`, by
:class:`~.process.LocalAPIProcess` (which turns it into the child's command line with
:meth:`LocalAPIOptions.to_argv`), by ``python -m coreviz_frames.local_api`` (whose
parser :func:`add_arguments` builds from the fields) and by ``coreviz-frames serve``
(whose click options :func:`option_specs` describes). A new option is one new field.

Example:
    >>> opts = LocalAPIOptions(synthetic=100, latency=0.02, api_key="sk-secret")
    >>> opts.to_argv()
    ['--synthetic', '100', '--latency', '0.02']
    >>> "sk-secret" in repr(opts)
    False
    >>> LocalAPIOptions.from_argv(opts.to_argv()) == opts.replace(api_key=None)
    True
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from coreviz_frames.errors import ConfigError
from coreviz_frames.http.credentials import check_secret

__all__ = [
    "API_KEY_ENV",
    "RECORD_CACHE_BYTES",
    "SAMPLE_COLLECTION_ID",
    "SAMPLE_DATA_DIR",
    "LocalAPIOptions",
    "add_arguments",
    "option_specs",
]

#: Inconsistent pagination the browse route can serve (see :mod:`.routes`).
#: ``low_total``: the total says a quarter of the rows (hasMore stays true to the rows);
#: ``grows``: the first two browse requests see the collection without its last 5 media.
BROWSE_QUIRKS = ("repeat_page", "has_more_forever", "wrong_total", "low_total", "grows")
#: Default bound of the serialised-record cache (a 10,000-media synthetic collection,
#: about 100 MB of JSON, fits).
RECORD_CACHE_BYTES = 256 * 2**20
#: A child process reads its API key from this variable (not argv, which others can see).
API_KEY_ENV = "COREVIZ_LOCAL_API_KEY"


def _sample_data_dir() -> Path:
    """``data/`` of a source checkout, else the copy installed as ``coreviz_frames.sample_data``."""
    checkout = Path(__file__).resolve().parents[2] / "data"
    if (checkout / "collection.json").is_file():
        return checkout
    return Path(__file__).resolve().parents[1] / "sample_data"


#: The sample collection committed under ``data/`` at the repository root.
SAMPLE_DATA_DIR = _sample_data_dir()
SAMPLE_COLLECTION_ID = "5c0f3e1a9b7d4c2e8f6a1b3d5e7f9a0c"


def _cli(help: str, *, metavar: str | None = None, **extra: Any) -> dict[str, Any]:
    """Field metadata describing the field's command-line option."""
    return {"help": help, "metavar": metavar, **extra}


@dataclass(frozen=True)
class LocalAPIOptions:
    """Everything a :class:`~.server.LocalAPI` is started with (validated; ConfigError).

    ``api_key`` is never shown by ``repr`` and never put on a command line.
    """

    data_dir: Path = field(
        default=SAMPLE_DATA_DIR, metadata=_cli("collection directory (default: the sample)")
    )
    synthetic: int | None = field(
        default=None, metadata=_cli("serve N synthetic media instead of --data-dir", metavar="N")
    )
    api_key: str | None = field(
        default=None,
        repr=False,
        metadata=_cli(f"require this API key (default: ${API_KEY_ENV}, else no check)"),
    )
    forbidden_ids: tuple[str, ...] = field(
        default=(),
        metadata=_cli("a media or collection id answering 403 (repeatable)", metavar="ID"),
    )
    latency: float = field(default=0.0, metadata=_cli("seconds of latency before each answer"))
    light: bool = field(default=False, metadata=_cli("browse items without captions and objects"))
    browse_quirk: str | None = field(
        default=None, metadata=_cli("inconsistent pagination to serve", choices=BROWSE_QUIRKS)
    )
    warm: bool = field(
        default=False, metadata=_cli("serialise every record before serving (URLs printed after)")
    )
    host: str = field(default="127.0.0.1", metadata=_cli("interface to bind"))
    port: int = field(default=0, metadata=_cli("API port (0: any free port)"))
    blob_port: int = field(default=0, metadata=_cli("blob server port (0: any free port)"))
    record_cache_bytes: int = field(
        default=RECORD_CACHE_BYTES, metadata=_cli("bound of the serialised-record cache, bytes")
    )
    fault_rate: float = field(
        default=0.0,
        metadata=_cli(
            "share of API requests failing at random: a 429 with Retry-After 0.1, a 500, "
            "a 503 or a dropped connection, in equal shares"
        ),
    )
    fault_seed: int = field(default=0, metadata=_cli("seed of the random faults"))
    max_page_size: int | None = field(
        default=None,
        metadata=_cli("clamp browse's limit to N, as a capped server might", metavar="N"),
    )

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "data_dir", Path(self.data_dir))
        if self.api_key is not None:  # the rules of a client's key (short: loopback only)
            host = f"[{self.host}]" if ":" in self.host else self.host
            check_secret(self.api_key, what="local API key", base_url=f"http://{host}/")
        if isinstance(self.forbidden_ids, str):
            raise ConfigError("forbidden_ids must be a list of ids, not a string")
        set_(self, "forbidden_ids", tuple(str(i) for i in self.forbidden_ids))
        if self.browse_quirk is not None and self.browse_quirk not in BROWSE_QUIRKS:
            raise ConfigError(f"browse_quirk must be None or one of {', '.join(BROWSE_QUIRKS)}")
        try:
            latency = float(self.latency)
        except (TypeError, ValueError):
            latency = -1.0
        if not math.isfinite(latency) or latency < 0:
            raise ConfigError("latency must be >= 0")
        set_(self, "latency", latency)
        _check_int(self.synthetic, "synthetic", 0, allow_none=True)
        _check_int(self.port, "port", 0, 65535)
        _check_int(self.blob_port, "blob_port", 0, 65535)
        _check_int(self.record_cache_bytes, "record_cache_bytes", 0)
        _check_int(self.fault_seed, "fault_seed", 0)
        _check_int(self.max_page_size, "max_page_size", 1, allow_none=True)
        try:
            rate = float(self.fault_rate)
        except (TypeError, ValueError):
            rate = -1.0
        if not 0.0 <= rate <= 1.0:
            raise ConfigError(f"fault_rate must be between 0 and 1, not {self.fault_rate!r}")
        set_(self, "fault_rate", rate)

    def replace(self, **changes: Any) -> LocalAPIOptions:
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def build(cls, options: LocalAPIOptions | None = None, **kwargs: Any) -> LocalAPIOptions:
        """``options`` (or the defaults) with ``kwargs`` applied; an unknown keyword is a
        TypeError, as for any function."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise TypeError(f"unknown local API option(s): {', '.join(unknown)}")
        return (options or cls()).replace(**kwargs) if kwargs else (options or cls())

    def to_argv(self) -> list[str]:
        """``python -m coreviz_frames.local_api`` arguments for these options (no API key:
        pass it in :data:`API_KEY_ENV`)."""
        argv: list[str] = []
        for spec in option_specs():
            value = getattr(self, spec.name)
            if spec.name == "api_key" or value == spec.default or value is None:
                continue
            if spec.is_flag:
                argv.append(spec.flag)
            elif spec.multiple:
                for item in value:
                    argv += [spec.flag, str(item)]
            else:
                argv += [spec.flag, repr(value) if isinstance(value, float) else str(value)]
        return argv

    @classmethod
    def from_argv(cls, argv: Sequence[str]) -> LocalAPIOptions:
        """The options of a command line made by :meth:`to_argv` (or typed by a user)."""
        parser = argparse.ArgumentParser(add_help=False)
        add_arguments(parser)
        return cls.from_namespace(parser.parse_args(list(argv)))

    @classmethod
    def from_namespace(cls, args: Any) -> LocalAPIOptions:
        """The options held by an ``argparse.Namespace`` or a mapping of parsed options
        (a field that is None, or missing, takes its default)."""
        given = args if isinstance(args, Mapping) else vars(args)
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls.build(**{k: v for k, v in given.items() if k in fields and v is not None})

    def with_environment(self, environ: Mapping[str, str] | None = None) -> LocalAPIOptions:
        """These options, with the API key read from :data:`API_KEY_ENV` if none is set."""
        environ = os.environ if environ is None else environ
        if self.api_key is None and environ.get(API_KEY_ENV):
            return self.replace(api_key=environ[API_KEY_ENV])
        return self


def _check_int(
    value: Any, name: str, minimum: int, maximum: int | None = None, *, allow_none: bool = False
) -> None:
    if value is None and allow_none:
        return
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
    if not ok or (maximum is not None and value > maximum):
        bound = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigError(f"{name} must be an integer {bound}, not {value!r}")


class OptionSpec(NamedTuple):
    """A command-line option of one :class:`LocalAPIOptions` field."""

    name: str
    flag: str
    type: type
    default: Any
    help: str
    metavar: str | None = None
    is_flag: bool = False
    multiple: bool = False
    choices: tuple[str, ...] | None = None


_TYPES: dict[str, type] = {"synthetic": int, "latency": float, "port": int, "blob_port": int}
_TYPES.update(record_cache_bytes=int, fault_rate=float, fault_seed=int, max_page_size=int)
_FLAGS = {"forbidden_ids": "forbidden-id"}


def option_specs() -> list[OptionSpec]:
    """One :class:`OptionSpec` per field of :class:`LocalAPIOptions`, in field order."""
    specs = []
    for f in dataclasses.fields(LocalAPIOptions):
        meta = f.metadata
        default = f.default
        specs.append(
            OptionSpec(
                name=f.name,
                flag="--" + _FLAGS.get(f.name, f.name.replace("_", "-")),
                type=_TYPES.get(f.name, str),
                default=default,
                help=meta["help"],
                metavar=meta.get("metavar"),
                is_flag=isinstance(default, bool),
                multiple=isinstance(default, tuple),
                choices=meta.get("choices"),
            )
        )
    return specs


def add_arguments(parser: argparse.ArgumentParser, skip: Iterable[str] = ()) -> None:
    """Add one argparse option per field of :class:`LocalAPIOptions` (except ``skip``)."""
    for spec in option_specs():
        if spec.name in skip:
            continue
        kwargs: dict[str, Any] = {"dest": spec.name, "help": spec.help}
        if spec.is_flag:
            kwargs["action"] = "store_true"
        elif spec.multiple:
            kwargs.update(action="append", default=[], metavar=spec.metavar)
        else:
            default = None if spec.name == "data_dir" else spec.default
            kwargs.update(type=spec.type, default=default, metavar=spec.metavar)
            if spec.choices:
                kwargs["choices"] = spec.choices
        parser.add_argument(spec.flag, **kwargs)
