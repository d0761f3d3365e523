"""A Ctrl-C while `python -m nn` starts: one line and exit status 130, not a traceback.

`python -m nn` imports the package and the command line (NumPy, matplotlib, tqdm: a second or
two) before `nn.cli.main` can catch a Ctrl-C. `nn/__init__.py` imports this module first, and
`nn/__main__.py` calls `done()` once `main` is imported. The handler is set only when the
program is `python -m nn`, so importing `nn` anywhere else (a notebook, a script) leaves
Ctrl-C as it was.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any


def _is_command(argv: list[str]) -> bool:
    """Whether the interpreter was started as `python ... -m nn ...`."""
    return "-m" in argv[:-1] and argv[argv.index("-m") + 1] == "nn"


_COMMAND = _is_command(list(getattr(sys, "orig_argv", [])))


def _interrupted(signum: int, frame: Any) -> None:
    print("\ninterrupted (Ctrl-C) while starting: nothing was done", file=sys.stderr, flush=True)
    # Nothing is written yet, so there is nothing to clean up; an exception raised here could
    # be caught and reworded by the import machinery of the module being imported.
    os._exit(130)


def done() -> None:
    """The command line is imported: from here on `nn.cli.main` catches a Ctrl-C itself."""
    if _COMMAND:
        signal.signal(signal.SIGINT, signal.default_int_handler)


if _COMMAND:
    signal.signal(signal.SIGINT, _interrupted)
