"""``python -m ltvkit``: the ``ltvkit`` command line (see :mod:`ltvkit.cli`)."""

from ltvkit.cli import main

raise SystemExit(main())
