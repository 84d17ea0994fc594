"""``python -m memory_core``: the operator CLI."""

from memory_core.cli import main

raise SystemExit(main())
