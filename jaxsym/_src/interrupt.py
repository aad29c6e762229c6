"""Ctrl-C for the ``jaxsym`` command line: one line on stderr, status 130, nothing else.

Imported first by ``jaxsym/__init__.py``. When the process is the command line
(``python -m jaxsym`` or the ``jaxsym`` script, told apart by
``sys.orig_argv``), it installs a SIGINT handler at once, so that a Ctrl-C
while JAX is still importing ends the same way as one during the run. A
library import changes nothing.

The handler ends the process with ``os._exit``: no interpreter teardown while
XLA threads still run (tearing down under them crashed with SIGSEGV), and no
traceback. Callers that write files clean their own temporary files first
(see :mod:`jaxsym.audit.cli`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import NoReturn

__all__ = ["exit_interrupted", "launched_as_program"]

INTERRUPTED = 130  # 128 + SIGINT, the shell's convention


def launched_as_program() -> bool:
    """True when this process is ``python -m jaxsym …`` or the ``jaxsym`` console script."""
    argv = list(getattr(sys, "orig_argv", ()))
    for index, arg in enumerate(argv[1:], start=1):
        if arg == "-m":
            return argv[index + 1 : index + 2] == ["jaxsym"]
        if arg.startswith("-m"):
            return arg == "-mjaxsym"
        if arg in ("-c", "-") or not arg.startswith("-"):
            break
    return os.path.basename(sys.argv[0] if sys.argv else "") in ("jaxsym", "jaxsym.exe")


def exit_interrupted(
    prog: str = "jaxsym", message: str = "interrupted; nothing written."
) -> NoReturn:
    """Print ``<prog>: <message>`` on stderr and end the process with status 130 at once."""
    with contextlib.suppress(OSError, ValueError, RuntimeError):  # a print was interrupted
        sys.stdout.flush()
    with contextlib.suppress(OSError):
        os.write(2, f"{prog}: {message}\n".encode())
    os._exit(INTERRUPTED)


def _quiet(signum, frame) -> NoReturn:
    exit_interrupted()


if launched_as_program():
    signal.signal(signal.SIGINT, _quiet)
