"""``coreviz-frames serve``: the local CoreViz-compatible API, for tests and demos.

Its options are the fields of :class:`coreviz_frames.local_api.options.LocalAPIOptions`,
one flag each, so the command and the Python API cannot drift apart.

Example:
    >>> from click.testing import CliRunner
    >>> "--synthetic" in CliRunner().invoke(serve, ["--help"]).output
    True
"""

from __future__ import annotations

import click

__all__ = ["serve"]


def _local_api_options(command):
    """One click option per field of the local API's ``LocalAPIOptions``."""
    from coreviz_frames.local_api.options import option_specs

    for spec in reversed(option_specs()):
        kwargs: dict = {"help": spec.help[:1].upper() + spec.help[1:] + "."}
        if spec.is_flag:
            kwargs["is_flag"] = True
        elif spec.multiple:
            kwargs.update(multiple=True, metavar=spec.metavar)
        elif spec.name == "data_dir":
            kwargs.update(type=click.Path(exists=True, file_okay=False), default=None)
        else:
            choice = click.Choice(spec.choices) if spec.choices else spec.type
            kwargs.update(type=choice, default=spec.default, metavar=spec.metavar)
            kwargs["show_default"] = spec.default not in (None, 0, 0.0)
        command = click.option(spec.flag, spec.name, **kwargs)(command)
    return command


@click.command(
    epilog="Example:\n\n\b\n  coreviz-frames serve --port 8765\n"
    "  coreviz-frames serve --synthetic 100000 --latency 0.02"
)
@_local_api_options
def serve(**options) -> None:
    """Serve a CoreViz-compatible read API on this machine, for tests and demos.

    Prints one JSON line with the base URL, the blob URL and the collection id,
    then serves until interrupted.
    """
    from coreviz_frames.local_api.options import LocalAPIOptions
    from coreviz_frames.local_api.server import serve_forever

    serve_forever(options=LocalAPIOptions.from_namespace(options).with_environment())
