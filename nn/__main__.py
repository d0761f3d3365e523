"""`python -m nn ...`: the command line, see `nn.cli`."""

from .cli import main

raise SystemExit(main())
