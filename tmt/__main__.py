"""`python -m tmt`: the `tmt` console script."""

from tmt.cli import main

raise SystemExit(main())
