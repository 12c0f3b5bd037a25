from tmt.cli import main

raise SystemExit(main())
