"""`python -m nn ...`: the command line, see `nn.cli`."""

from . import _starting
from .cli import main

_starting.done()  # from here on `main` catches a Ctrl-C
raise SystemExit(main())
