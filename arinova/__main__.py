from arinova.cli import main

raise SystemExit(main())
