"""What the command line prints: every line goes through :func:`echo`.

Text from a server (names, labels, reasons) is shown with its control characters
escaped, so it cannot drive the terminal (see :mod:`coreviz_frames._util.terminal`);
an error is one ``error: ...`` line on stderr, then a hint when there is one.

Example:
    >>> echo("label: cat\\x1b[2J")
    label: cat\\x1b[2J
    >>> warning_line("page limit reached")
    'warning: page limit reached\\n'
"""

from __future__ import annotations

import shlex
import sys
from typing import Any

import click

from coreviz_frames._util.terminal import printable
from coreviz_frames.cli.messages import error_lines
from coreviz_frames.errors import CorevizError

__all__ = ["again_command", "echo", "echo_error", "warning_line"]


def echo(message: object = "", *, err: bool = False, **style: Any) -> None:
    """Print one message: every line the CLI prints goes through here, so text from a
    server (names, labels, reasons) cannot drive the terminal (see :mod:`.terminal`)."""
    click.secho(printable(message, newlines=True), err=err, **style)


def warning_line(message: Warning | str, *_args: Any, **_kwargs: Any) -> str:
    """A library warning (a skipped media, a page limit) as one ``warning:`` line, its
    control characters shown, not run (it may quote a server's text)."""
    return printable(f"warning: {message}") + "\n"


def echo_error(exc: CorevizError | OSError) -> None:
    """``error: ...`` in red on stderr (CLI flags, not Python arguments), then the hint;
    the message is one line, whatever the server's text in it holds."""
    first, *rest = error_lines(exc)
    echo(printable(first), fg="red", err=True)
    for line in rest:
        echo(line, err=True)


def again_command(*, resume: bool) -> str:
    """The command line that was run, to run again: ``--overwrite`` dropped (it would wipe
    what was committed), ``--resume`` added when asked."""
    ctx = click.get_current_context(silent=True)
    name = ctx.info_name if ctx is not None else None
    args = sys.argv[1:]
    if not name or name not in args:
        return "the same command" + (" with --resume" if resume else "")
    kept, had_key, skip = [], False, False
    for arg in args:
        if skip:  # the value of --api-key: never printed
            skip = False
        elif arg == "--api-key" or arg.startswith("--api-key="):
            had_key, skip = True, arg == "--api-key"
        elif arg != "--overwrite":
            kept.append(arg)
    if resume and "--resume" not in kept:
        kept.append("--resume")
    return shlex.join(["coreviz-frames", *kept]) + (" (and your --api-key)" if had_key else "")
